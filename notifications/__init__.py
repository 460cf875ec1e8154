"""Notifications: routing, grouping, templates, the outbox and the channels that deliver."""
