"""Event logs: the seam between accepting an event and routing it (see docs/architecture.md)."""
