"""Recurring duties as written in YAML (``workflows/duties/*.yaml``), validated with positions."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..errors import WorkflowError
from ..workflow.loader import schema_errors
from ..workflow.rules import Offset, ReminderPolicy
from ..workflow.yamlsource import YamlSyntaxError, load_located
from .schedule import ScheduleSpec

_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
StrList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleDef(_Strict):
    cron: str | None = None
    rrule: str | None = None
    dtstart: dt.date | None = None
    period: str = "auto"


class ForEach(_Strict):
    """Do the duty once per issue in this state (e.g. a look-back for each long-term item)."""

    state: str


class DutyDef(_Strict):
    key: str
    title: str
    title_en: str = ""
    owners: StrList = Field(default_factory=list, description="recipients; for_each duties add the issue's own")
    schedule: ScheduleDef
    due: Offset = Offset()
    reminders: ReminderPolicy = ReminderPolicy(before_working_days=(3, 1))
    for_each: ForEach | None = None
    # From when the duty's periods exist (default: the day it is first registered). Periods before
    # that day are history: they can be recorded late (`duty done --period … --on DATE`) but are
    # never reminded of, since duban did not follow them then.
    since: dt.date | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _KEY.match(value):
            raise ValueError(f"duty key {value!r} must be lower-case letters, digits, - and _")
        return value

    def spec(self) -> ScheduleSpec:
        if self.due.months is not None:
            raise ValueError("a duty's due offset is days or working_days after its anchor, not months")
        return ScheduleSpec(cron=self.schedule.cron, rrule=self.schedule.rrule, dtstart=self.schedule.dtstart,
                            period=self.schedule.period, due_days=self.due.days or 0,
                            due_workdays=self.due.working_days)

    def content_hash(self) -> str:
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


class DutiesFile(_Strict):
    duties: list[DutyDef] = Field(default_factory=list)


@dataclass(frozen=True)
class LoadedDuty:
    definition: DutyDef
    path: str


def load_duties_text(text: str, file: str) -> list[LoadedDuty]:
    try:
        doc = load_located(text, file)
    except YamlSyntaxError as exc:
        raise WorkflowError(f"{file}: invalid duties file", details=[str(exc)]) from None
    try:
        parsed = DutiesFile.model_validate(doc.data if isinstance(doc.data, dict) else {"duties": doc.data})
    except ValidationError as exc:
        raise WorkflowError(f"{file}: invalid duties file", details=schema_errors(exc, doc)) from None
    problems: list[str] = []
    seen: dict[str, int] = {}
    for i, duty in enumerate(parsed.duties):
        if duty.key in seen:
            problems.append(f"{doc.where(('duties', i, 'key'))}: duplicate duty key {duty.key!r} "
                            f"(first at line {seen[duty.key]})")
        seen.setdefault(duty.key, doc.marks.get(("duties", i, "key"), (0, 0))[0])
        try:
            duty.spec().validate()
        except ValueError as exc:
            problems.append(f"{doc.where(('duties', i, 'schedule'))}: {exc}")
    if problems:
        raise WorkflowError(f"{file}: invalid duties file", details=problems)
    return [LoadedDuty(d, file) for d in parsed.duties]


def load_duty_dirs(dirs: list[Path]) -> list[LoadedDuty]:
    """Every duty in ``*.yaml`` of the folders (a missing folder means no duties)."""
    out: list[LoadedDuty] = []
    keys: dict[str, str] = {}
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for loaded in load_duties_text(path.read_text(encoding="utf-8"), str(path)):
                if loaded.definition.key in keys:
                    raise WorkflowError(f"{path}: duty {loaded.definition.key!r} is also defined in "
                                        f"{keys[loaded.definition.key]}")
                keys[loaded.definition.key] = str(path)
                out.append(loaded)
    return out
