"""Where things are found by name: a command's module, the workspace's templates, the inputs a step
form shows (chosen by guard key, never by the words people read)."""

from __future__ import annotations

import importlib
import re

import click
import pytest

from engine.app.cli.main import COMMANDS
from engine.app.http.pages import BOARD_TEMPLATES
from engine.app.http.workspace.env import WORKSPACE_TEMPLATES
from engine.config import BoardConfig
from engine.issues.actions import Offer
from engine.workflow.words import GUARD_NEEDS


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_lives_in_the_module_of_its_name(name):
    attribute, _ = COMMANDS[name]
    command = getattr(importlib.import_module(f"engine.app.cli.{name}"), attribute)
    assert isinstance(command, click.Command) and command.name == name


def test_the_workspace_templates_are_its_own():
    ours = {p.name for p in WORKSPACE_TEMPLATES.glob("*.j2")}
    assert "ws_issue.html.j2" in ours and "ws_base.html.j2" in ours
    assert not {p.name for p in BOARD_TEMPLATES.glob("ws_*.j2")}  # the board keeps only its own pages


def test_step_inputs_follow_guard_keys_not_wording():
    text = (WORKSPACE_TEMPLATES / "ws_issue.html.j2").read_text(encoding="utf-8")
    tests = re.findall(r"{%\s*if ([^%]*o\.(?:needs|unmet)[^%]*)%}", text)
    assert tests and not any(words in test for test in tests for words in GUARD_NEEDS.values())
    assert '"has_evidence" in o.unmet' in text and '"new_deadline" in o.unmet' in text
    offer = Offer("submit", "提交", ("has_evidence", "has_note"))
    assert offer.needs == [GUARD_NEEDS["has_evidence"], GUARD_NEEDS["has_note"]]


@pytest.mark.parametrize(("written", "base", "https"), [
    (None, "", False), ("", "", False), ("http://127.0.0.1:8790", "http://127.0.0.1:8790", False),
    ("https://duban.example.org/sub/", "https://duban.example.org/sub", True),
    ("https://督办.政务.cn/", "https://督办.政务.cn", True),  # links keep the name people know
])
def test_public_url_is_read_once(written, base, https):
    board = BoardConfig.model_validate({} if written is None else {"public_url": written})
    assert board.base_url == base and board.https is https


@pytest.mark.parametrize("bad", ["duban.example.org", "ftp://duban.example.org", "https://"])
def test_a_public_url_that_is_no_web_address_is_refused(bad):
    with pytest.raises(ValueError, match="public_url"):
        BoardConfig.model_validate({"public_url": bad})
