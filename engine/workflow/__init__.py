"""Workflows: YAML definitions, their validation, versions and state machines."""
