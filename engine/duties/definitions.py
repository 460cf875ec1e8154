"""Recurring duties as written in YAML (``workflows/duties/*.yaml``), validated with positions.

A duty binds either the whole installation or some units. ``district: true`` (or neither key: as
before units existed) makes one occurrence per period for the installation, addressed to its
owners in every unit. ``units: [中共某某局党组, …]`` makes the duty each listed unit's own: one
row per unit (``UNIT/KEY``, see ``bound_key``) with its own occurrences, reminders that reach
that unit's accounts only, and a place in that unit's report appendix only. A duty done for each
issue in a state (``for_each``) follows its issues' units and binds none itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from ..errors import WorkflowError
from ..workflow.loader import schema_errors
from ..workflow.rules import Offset, ReminderPolicy
from ..workflow.yamlsource import Located, YamlSyntaxError, load_located
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
    # The units whose own duty it is (each keeps its own occurrences), or None: the installation's.
    units: StrList | None = None
    district: bool | None = None  # true: the installation's (the default when no units are named)

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

    def stored(self) -> dict[str, Any]:
        """The definition as the duties table keeps it (``spec``). The binding keys appear only when
        written, so a duty of the installation stores (and hashes) as it did before units existed."""
        data = self.model_dump(mode="json")
        for name in ("units", "district"):
            if data.get(name) is None:
                data.pop(name, None)
        return data

    def content_hash(self) -> str:
        text = json.dumps(self.stored(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def unit(self) -> str:
        """The unit a stored row of the duty is for ("" for the installation's)."""
        return self.units[0] if self.units and len(self.units) == 1 else ""

    def rows(self) -> list[tuple[str, DutyDef]]:
        """What the duties table holds for it: (key, definition) per bound unit, else the duty itself."""
        if not self.units:
            return [(self.key, self)]
        return [(bound_key(unit, self.key), self.model_copy(update={"units": [unit]})) for unit in self.units]


def bound_key(unit: str, key: str) -> str:
    """The stored key of a duty bound to ``unit``: ``UNIT/KEY``, as accounts are ``UNIT/NAME``."""
    return f"{unit}/{key}"


def split_key(stored: str) -> tuple[str, str]:
    """(unit, duty key) of a stored key; the unit is "" for the installation's duties and milestones."""
    unit, _, key = stored.rpartition("/")
    return unit, key


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
        problems += _binding_problems(duty, i, doc)
    if problems:
        raise WorkflowError(f"{file}: invalid duties file", details=problems)
    return [LoadedDuty(d, file) for d in parsed.duties]


_UNIT_LENGTH = 99  # a stored key is UNIT/KEY in 200 characters, a key up to 100


def _binding_problems(duty: DutyDef, i: int, doc: Located) -> list[str]:
    """What is wrong with the units a duty binds, each at its line and column."""
    at = doc.where
    problems: list[str] = []
    if duty.units is not None:
        if not duty.units:
            problems.append(f"{at(('duties', i, 'units'))}: units: name at least one unit, or leave units out "
                            "(district: true) for the whole installation")
        if duty.district:
            problems.append(f"{at(('duties', i, 'district'))}: district: true and units: say one: the whole "
                            "installation, or the units listed")
        if duty.for_each is not None:
            problems.append(f"{at(('duties', i, 'units'))}: units: a duty done for each issue (for_each) follows "
                            "its issues' units; leave units out")
        seen: set[str] = set()
        for j, unit in enumerate(duty.units):
            where = at(("duties", i, "units", j))
            if not unit.strip() or unit != unit.strip():
                problems.append(f"{where}: units: {unit!r} is not a unit name (blank, or spaces around it)")
            elif len(unit) > _UNIT_LENGTH:
                problems.append(f"{where}: units: {unit[:20]!r}… is longer than {_UNIT_LENGTH} characters")
            elif unit in seen:
                problems.append(f"{where}: units: {unit!r} is listed twice")
            seen.add(unit)
    elif duty.district is False:
        problems.append(f"{at(('duties', i, 'district'))}: district: false needs units: [the units it binds]")
    return problems


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
