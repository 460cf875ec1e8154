"""The application layer: the one place that wires the domain, the notifications and the doors
(the command line, the daemon, the HTTP application)."""
