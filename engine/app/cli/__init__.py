"""The ``duban`` command line: ``main`` (the group, exit codes), one module per top-level command
named after it (``ledger.py`` is ``duban ledger``), and what they share (``context``, ``output``)."""
