"""The language people read: zh-CN unless they ask for English, from a gettext catalogue.

The catalogue is ``engine/locale/zh_CN/LC_MESSAGES/duban.mo`` (compiled from ``duban.po`` with
Babel; see ``engine.i18n.extract`` for how the messages are collected). At run time only the
standard library's ``gettext`` reads it.

Messages raised deep in the engine are f-strings (``NotFound(f"no ledger {name!r}")``); their
msgids keep the placeholders (``no ledger {name!r}``), and :func:`translate` matches a finished
message against them at the output boundary, so no raise site has to change for a message to be
read in Chinese.
"""

from __future__ import annotations

import gettext as _gettext
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DOMAIN = "duban"
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
ENGLISH, CHINESE = "en", "zh_CN"
# the order the environment is read in: the first one set wins (as gettext and POSIX do)
LANGUAGE_VARIABLES = ("DUBAN_LANG", "LC_ALL", "LC_MESSAGES", "LANG")

_chosen: str | None = None  # set by choose(); None: read the environment when first needed


def language_of(value: str | None) -> str | None:
    """``en``/``en_US.UTF-8``/``English`` → English; any other non-empty value → Chinese; empty → unknown."""
    if not value:
        return None
    return ENGLISH if value.strip().lower().startswith("en") else CHINESE


def language_from(environ: Mapping[str, str], option: str | None = None) -> str:
    """``--lang`` first, then DUBAN_LANG, LC_ALL, LC_MESSAGES, LANG; Chinese when none says English.

    C/POSIX and an unset environment give Chinese: a server's service account usually has no
    locale at all, and the people who read its messages read Chinese.
    """
    for value in (option, *(environ.get(name) for name in LANGUAGE_VARIABLES)):
        found = language_of(value)
        if found is not None:
            return found
    return CHINESE


def choose(language: str | None) -> None:
    """Use this language from now on (None: read the environment again at the next message)."""
    global _chosen
    _chosen = language


def current() -> str:
    return _chosen if _chosen is not None else language_from(os.environ)


@cache
def _catalogue(language: str) -> _gettext.NullTranslations:
    if language == ENGLISH:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, str(LOCALE_DIR), languages=[language], fallback=True)


def catalogue() -> _gettext.NullTranslations:
    return _catalogue(current())


def _(message: str) -> str:
    """The message in the chosen language (the msgid itself in English or when not translated)."""
    return catalogue().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalogue().ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Marks a message for the catalogue where it is defined; it is translated where it is shown."""
    return message


# --- finished messages --------------------------------------------------------------------------

# a placeholder as the extractor writes it: the f-string's expression, conversion and format spec
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{[^{}]*\}")
# what ``{x!r}`` prints: a quoted string (a number or None unquoted); it ends where its quote does,
# so ``{state!r}{known}`` splits where the engine joined it
_REPR = r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s'"]*?)"""
# a msgid whose fixed text is shorter than this is no pattern (``{a}: {b}`` would match anything)
MIN_LITERAL = 6


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    anchor: str  # its longest fixed piece: a cheap test before the regex runs
    fixed: int  # how much fixed text it has: the more, the more specific
    names: tuple[str, ...]  # the placeholders in order, as written in the msgid
    msgstr: str


def _pattern(msgid: str, msgstr: str) -> _Pattern | None:
    pieces: list[str] = []
    literals: list[str] = []
    names: list[str] = []
    pos = 0
    for match in PLACEHOLDER.finditer(msgid):
        literal = msgid[pos:match.start()]
        pieces.append(re.escape(literal))
        literals.append(literal)
        token = match.group()
        if token in ("{{", "}}"):
            pieces.append(re.escape(token[0]))
            literals.append(token[0])
        else:
            pieces.append(_REPR if token.endswith("!r}") else "(.*?)")  # a value may be empty (an optional suffix)
            names.append(token)
        pos = match.end()
    if not names:
        return None
    pieces.append(re.escape(msgid[pos:]))
    literals.append(msgid[pos:])
    fixed = "".join(literals)
    if len(fixed.strip(" :,.;()[]'\"")) < MIN_LITERAL:
        return None
    regex = re.compile(r"\A" + "".join(pieces) + r"\Z", re.DOTALL)
    return _Pattern(regex, max(literals, key=len), len(fixed), tuple(names), msgstr)


@cache
def _patterns(language: str) -> tuple[_Pattern, ...]:
    """Every translated msgid with placeholders, the most specific (most fixed text) first."""
    messages: dict[object, str] = getattr(_catalogue(language), "_catalog", {})
    found = []
    for msgid, msgstr in messages.items():
        if isinstance(msgid, str) and msgid and msgstr and "{" in msgid:
            pattern = _pattern(msgid, msgstr)
            if pattern is not None:
                found.append(pattern)
    found.sort(key=lambda p: -p.fixed)
    return tuple(found)


def _put(pattern: _Pattern, by_name: dict[str, str]) -> str:
    def put(match: re.Match[str]) -> str:
        token = match.group()
        if token in ("{{", "}}"):
            return token[0]
        return by_name.get(token, token)

    return PLACEHOLDER.sub(put, pattern.msgstr)


def _fill(pattern: _Pattern, values: tuple[str, ...], language: str) -> str:
    """The msgstr with the values put in; a value that is itself a message (it has a space: not a
    name or a number) is translated too, as in ``YAML syntax error: {problem}``."""
    by_name = {}
    for name, value in zip(pattern.names, values, strict=True):
        # a nested message may have its own place in front (``提交销号申请 (submit): evidence …``):
        # translated as a whole message is, each value being shorter than the text it came from
        by_name[name] = translate(value, language) if " " in value.strip() else value
    return _put(pattern, by_name)


def _exact(text: str, language: str) -> str | None:
    found = _catalogue(language).gettext(text)
    return found if found != text else None


def _by_pattern(text: str, language: str, nested: bool = True) -> str | None:
    for pattern in _patterns(language):
        if pattern.anchor in text:
            match = pattern.regex.match(text)
            if match is not None:
                if nested:
                    return _fill(pattern, match.groups(), language)
                return _put(pattern, dict(zip(pattern.names, match.groups(), strict=True)))
    return None


_LETTERS = re.compile(r"[A-Za-z]")
# where a place in front of a message ends: ``FILE: row 3: message``, and an import's reading of a
# cell, ``FILE: row 3: 整改时限: 2026年底前 → how it was read``
_PLACE_ENDS = (": ", " → ")
# the rows of a sheet in the place in front of a translated message ("row 5: ", "rows 2–3: "),
# read 第 5 行 once the message is Chinese
_ROWS = re.compile(r"\brows? (\d+(?:–\d+)?)(?=: )")


def translate(text: str, language: str | None = None) -> str:
    """A finished message in the chosen language: by its msgid, by a msgid with placeholders, or as is.

    A message with a place in front (``FILE:LINE:COL: message``, ``row 3: message``, a cell and
    ``→``) is found by its tail when the whole is not a msgid: the place is kept (its sheet rows
    read 第 3 行) and the tail translated. Of the tails that are messages, the one leaving the
    fewest English letters wins (``x.yaml:3:1: YAML syntax error: expected ...`` is the msgid
    ``YAML syntax error: {problem}`` with a place in front, not a bare PyYAML message with more in
    front); on a tie, the longer tail and an exact msgid.
    """
    language = language or current()
    if language == ENGLISH or not text:
        return text
    found = _exact(text, language) or _by_pattern(text, language)
    if found is not None:
        return _place(found, language)
    best: tuple[int, str, str] | None = None  # English letters left, the place, the translated tail
    for mark in _PLACE_ENDS:
        cut = text.find(mark)
        while cut != -1:
            head, tail = text[:cut + len(mark)], text[cut + len(mark):]
            for find in (_exact, _by_pattern):
                translated = find(tail, language)
                if translated is not None:
                    left = len(_LETTERS.findall(head + translated))
                    if best is None or left < best[0]:
                        best = (left, head, translated)
            cut = text.find(mark, cut + len(mark))
    if best is None:
        # no message after the place, and nothing English either: a cell and how it was read
        # (``row 3: 整改时限: 2027年3月底前 → 2027-03-31``) are the reader's words; the place is ours
        rows = _ROWS.search(text)
        if rows is not None:
            rest = _place(text[rows.start():], language)
            if not _LETTERS.search(rest):
                return text[:rows.start()] + rest
        return text
    _, head, tail = best
    return _place(head, language) + tail


# how an import's readings (engine.ledger.readings) and a change's before → after show an empty
# cell; the domain writes it in English, like every message, and the place is translated here
BLANK = N_("(blank)")


def _place(head: str, language: str) -> str:
    """The place in front of a message in the reader's language: its sheet rows, an empty cell."""
    return _ROWS.sub(_rows, head).replace(BLANK, _exact(BLANK, language) or BLANK)


def _rows(match: re.Match[str]) -> str:
    return f"第 {match.group(1)} 行"


def bind_click() -> None:
    """Click's own texts (Usage:, Options:, Error: No such option ...) through this catalogue.

    Click's modules call ``gettext.gettext``/``ngettext`` of the default domain, bound at import
    as ``_``/``ngettext``; they are pointed at this module's functions once, so click's msgids
    (``"Usage:"``, ``"No such option: {name}"``) live in duban's catalogue with the rest.
    """
    import importlib

    for name in ("core", "exceptions", "formatting", "parser", "decorators", "types", "termui", "utils",
                 "_termui_impl", "shell_completion"):
        try:
            module = importlib.import_module(f"click.{name}")
        except ImportError:  # pragma: no cover - a click without this module
            continue
        if getattr(module, "_", None) is _gettext.gettext:
            module._ = _  # type: ignore[attr-defined]
        if getattr(module, "ngettext", None) is _gettext.ngettext:
            module.ngettext = ngettext  # type: ignore[attr-defined]
