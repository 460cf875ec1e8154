"""Reminders: the core that says what is due for whom and why (``core``, on the ``planner``), the
subjects it answers about and the reader that builds them from rows (``subjects``, ``hydrate``),
the row a reminder is written as (``rows``), the sweep that writes them, the preview that predicts
them, the agenda that lists what is open, and the calendar's own December reminder."""
