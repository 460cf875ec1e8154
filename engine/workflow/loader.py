"""Load a workflow file, check its meaning, and give it a content hash.

Checks beyond the schema: the initial state and every source and dest exist, every state is
reachable from the initial one, no trigger is defined twice from the same state, guards come from
the allow-list, status words name real states and mean one state each, and the ledger column map
names known fields. Every problem is reported at once, each as ``FILE:LINE:COL: message``.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import WorkflowError
from .guards import GUARDS, STEP_ROLES
from .schema import LEDGER_FIELDS, WorkflowDef
from .yamlsource import Located, YamlSyntaxError, load_located

# Names transitions puts on the model (or that the model already has) cannot be triggers.
RESERVED = {"state", "trigger", "refusals", "machine"}


@dataclass(frozen=True)
class LoadedWorkflow:
    definition: WorkflowDef
    source: str
    path: str
    content_hash: str

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def version(self) -> str:
        return self.content_hash[:12]


def content_hash(definition: WorkflowDef) -> str:
    """Hash of the meaning, not the bytes: comments and layout do not make a new version."""
    data = definition.model_dump(mode="json", by_alias=True)
    for state in data["states"]:  # keys added later hash only when set, so a version keeps its hash
        if state.get("import") == "along":
            del state["import"]
        if state.get("actor") == []:
            del state["actor"]
    if data.get("report") == {}:
        del data["report"]
    if data.get("extension_requests") is None:
        del data["extension_requests"]
    if data.get("immediate_working_days") is None:
        data.pop("immediate_working_days", None)
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_workflow_text(text: str, file: str) -> LoadedWorkflow:
    try:
        doc = load_located(text, file)
    except YamlSyntaxError as exc:
        raise WorkflowError(f"{file}: invalid workflow", details=[str(exc)]) from None
    if not isinstance(doc.data, dict):
        raise WorkflowError(
            f"{file}: invalid workflow", details=[f"{doc.where(())}: the file must be a mapping"]
        )
    try:
        definition = WorkflowDef.model_validate(doc.data)
    except ValidationError as exc:
        raise WorkflowError(f"{file}: invalid workflow", details=schema_errors(exc, doc)) from None
    problems = check_meaning(definition, doc)
    if problems:
        raise WorkflowError(f"{file}: invalid workflow", details=problems)
    return LoadedWorkflow(definition, text, file, content_hash(definition))


def load_workflow(path: Path) -> LoadedWorkflow:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise WorkflowError(f"{path}: invalid workflow", details=[f"{path}:1:1: not UTF-8 ({exc.reason})"]) from None
    return load_workflow_text(text, str(path))


def schema_errors(exc: ValidationError, doc: Located) -> list[str]:
    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        kind = err["type"]
        if kind == "extra_forbidden":
            out.append(f"{doc.where(loc, key=True)}: unknown key {loc[-1]!r}")
        elif kind == "missing":
            out.append(f"{doc.where(loc[:-1])}: missing required key {loc[-1]!r}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            field = ".".join(str(p) for p in loc) or "document"
            out.append(f"{doc.where(loc)}: {field}: {msg}")
    return out


def check_meaning(wf: WorkflowDef, doc: Located) -> list[str]:
    problems: list[str] = []
    at = doc.where
    names: dict[str, int] = {}
    for i, state_def in enumerate(wf.states):
        if state_def.name in names:
            problems.append(f"{at(('states', i, 'name'))}: duplicate state {state_def.name!r}")
        names.setdefault(state_def.name, i)
    if wf.initial not in names:
        problems.append(f"{at(('initial',))}: unknown initial state {wf.initial!r}{_known(names)}")

    seen: dict[tuple[str, str], int] = {}
    for i, t in enumerate(wf.transitions):
        if t.trigger in RESERVED or t.trigger.startswith(("to_", "may_", "is_")):
            problems.append(f"{at(('transitions', i, 'trigger'))}: trigger name {t.trigger!r} is reserved")
        for j, source in enumerate(t.source):
            path: tuple[str | int, ...] = ("transitions", i, "source", j)
            if path not in doc.marks:
                path = ("transitions", i, "source")
            if source not in names:
                problems.append(f"{at(path)}: unknown source state {source!r}{_known(names)}")
            key = (t.trigger, source)
            if key in seen:
                first = at(("transitions", seen[key], "trigger")).rsplit(":", 2)[-2]
                problems.append(
                    f"{at(('transitions', i, 'trigger'))}: duplicate trigger {t.trigger!r} from state "
                    f"{source!r} (first defined at line {first})"
                )
            seen.setdefault(key, i)
        if t.dest not in names:
            problems.append(f"{at(('transitions', i, 'dest'))}: unknown dest state {t.dest!r}{_known(names)}")
        for kind in ("conditions", "unless"):
            for j, guard in enumerate(getattr(t, kind)):
                if guard not in GUARDS:
                    problems.append(
                        f"{at(('transitions', i, kind, j))}: unknown guard {guard!r} "
                        f"(allowed: {', '.join(sorted(GUARDS))})"
                    )
        for j, role in enumerate(t.roles):
            if role not in STEP_ROLES:
                problems.append(
                    f"{at(('transitions', i, 'roles', j))}: unknown role {role!r} (allowed: {', '.join(STEP_ROLES)})"
                )

    if wf.initial in names:
        for state in sorted(set(names) - _reachable(wf)):
            problems.append(
                f"{at(('states', names[state], 'name'))}: state {state!r} cannot be reached from {wf.initial!r}"
            )

    owner: dict[str, str] = {}
    for state, words in wf.status_words.items():
        if state not in names:
            problems.append(f"{at(('status_words', state), key=True)}: status words for unknown state {state!r}")
        for j, word in enumerate(words):
            if word in owner and owner[word] != state:
                problems.append(
                    f"{at(('status_words', state, j))}: status word {word!r} already means {owner[word]!r}"
                )
            owner.setdefault(word, state)
    for field in wf.columns:
        if field not in LEDGER_FIELDS:
            problems.append(
                f"{at(('columns', field), key=True)}: unknown ledger field {field!r} "
                f"(known: {', '.join(LEDGER_FIELDS)})"
            )
    for state in wf.deadlines:
        if state not in names:
            problems.append(f"{at(('deadlines', state), key=True)}: deadline for unknown state {state!r}{_known(names)}")
    if wf.checkins is not None and wf.checkins.state not in names:
        problems.append(f"{at(('checkins', 'state'))}: unknown state {wf.checkins.state!r}{_known(names)}")
    if wf.checkins is not None and wf.checkins.state in wf.deadlines:
        problems.append(f"{at(('checkins', 'state'))}: state {wf.checkins.state!r} has a deadline and check-ins; "
                        "choose one")
    if len({m.name for m in wf.milestones}) != len(wf.milestones):
        problems.append(f"{at(('milestones',))}: milestone names must differ")
    for required in ("ref", "title"):
        if wf.columns and required not in wf.columns:
            problems.append(f"{at(('columns',))}: the column map must name the {required!r} column")
    return problems


def _known(names: dict[str, int]) -> str:
    return f" (states: {', '.join(names)})"


def _reachable(wf: WorkflowDef) -> set[str]:
    edges: dict[str, set[str]] = {}
    for t in wf.transitions:
        for source in t.source:
            edges.setdefault(source, set()).add(t.dest)
    seen = {wf.initial}
    queue = deque([wf.initial])
    while queue:
        for nxt in edges.get(queue.popleft(), ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen
