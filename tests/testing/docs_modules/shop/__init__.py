"""A stand-in for the application package the docs' examples name (``shop.handlers:...``)."""
