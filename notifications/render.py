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
``kind rule subject title ledger ref due days_overdue level period``, plus ``due_text`` (the
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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateRuntimeError,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

log = logging.getLogger(__name__)

# Section order, most urgent first; the subject counts and the body sections follow it.
URGENCY = ("escalation", "overdue", "due", "checkin", "duty", "before")

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
_DIGITS = re.compile(r"(\d+)")
# The item fields a template sees; ``item_template`` is how the line is made, not what it says.
_ITEM_FIELDS = ("kind", "rule", "subject", "title", "ledger", "ref", "due", "days_overdue", "level", "period")
# Macros of macros.j2 that word one piece of an item, each given to templates as a plain string.
_PIECES = ("where", "what", "deadline", "status")


@dataclass(frozen=True)
class DigestItem:
    """One reminder as the reader sees it."""

    kind: str  # before | due | overdue | escalation | duty | checkin
    rule: str  # before-5, due, overdue, escalate-first-responsible…
    subject: str  # "LEDGER/序号" or a duty key
    title: str
    ledger: str | None
    ref: str | None  # 序号
    due: dt.date | None
    days_overdue: int
    level: int  # 0: not escalated; N: the number of escalations reached
    period: str | None = None  # a duty occurrence's period, e.g. 2026-Q3
    item_template: str | None = None  # a rule's override of the item line (Jinja source, from YAML)

    def __post_init__(self) -> None:
        # An unknown kind would have no section and silently vanish from the message.
        if self.kind not in URGENCY:
            raise ValueError(f"DigestItem.kind must be one of {', '.join(URGENCY)}, not {self.kind!r}")


@dataclass(frozen=True)
class Digest:
    """Everything one recipient gets on one channel at one time."""

    recipient: str
    channel_kind: str  # email | webhook | dingtalk | wecom | feishu | console | file
    generated_at: dt.datetime  # aware
    tz: ZoneInfo
    items: list[DigestItem]  # any order: the renderer orders them
    # ledger name -> per-item reminders inhibited by that ledger's escalation: shown under it
    folded: dict[str, list[DigestItem]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # A naive time would be printed as if it were local wherever the process happens to run.
        if self.generated_at.tzinfo is None or self.generated_at.utcoffset() is None:
            raise ValueError("Digest.generated_at must be timezone-aware")


@dataclass(frozen=True)
class Rendered:
    """A digest in every form a channel may want."""

    subject: str
    text: str
    html: str
    markdown: str  # for the DingTalk / WeCom robots


def urgency_key(item: DigestItem) -> tuple:
    """Sort key: section, then within it what needs attention first.

    Escalations: higher level, then longer overdue; overdue: longer overdue; the rest: nearest due.
    Ties fall back to ledger and 序号 in their natural order (序号 9 before 10).
    """
    section = URGENCY.index(item.kind)
    if item.kind == "escalation":
        within: tuple = (-item.level, -item.days_overdue)
    elif item.kind == "overdue":
        within = (-item.days_overdue,)
    else:
        within = ()
    return (section, *within, item.due or dt.date.max, item.ledger or "", _natural(item.ref),
            item.subject, item.period or "", item.rule)


def _natural(ref: str | None) -> tuple:
    # 序号 are written "7", "12", "3-1": compare the numbers as numbers.
    if ref is None:
        return ()
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.split(ref) if p)


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
        )

    def _context(self, digest: Digest) -> dict[str, Any]:
        items = sorted(digest.items, key=urgency_key)
        hosts = _fold_hosts(items, digest.folded)
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
            "hints": _hints(top, digest.folded),
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
        values = {name: getattr(item, name) for name in _ITEM_FIELDS}
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
        for item in _sample_items():
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


def _fold_hosts(items: list[DigestItem], folded: dict[str, list[DigestItem]]) -> dict[str, DigestItem]:
    """For each folded ledger, the item its reminders hang under (``items`` in urgency order).

    The natural host is the ledger-level reminder (no 序号, e.g. the overdue rectification report),
    escalated or merely overdue: that is what inhibits the per-item nags. Failing that, the most
    urgent escalation of the ledger, so the folded items still sit with what stands for them.
    """
    hosts: dict[str, DigestItem] = {}
    for ledger in folded:
        pressing = [i for i in items if i.ledger == ledger and i.kind in ("escalation", "overdue")]
        whole = [i for i in pressing if i.ref is None]
        escalations = [i for i in pressing if i.kind == "escalation"]
        if whole or escalations:
            hosts[ledger] = (whole or escalations)[0]
    return hosts


def _hints(items: Iterable[DigestItem], folded: dict[str, list[DigestItem]]) -> dict[str, Any]:
    """Examples taken from the digest for the closing "how to record progress" lines."""
    every = [*items, *(i for group in folded.values() for i in group)]
    issue = next((i.subject for i in every if i.ref is not None and i.kind != "checkin"), None)
    checkin = next((i.subject for i in every if i.kind == "checkin"), None)
    duty = next(({"key": i.subject, "period": i.period} for i in every if i.period is not None), None)
    return {"issue": issue, "checkin": checkin, "duty": duty}


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


# -- sample data (checks and previews) ---------------------------------------------------------


def _sample_items() -> list[DigestItem]:
    """One item of every kind, as the sweep writes them, in the shapes templates must handle."""
    ledger = "bishan-keji-2022"
    return [
        DigestItem("escalation", "escalate-first-responsible", f"{ledger}/7", "财务管理不规范，往来款项长期未清理",
                   ledger, "7", dt.date(2022, 9, 30), 12, 1),
        DigestItem("escalation", "escalate-supervising-group", ledger, "报送整改情况报告",
                   ledger, None, dt.date(2022, 9, 23), 25, 2),
        DigestItem("overdue", "overdue", f"{ledger}/12", "政府采购程序执行不严格", ledger, "12",
                   dt.date(2022, 10, 31), 2, 0),
        DigestItem("overdue", "overdue", "monthly-accounts-clearing", "往来款项清理", None, None,
                   dt.date(2022, 10, 31), 1, 0, period="2022-10"),
        DigestItem("due", "due", f"{ledger}/4", "制定惠企政策思考不深", ledger, "4", dt.date(2022, 11, 1), 0, 0),
        DigestItem("checkin", "before-3", f"{ledger}/1", "中心组学习不够深入", ledger, "1",
                   dt.date(2022, 11, 4), 0, 0),
        DigestItem("checkin", "checkin", f"{ledger}/2", "集体学习有漏项", ledger, "2", dt.date(2022, 11, 1), 0, 0),
        DigestItem("duty", "before-5", "quarterly-supervision-report",
                   "向派驻纪检监察组报送政府采购、工程建设、三公经费等事项明细", None, None,
                   dt.date(2022, 11, 8), 0, 0, period="2022-Q3"),
        DigestItem("duty", "duty", "central-group-study", "党组理论学习中心组集体学习（全年12次）", None, None,
                   dt.date(2022, 11, 1), 0, 0, period="2022-10"),
        DigestItem("before", "before-1", f"{ledger}/9", "科技项目经费监管不到位", ledger, "9",
                   dt.date(2022, 11, 2), 0, 0),
    ]


def sample_digest() -> Digest:
    """A digest with every kind and items folded under a ledger escalation."""
    ledger = "bishan-keji-2022"
    folded = [
        DigestItem("overdue", "overdue", f"{ledger}/15", "三公经费支出审批不严", ledger, "15",
                   dt.date(2022, 10, 28), 3, 0),
        DigestItem("before", "before-3", f"{ledger}/16", "公务接待管理不规范", ledger, "16",
                   dt.date(2022, 11, 4), 0, 0),
    ]
    tz = ZoneInfo("Asia/Shanghai")
    return Digest(recipient="党组书记", channel_kind="email", generated_at=dt.datetime(2022, 11, 1, 9, 0, tzinfo=tz),
                  tz=tz, items=_sample_items(), folded={ledger: folded})


__all__ = ["URGENCY", "Digest", "DigestItem", "Rendered", "Renderer", "sample_digest", "urgency_key"]
