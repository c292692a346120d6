"""The console's pages, one module a page (or two, where they belong together); each class
gives ``routes()`` behind its ``Site``'s gate."""
