"""docs/architecture.md names the path of one reminder: every module on it exists and has what it names.

The path is a fenced ``path`` block (the modules that do the work, in order) and a ``uses`` block
(what they hand each other); each line is ``module  attribute[.attribute]``. A module renamed, a
function moved or a class split without the document following fails here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "architecture.md"
MOST = 12  # modules on the path (issue #21: "aim for <= 12")


def named(block: str) -> list[tuple[str, str]]:
    found = re.search(rf"^```{block}\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    assert found is not None, f"docs/architecture.md has no ```{block} block"
    pairs = [tuple(line.split()) for line in found.group(1).splitlines() if line.strip()]
    assert all(len(p) == 2 for p in pairs), f"each line of ```{block} is 'module attribute'"
    return [(m, a) for m, a in pairs]


PATH = named("path")
USES = named("uses")


def test_the_path_is_short_and_each_module_named_once() -> None:
    modules = [m for m, _ in PATH]
    assert len(modules) == len(set(modules)), modules
    assert len(modules) <= MOST, f"{len(modules)} modules on the path"
    assert not set(modules) & {m for m, _ in USES}
    # the doc's own words: the planner computes every due date and escalation, so it is on the path
    assert "engine.reminders.planner" in modules and modules[-1].startswith("notifications.channels.")


@pytest.mark.parametrize(("module", "attribute"), PATH + USES, ids=[f"{m}:{a}" for m, a in PATH + USES])
def test_each_named_function_exists(module: str, attribute: str) -> None:
    found: object = importlib.import_module(module)
    for part in attribute.split("."):
        assert hasattr(found, part), f"{module} has no {attribute}"
        found = getattr(found, part)
    assert callable(found), f"{module}.{attribute} is not a function or class"


def test_every_module_the_prose_names_exists() -> None:
    """The prose names files (`engine/reminders/core.py`): each of them is there."""
    root = DOC.parent.parent
    files = set(re.findall(r"`((?:engine|notifications)/[\w/]+\.py)`", DOC.read_text(encoding="utf-8")))
    assert files
    missing = sorted(f for f in files if not (root / f).is_file())
    assert not missing, missing
