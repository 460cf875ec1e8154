"""Turning one recipient's reminders into a message: subject, plain text, HTML and robot markdown.

A ``Digest`` is everything one recipient gets on one channel at one time. The renderer orders its
items by urgency (``URGENCY``), groups them into sections, hangs per-item reminders that a
ledger-level escalation inhibited (``Digest.folded``) under that escalation, and renders the
templates of its language (``notifications/templates/<language>/``).

Templates come from configuration and YAML, so they are treated as untrusted: they run in Jinja's
sandbox (no ``__class__``, ``__globals__``… walks to Python internals) with ``StrictUndefined``
(a misspelt variable is an error, not a silently empty line in a reminder to a Party secretary).
HTML templates autoescape; text and markdown do not, since their readers see characters, not markup.

Template variables
------------------
Every digest template (``subject.txt.j2``, ``digest.txt.j2``, ``digest.html.j2``, ``digest.md.j2``)
gets ``recipient``, ``channel_kind``, ``language``, ``generated_at`` (aware, in the digest's zone),
``tz`` (its name), ``sections`` (``[{kind, title, entries}]`` in urgency order, empty ones left out),
``counts`` (kind -> top-level items), ``total``, ``folded_total`` and ``hints`` (an example issue
``ref``, ``checkin`` subject and ``duty`` ``{key, period}`` for the "how to record progress"
lines, each None when absent). The body templates also get ``subject``.

An entry (and the item line template ``item.txt.j2`` or a per-rule override) has the item's fields
``kind rule subject title ledger ref due days_overdue level period``, ``what_due`` (the deadline's
own title: 制定整改方案, 整改时限, 报送整改情况报告), ``actions`` (the workflow's next steps from the
state, as labels) and ``url`` (the item's page, or None), plus ``due_text`` (the
deadline formatted for the language, "" without one), ``days_left`` (N of a ``before-N`` rule,
else None) and the pieces ``where``, ``what``, ``deadline``, ``status`` as worded by the macros of
``macros.j2`` (plain strings). Item line templates get these as variables and as ``item``; entries also carry
``line`` (the rendered item line), ``custom`` (whether an override made it) and ``folded`` (the
entries folded under it).

Filters: ``fmtdate`` (a date per language) and ``fmttime`` (an aware datetime per language).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateRuntimeError,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

# The digest and its ordering are notifications.digest, the sample data of the checks
# notifications.samples; both are re-exported here, where callers have always found them.
from notifications.digest import URGENCY, Digest, DigestItem, fold_hosts, hints, urgency_key
from notifications.samples import sample_digest, sample_items

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("zh-CN", "en")

SUBJECT = "subject.txt.j2"
TEXT = "digest.txt.j2"
HTML = "digest.html.j2"
MARKDOWN = "digest.md.j2"
ITEM = "item.txt.j2"  # the default item line; a rule's ``item_template`` replaces it for that rule
MACROS = "macros.j2"  # the wording of an item's pieces and of section titles
ENTRY_POINTS = (SUBJECT, TEXT, HTML, MARKDOWN)

# Dates are written the way each readership writes them: 2022年9月30日 on a Chinese ledger, ISO otherwise.
_DATE_FORMATS: dict[str, Callable[[dt.date], str]] = {
    "zh-CN": lambda d: f"{d.year}年{d.month}月{d.day}日",
    "en": lambda d: d.isoformat(),
}
_TIME_FORMATS: dict[str, Callable[[dt.datetime], str]] = {
    "zh-CN": lambda t: f"{t.year}年{t.month}月{t.day}日 {t:%H:%M}",
    "en": lambda t: f"{t:%Y-%m-%d %H:%M}",
}

_BEFORE = re.compile(r"before-(\d+)")
# The item fields a template sees; ``item_template`` is how the line is made, not what it says.
_ITEM_FIELDS = ("kind", "rule", "subject", "title", "ledger", "ref", "due", "days_overdue", "level", "period",
                "what_due", "actions", "url")
# Macros of macros.j2 that word one piece of an item, each given to templates as a plain string.
_PIECES = ("where", "what", "deadline", "status")


@dataclass(frozen=True)
class Rendered:
    """A digest in every form a channel may want."""

    subject: str
    text: str
    html: str
    markdown: str  # for the DingTalk / WeCom robots
    lines: tuple[str, ...] = ()  # each top-level item's line, most urgent first (the apps' cards)


class Renderer:
    """Renders digests with the templates of one language; see the module docstring."""

    def __init__(self, language: str = "zh-CN", template_dir: Path | None = None) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        self.language = language
        self.template_dir = Path(template_dir) if template_dir is not None else None
        # The override directory comes first, so a file there replaces the shipped one of that name.
        search = ([str(self.template_dir)] if self.template_dir is not None else []) + [str(TEMPLATES / language)]
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader(search),
            undefined=StrictUndefined,
            # The names end in .j2, so "html" alone would never match; strings (item overrides)
            # are plain text and get escaped when an HTML template prints them.
            autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["fmtdate"] = _DATE_FORMATS[language]
        self.env.filters["fmttime"] = _TIME_FORMATS[language]
        self._overrides: dict[str, Template] = {}

    # -- rendering ---------------------------------------------------------------------------

    def render(self, digest: Digest) -> Rendered:
        """The digest as subject, text, HTML and markdown."""
        context = self._context(digest)
        subject = _one_line(self.env.get_template(SUBJECT).render(context))
        context["subject"] = subject
        return Rendered(
            subject=subject,
            text=_tidy(self.env.get_template(TEXT).render(context)),
            html=_tidy(self.env.get_template(HTML).render(context)),
            markdown=_tidy(self.env.get_template(MARKDOWN).render(context)),
            lines=tuple(e["line"] for s in context["sections"] for e in s["entries"]),
        )

    def _context(self, digest: Digest) -> dict[str, Any]:
        items = sorted(digest.items, key=urgency_key)
        hosts = fold_hosts(items, digest.folded)
        top = list(items)
        for ledger, folded in digest.folded.items():
            if ledger not in hosts:
                # No escalation of that ledger in this digest: show them as ordinary items
                # rather than lose reminders.
                top.extend(folded)
        top.sort(key=urgency_key)

        entries = []
        for item in top:
            children = digest.folded.get(item.ledger or "", []) if hosts.get(item.ledger or "") is item else []
            entries.append(self._entry(item, [self._entry(c, []) for c in sorted(children, key=urgency_key)]))
        macros = self._macros()
        sections = [{"kind": kind, "title": _one_line(macros.section_title(kind)),
                     "entries": [e for e in entries if e["kind"] == kind]} for kind in URGENCY]
        sections = [s for s in sections if s["entries"]]
        counts = {kind: sum(1 for i in top if i.kind == kind) for kind in URGENCY}
        local = digest.generated_at.astimezone(digest.tz)
        return {
            "recipient": digest.recipient,
            "channel_kind": digest.channel_kind,
            "language": self.language,
            "generated_at": local,
            "tz": digest.tz.key,
            "sections": sections,
            "counts": counts,
            "total": len(top),
            "folded_total": sum(len(e["folded"]) for e in entries),
            "hints": hints(top, digest.folded),
            "workspace_url": digest.workspace_url,
        }

    def _entry(self, item: DigestItem, folded: list[dict[str, Any]]) -> dict[str, Any]:
        variables = self._variables(item)
        line, custom = None, False
        if item.item_template is not None:
            try:
                line = _one_line(self._override(item.item_template).render(variables))
                custom = bool(line)
            except Exception as exc:  # noqa: BLE001 - a bad YAML override must not swallow the reminder
                # check_item_template() reports this when the workflow loads; here the
                # reminder still goes out, with the shipped line.
                log.warning("item template of rule %s failed for %s (%s: %s); using the default line",
                            item.rule, item.subject, type(exc).__name__, exc)
        if not line:
            line = _one_line(self.env.get_template(ITEM).render(variables))
        return {**variables, "line": line, "custom": custom, "folded": folded}

    def _variables(self, item: DigestItem) -> dict[str, Any]:
        values = {name: getattr(item, "what" if name == "what_due" else name) for name in _ITEM_FIELDS}
        match = _BEFORE.fullmatch(item.rule)
        values["due_text"] = _DATE_FORMATS[self.language](item.due) if item.due is not None else ""
        values["days_left"] = int(match.group(1)) if match else None
        # The wording pieces are rendered here, once, as plain strings. A template printing a
        # macro's result directly would be unsafe in HTML: a macro of a plain-text template
        # returns its text marked safe to an autoescaping caller, titles and all, unescaped.
        macros = self._macros()
        for piece in _PIECES:
            values[piece] = _one_line(getattr(macros, piece)(values))
        return {**values, "item": dict(values)}

    def _macros(self) -> Any:
        """The module of ``macros.j2``, checked to have every macro the renderer calls."""
        module = self.env.get_template(MACROS).module
        missing = [name for name in (*_PIECES, "section_title") if not callable(getattr(module, name, None))]
        if missing:
            raise TemplateRuntimeError(f"{MACROS} has no macro {', '.join(missing)}")
        return module

    def _override(self, source: str) -> Template:
        # Overrides are per rule and few; compile each source once.
        template = self._overrides.get(source)
        if template is None:
            template = self._overrides[source] = self.env.from_string(source)
        return template

    # -- checking ----------------------------------------------------------------------------

    def check_item_template(self, source: str, where: str) -> list[str]:
        """Problems of an item line override, as ``WHERE: line N: Error: message`` lines.

        The source is compiled, then rendered with a sample item of every kind, since a template
        may only fail for some (``{{ ref|int }}`` on a duty, which has no 序号).
        """
        try:
            template = self.env.from_string(source)
        except TemplateSyntaxError as exc:
            return [f"{where}: line {exc.lineno}: {type(exc).__name__}: {exc.message}"]
        failures: dict[str, list[str]] = {}  # message -> kinds it failed for
        for item in sample_items():
            try:
                if not _one_line(template.render(self._variables(item))):
                    failures.setdefault("renders an empty line", []).append(item.kind)
            except Exception as exc:  # noqa: BLE001 - any failure of an untrusted template is reported
                failures.setdefault(_describe(exc, {"<template>"}), []).append(item.kind)
        problems = []
        for message, kinds in failures.items():
            kinds = list(dict.fromkeys(kinds))
            which = "every kind" if len(kinds) == len(URGENCY) else "kind " + ", ".join(kinds)
            problems.append(f"{where}: {message} (items of {which})")
        return problems

    def check(self) -> list[str]:
        """Problems of the templates in use (shipped or overriding), as ``FILE:LINE: Error: message``.

        Every template is compiled; the digest templates are rendered with a sample digest holding
        every kind and folded items, and with an empty one, so branches for either are exercised.
        """
        problems: list[str] = []
        names = [n for n in self.env.list_templates() if n.endswith(".j2")]
        for required in (*ENTRY_POINTS, ITEM, MACROS):
            if required not in names:
                problems.append(f"{required}: template not found in {self._search_text()}")
        for name in names:
            try:
                self.env.get_template(name)
            except TemplateSyntaxError as exc:
                problems.append(f"{exc.filename or name}:{exc.lineno}: {type(exc).__name__}: {exc.message}")
        if problems:
            return problems  # rendering would only repeat these
        files = {self.env.get_template(n).filename or n for n in names}
        try:
            self._macros()
        except Exception as exc:  # noqa: BLE001
            return [_describe(exc, files, default=MACROS)]
        for digest in (sample_digest(), replace(sample_digest(), items=[], folded={})):
            for name in ENTRY_POINTS:
                try:
                    self.render_template(name, digest)
                except Exception as exc:  # noqa: BLE001
                    message = _describe(exc, files, default=name)
                    if message not in problems:
                        problems.append(message)
        return problems

    def render_template(self, name: str, digest: Digest) -> str:
        """One template rendered for ``digest`` (what ``render`` does for each; for checks and previews)."""
        context = self._context(digest)
        context["subject"] = _one_line(self.env.get_template(SUBJECT).render(context))
        return self.env.get_template(name).render(context)

    def _search_text(self) -> str:
        return " or ".join(str(p) for p in ([self.template_dir] if self.template_dir else []) +
                           [TEMPLATES / self.language])


# -- helpers ---------------------------------------------------------------------------------


def _describe(exc: BaseException, files: set[str], default: str | None = None) -> str:
    """``FILE:LINE: Error: message`` (or ``line N: …`` for a string template) for a template error."""
    message = getattr(exc, "message", None) or str(exc)
    text = f"{type(exc).__name__}: {message}"
    lineno, filename = getattr(exc, "lineno", None), getattr(exc, "filename", None)
    if lineno is None:
        # Runtime errors carry no position; Jinja rewrites the traceback so that template frames
        # show the template's file and line. The innermost one is where it went wrong.
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename in files]
        if frames:
            filename, lineno = frames[-1].filename, frames[-1].lineno
    filename = filename or default
    if filename is None or filename == "<template>":
        return f"line {lineno}: {text}" if lineno is not None else text
    return f"{filename}:{lineno}: {text}" if lineno is not None else f"{filename}: {text}"


def _one_line(text: str) -> str:
    # A subject or an item line is one line, whatever the template's own line breaks.
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _tidy(text: str) -> str:
    # Templates are easier to read with blank lines around blocks; the reader needs at most one.
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))
    return text.strip() + "\n"


__all__ = ["URGENCY", "Digest", "DigestItem", "Rendered", "Renderer", "sample_digest", "urgency_key"]
