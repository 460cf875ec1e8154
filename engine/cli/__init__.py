"""The ``duban`` command line."""
