"""The calendar feed (RFC 5545) of open deadlines and duty occurrences."""
