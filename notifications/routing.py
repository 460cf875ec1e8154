"""Routing rules: who beyond the issue's own leader and department hears about a reminder.

Rules are YAML (``workflows/routing/*.yaml``), read in order, like Alertmanager's routes: each rule
matches reminders by area, category, department, leader, ledger, subject, kind, rule, state or minimum
escalation level, and then ``add``s recipients, ``replace``s them, or marks the reminder ``urgent``
(urgent reminders are delivered outside working hours too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.errors import WorkflowError
from engine.workflow.loader import schema_errors
from engine.workflow.yamlsource import YamlSyntaxError, load_located

StrList = Annotated[list[str], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    area: StrList = Field(default_factory=list)
    category: StrList = Field(default_factory=list)
    department: StrList = Field(default_factory=list)
    leader: StrList = Field(default_factory=list)
    ledger: StrList = Field(default_factory=list)
    subject: StrList = Field(default_factory=list)
    kind: StrList = Field(default_factory=list)
    rule: StrList = Field(default_factory=list)
    state: StrList = Field(default_factory=list)  # the state (its name, e.g. in_progress)
    min_level: int | None = None


class Route(_Strict):
    name: str = ""
    match: Match = Match()
    add: StrList = Field(default_factory=list)
    replace: StrList | None = None
    urgent: bool = False


class RoutingFile(_Strict):
    routes: list[Route] = Field(default_factory=list)


@dataclass(frozen=True)
class Routed:
    recipients: list[str]
    urgent: bool


def _matches(m: Match, facts: dict[str, Any]) -> bool:
    for key in ("area", "category", "department", "leader", "ledger", "subject", "kind", "rule", "state"):
        wanted = getattr(m, key)
        if wanted and facts.get(key) not in wanted:
            return False
    return m.min_level is None or facts.get("level", 0) >= m.min_level


def route(routes: list[Route], recipients: list[str], facts: dict[str, Any]) -> Routed:
    """Apply every matching rule in order to the reminder's own recipients."""
    out = list(recipients)
    urgent = False
    for r in routes:
        if not _matches(r.match, facts):
            continue
        if r.replace is not None:
            out = list(r.replace)
        out += [name for name in r.add if name not in out]
        urgent = urgent or r.urgent
    return Routed(out, urgent)


def load_routes(dirs: list[Path]) -> list[Route]:
    routes: list[Route] = []
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            try:
                doc = load_located(path.read_text(encoding="utf-8"), str(path))
            except YamlSyntaxError as exc:
                raise WorkflowError(f"{path}: invalid routing file", details=[str(exc)]) from None
            try:
                routes += RoutingFile.model_validate(doc.data or {}).routes
            except ValidationError as exc:
                raise WorkflowError(f"{path}: invalid routing file", details=schema_errors(exc, doc)) from None
    return routes
