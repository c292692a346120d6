"""Testing helpers for users of eventbus: hypothesis strategies and a pytest plugin."""
