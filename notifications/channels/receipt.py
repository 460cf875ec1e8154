"""What a platform says about delivery beyond "accepted": who a sent message did not reach.

A work notice can be accepted and still miss people: WeCom names them in the answer
(``invaliduser``, ``unlicenseduser``), DingTalk only later (``getsendresult`` of the ``task_id``;
its per-user daily cap and once-a-day-same-content rule drop notices while answering success).
A channel's ``send`` returns a ``Receipt`` when it knows or will know more; the outbox keeps it
(``notifications.reports``), so "sent" never hides "not delivered to N of M".
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Receipt:
    """``recipients`` addressed; ``missed`` those it did not reach (so far); ``task`` the platform's
    handle to ask again later (None when the answer is final)."""

    platform: str
    recipients: int
    missed: tuple[str, ...] = ()
    reason: str = ""
    task: str | None = None

    @property
    def final(self) -> bool:
        return self.task is None
