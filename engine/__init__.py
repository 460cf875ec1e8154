"""duban (督办): follow each rectification problem through until it is done.

The ``engine`` package holds the domain: workflows and their state machines, the ledger store,
calendar and deadlines, the sweep, the scheduler, the daemon and the command line.
"""

__version__ = "0.1.0"
