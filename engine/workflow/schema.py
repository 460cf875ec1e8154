"""The shape of a workflow YAML file, as pydantic models.

Unknown keys are errors (``extra="forbid"``) so a misspelt key, or a key that tries to smuggle in
code such as ``after: os.system``, is reported instead of ignored. Meaning (states that exist,
reachability, allowed guard names) is checked afterwards in ``loader``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from .rules import DEFAULT_EXTENSION_RULE, CheckinRule, DeadlineRule, ExtensionRule, Milestone, ReminderPolicy

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")

# Issue fields a ledger column can fill, in the order an export writes them.
LEDGER_FIELDS = (
    "ref",
    "area",
    "category",
    "title",
    "measures",
    "leader",
    "department",
    "deadline",
    "status",
    "unit",  # the ledger's unit (单位): one value for the whole sheet, not an issue field
)


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_one_or_many)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# The actors a state may name that duban resolves per issue (its 责任领导, its 责任科室, the reviewer
# accounts over its ledger); any other name is a recipient of the configuration.
BUILTIN_ACTORS = ("leader", "department", "reviewer")


class StateDef(_Strict):
    name: str
    label: str = Field(min_length=1, description="zh-CN label shown to people")
    label_en: str = ""
    description: str = ""
    # How a ledger sheet's 整改状态 may bring an issue here on re-import: "along" the workflow's
    # transitions (guards and roles checked), or "never" (a state only a person's step reaches,
    # e.g. a sign-off).
    import_: Literal["along", "never"] = Field("along", alias="import")
    # Who must act while an issue is here: "leader" and "department" (the issue's own 责任领导 and
    # 责任科室), "reviewer" (the reviewer accounts over its ledger; duban's administrators when it has
    # none) or a recipient's name (a role such as 巡察整改办公室). Reminders of the state go to them;
    # escalations add to them. Empty: the leader and the department.
    actor: StrList = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"state name {value!r} must be lower_snake_case (a-z, 0-9, _)")
        return value


class TransitionDef(_Strict):
    trigger: str
    source: StrList
    dest: str
    label: str = ""
    label_en: str = ""
    conditions: StrList = Field(default_factory=list)
    unless: StrList = Field(default_factory=list)
    roles: StrList = Field(default_factory=list)
    # "next": the step starts a new round of rectification (a reviewer's return: 二次整改)
    round: Literal["same", "next"] = "same"

    @field_validator("trigger")
    @classmethod
    def _trigger(cls, value: str) -> str:
        if not NAME_RE.match(value):
            raise ValueError(f"trigger {value!r} must be lower_snake_case (a-z, 0-9, _)")
        return value


class WorkflowDef(_Strict):
    name: str
    title: str = ""
    title_en: str = ""
    description: str = ""
    initial: str
    states: list[StateDef] = Field(min_length=1)
    transitions: list[TransitionDef] = Field(default_factory=list)
    # state -> words that mean it in a ledger's status column (整改状态)
    status_words: dict[str, StrList] = Field(default_factory=dict)
    # issue field -> header(s) of the ledger column that fills it
    columns: dict[str, StrList] = Field(default_factory=dict)
    # state -> when an issue in that state is due; reminders follow the policy
    deadlines: dict[str, DeadlineRule] = Field(default_factory=dict)
    # A ledger row whose 整改时限 says 立行立改 is due this many working days after the feedback
    # date; unset: engine.ledger.cells.DEFAULT_IMMEDIATE_WORKING_DAYS (5).
    immediate_working_days: int | None = None
    reminders: ReminderPolicy = ReminderPolicy()
    checkins: CheckinRule | None = None
    milestones: list[Milestone] = Field(default_factory=list)
    # when a pending 延期申请 must be decided by its deciders (default: DEFAULT_EXTENSION_RULE)
    extension_requests: ExtensionRule | None = None
    # The report's wording for this workflow ([report] keys: inspector, part1, …): an audit
    # rectification must not speak of 巡察. config.toml's [report] goes over it.
    report: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(r"^[a-z0-9][a-z0-9_-]{0,99}$", value):
            raise ValueError(f"workflow name {value!r} must be lower-case letters, digits, - and _")
        return value

    @property
    def extension_rule(self) -> ExtensionRule:
        return self.extension_requests or DEFAULT_EXTENSION_RULE

    @field_validator("immediate_working_days", mode="before")
    @classmethod
    def _immediate(cls, value: object) -> object:
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60):
            raise ValueError(f"the working days after the feedback date a 立行立改 item is due: a whole number from "
                             f"0 to 60, not {value!r}")
        return value

    def state(self, name: str) -> StateDef:
        return next(s for s in self.states if s.name == name)

    def states_by_role(self) -> dict[str, set[str]]:
        """Role -> the states from which that role may take a step (who an issue waits on)."""
        out: dict[str, set[str]] = {}
        for t in self.transitions:
            for role in t.roles or ["anyone"]:
                out.setdefault(role, set()).update(t.source)
        return out

    def label(self, state: str, lang: str = "zh") -> str:
        for s in self.states:
            if s.name == state:
                return (s.label_en or s.name) if lang == "en" else s.label
        return state

    def status_word(self, state: str) -> str:
        """The word an export writes for ``state``: the first status word, else the label."""
        words = self.status_words.get(state)
        return words[0] if words else self.label(state)

    def word_to_state(self) -> dict[str, str]:
        table = {s.label: s.name for s in self.states}
        table.update({s.name: s.name for s in self.states})
        for state, words in self.status_words.items():
            for word in words:
                table[word] = state
        return table

    def rank(self, state: str) -> int:
        """The state's place in the ``states`` list, which reads in the order work progresses."""
        return next((i for i, s in enumerate(self.states) if s.name == state), -1)

    def triggers_from(self, state: str) -> list[str]:
        out: list[str] = []
        for t in self.transitions:
            if state in t.source and t.trigger not in out:
                out.append(t.trigger)
        return out
