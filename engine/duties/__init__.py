"""Recurring duties (经常性工作) and ledger milestones: their YAML, schedules and occurrences."""
