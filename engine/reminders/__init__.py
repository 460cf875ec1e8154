"""Reminders: the core that says what is due for whom and why, the sweep that writes them, the
preview that predicts them and the agenda that lists what is open."""
