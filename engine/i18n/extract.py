"""Babel's extractor for duban: the messages people read, including the f-strings.

``pybabel extract -F babel.cfg`` runs :func:`extract` over engine/ and notifications/. Besides the
usual ``_()``, ``N_()`` and ``ngettext()`` calls it collects, without any marker at the source:

- the message, ``hint=`` and literal ``details=`` of ``raise``-able errors (duban's DubanError
  family, click's BadParameter/UsageError/ClickException, any ``...Error`` but programming errors),
- f-strings appended to a list of problems or warnings (``problems.append(f"{where}: unknown key {k!r}")``),
  the message of a ledger row's problem (``self.problem(number, "deadline", f"...")``) and how an
  import read a cell (``readings.add(row, column, raw, f"...")``),
- the %-format strings of ``log.warning()``/``error()``/``exception()``/``info()`` (translated by the
  CLI's log formatter before the arguments go in, as gettext does),
- what ``say()``, ``warn()``, ``error_lines([...])``, ``click.confirm()`` and ``click.prompt()`` print,
- ``help=`` of click options and the docstrings of click commands and groups (cleaned as click
  cleans them, up to a ``\\f``).

An f-string becomes a msgid with its placeholders written as in the source
(``f"no ledger {name!r}"`` → ``no ledger {name!r}``); ``engine.i18n.translate`` matches finished
messages against such msgids. Literal braces are doubled, as in ``str.format``.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from typing import IO, Any

ERRORS = {
    "DubanError", "BadInput", "ConfigError", "WorkflowError", "LedgerError", "NotFound", "Refused", "Forbidden",
    "NoSpace", "AlreadyRunning", "EvidenceMissing", "EvidenceChanged", "Damaged",
    "BadParameter", "UsageError", "ClickException", "FileError",
    "ValueError",  # the ledger's cells, schedules and settings: wrapped into row and config messages
}
# programming errors, never shown to a person as a message
NOT_MESSAGES = {"TypeError", "KeyError", "AssertionError", "RuntimeError", "AttributeError", "NotImplementedError",
                "IndexError", "LookupError"}
PRINTERS = {"say", "warn", "confirm", "prompt", "secho", "echo", "translate"}
GETTEXT = {"_", "N_", "gettext"}
# logging calls whose %-format string a person reads on the terminal or in the journal
LOG_LEVELS = {"warning", "error", "exception", "critical", "info"}
# lists the problems of a file are gathered in before one error carries them all as its details
PROBLEM_LISTS = {"problems", "out", "errors", "details", "lines", "warnings"}
COMMAND_DECORATORS = {"command", "group"}
# an import's writer records a line a person reads: a claim not applied, a change (engine.ledger.writer)
RECORDERS = {"note", "change"}

Found = tuple[int, str, str | tuple[str, str], list[str]]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def message_of(node: ast.expr | None) -> str | None:
    """A string literal, an f-string (as a msgid with placeholders) or ``"...".format(...)``; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(value.value.replace("{", "{{").replace("}", "}}"))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + placeholder(value) + "}")
        return "".join(parts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and isinstance(node.func.value, ast.Constant) and isinstance(node.func.value.value, str)):
        return node.func.value.value
    return None


def placeholder(value: ast.FormattedValue) -> str:
    text = ast.unparse(value.value)
    if value.conversion != -1:
        text += "!" + chr(value.conversion)
    if value.format_spec is not None:
        spec = message_of(value.format_spec) or ""
        text += ":" + spec
    return text


def _wanted(message: str | None) -> bool:
    """Text a person reads: at least one letter outside the placeholders."""
    if not message:
        return False
    import re

    fixed = re.sub(r"\{[^{}]*\}", "", message)
    return any(ch.isalpha() for ch in fixed)


def messages(tree: ast.AST) -> Iterator[Found]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from _from_call(node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _is_command(node):
            doc = ast.get_docstring(node, clean=False)
            text = inspect.cleandoc(doc).partition("\f")[0].strip() if doc else None
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, ["docstring of a command"]


def _is_command(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(isinstance(d, ast.Call) and _name(d.func) in COMMAND_DECORATORS for d in node.decorator_list)


def _from_call(node: ast.Call) -> Iterator[Found]:
    # the function name Babel is given is a gettext keyword or "" (Babel looks up keywords by it)
    name = _name(node.func)
    first = node.args[0] if node.args else None
    if name in GETTEXT:
        text = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        if text:
            yield node.lineno, name, text, []
    elif name == "ngettext" and len(node.args) >= 2:
        one, many = message_of(node.args[0]), message_of(node.args[1])
        if one and many:
            yield node.lineno, name, (one, many), []
    elif name in ERRORS or name in PRINTERS or (name.endswith("Error") and name not in NOT_MESSAGES):
        for arg in node.args:  # YamlSyntaxError(where, message): the message need not come first
            text = message_of(arg)
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, []
    elif (name in LOG_LEVELS and isinstance(node.func, ast.Attribute) and _name(node.func.value) in ("log", "logger")
          and isinstance(first, ast.Constant) and isinstance(first.value, str)):
        yield node.lineno, "", first.value, ["a log message: %-format, translated before its arguments go in"]
    elif (name == "append" and isinstance(node.func, ast.Attribute) and _name(node.func.value) in PROBLEM_LISTS
          and isinstance(first, ast.JoinedStr)):
        text = message_of(first)
        if _wanted(text):
            assert text is not None
            yield node.lineno, "", text, []
    elif (name in RECORDERS and isinstance(node.func, ast.Attribute) and _name(node.func.value) == "self"
          and any(isinstance(arg, ast.JoinedStr) for arg in node.args)):
        for arg in node.args:  # an import's note(result, line) and change(result, line)
            text = message_of(arg) if isinstance(arg, ast.JoinedStr) else None
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, []
    elif (name == "add" and isinstance(node.func, ast.Attribute) and _name(node.func.value) in ("readings", "carried")
          and len(node.args) >= 4):
        meaning = node.args[3]  # Readings.add(row, column, raw, meaning): how a cell was read
        for text in ([message_of(meaning.body), message_of(meaning.orelse)] if isinstance(meaning, ast.IfExp)
                     else [message_of(meaning)]):
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, []
    elif name == "problem" and isinstance(node.func, ast.Attribute) and node.args:
        text = message_of(node.args[-1])  # a row's problem: RowReader.problem(row, field, message)
        if _wanted(text):
            assert text is not None
            yield node.lineno, "", text, []
    elif name == "error_lines" and isinstance(first, ast.List):
        for element in first.elts:
            text = message_of(element)
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, []
    for keyword in node.keywords:
        if keyword.arg in ("help", "hint", "prompt", "confirmation_prompt"):
            text = message_of(keyword.value)
            if _wanted(text):
                assert text is not None
                yield node.lineno, "", text, []
        elif keyword.arg == "details" and name in ERRORS and isinstance(keyword.value, ast.List):
            for element in keyword.value.elts:
                text = message_of(element)
                if _wanted(text):
                    assert text is not None
                    yield node.lineno, "", text, []


def extract(fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]) -> Iterator[Found]:
    """Babel's extraction method (``[engine.i18n.extract:extract: **.py]`` in babel.cfg)."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    try:
        tree = ast.parse(source)
    except SyntaxError:  # pragma: no cover - not our Python
        return
    yield from sorted(messages(tree), key=lambda found: found[0])
