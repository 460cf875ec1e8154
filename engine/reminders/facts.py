"""What a reminder says about its subject: the facts that travel with it.

The sweep writes a ``ReminderFacts`` into every reminder row (``reminders.details``); the
notification layer reads the same model back to silence, route and word the reminder. One typed
model instead of a loose dict, so a field renamed on one side is a type error on the other.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from ..store.kinds import SubjectKind


class ReminderFacts(BaseModel):
    """The subject as it stood when the reminder fell due."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject_kind: SubjectKind
    title: str
    what: str = ""  # the deadline's own title: 制定整改方案, 整改时限, 回头看, a duty's title
    ledger: str | None = None
    unit: str = ""  # the unit a duty bound to units is for: whose accounts hear it (else the ledger's)
    ref: str | None = None  # 序号, for an issue (or the issue a look-back is for)
    state: str | None = None
    leader: str = ""
    department: str = ""
    area: str = ""
    category: str = ""
    duty: str | None = None  # the duty key
    period: str | None = None  # a duty occurrence's period, e.g. 2026-Q3
    level: int = 0  # escalations reached
    item_template: str | None = None  # the rule's override of the digest line (Jinja, from YAML)
    urgent: bool = False  # the rule says: deliver outside working hours too
    year: int | None = None  # the calendar year a calendar reminder is about
    state_label: str = ""  # the state's label, e.g. 整改中
    actions: tuple[str, ...] = ()  # what the reader can do next: the workflow's steps from the state

    def stored(self) -> dict[str, Any]:
        """The JSON kept in ``reminders.details``: defaults left out, so rows stay small."""
        return self.model_dump(mode="json", exclude_defaults=True, exclude={"subject_kind"}) | {
            "subject_kind": self.subject_kind.value}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ReminderFacts:
        return cls.model_validate(data)
