"""Delivery of a rule's events to its targets: dispatchers, retries with backoff, dead letters."""
