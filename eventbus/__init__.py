"""eventbus."""
