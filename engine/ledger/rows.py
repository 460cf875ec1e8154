"""Reading one ledger row as offices write it, into the fields of an issue.

The importer hands each row below the header here; what comes back is the row's fields, or nothing
(a footer skipped, or a row refused at its row and column). Beyond the plain cells:

* **Footers** (合计, 填表人：…, 备注：…; ``engine.ledger.layout.footer``) are skipped and listed.
* **Numbering kept in cells** (``一、`` ``（一）`` ``1.`` ``（1）`` … at the start of 方面, 问题类别 or 具体问题,
  ``engine.ledger.cells.split_numbering``) is moved out of the text, since the report numbers them
  itself; it is kept with the issue (``extra["numbering"]``) so an export writes the cell back as it
  was. A blank 序号 takes the arabic number of its 具体问题 (``3.…`` → 3).
* **A blank 方面** takes the 方面 of the row above (a merged cell saved as CSV, or a streamed big
  workbook, leaves it on the first row only), with a warning; a blank 问题类别 likewise, while the
  方面 stays the one of the row above.
* **A section heading** — a row that holds one text (merged across, or in one cell) and at most a
  Chinese numbering as its 序号 — gives the rows below their 方面 (``一、…``, or the text sitting in
  the 方面 column) or their 问题类别 (``（一）…``, or in the 问题类别 column): offices write areas as
  rows of their own. It is listed once; the rows below take it without a warning each.
* **Deadlines** (``engine.ledger.cells.parse_deadline``): a phrase is read as a date; 立行立改 is due
  the ledger's feedback date plus ``immediate_working_days`` working days (refused without a
  feedback date); 长期坚持 is a long-term item — see ``RowReader.long_term``.

Each of these is a ``Reading`` the import lists (``--dry-run`` and the summary): nothing is read
other than as written without saying so.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LedgerError
from ..workflow.schema import WorkflowDef
from .cells import DEFAULT_IMMEDIATE_WORKING_DAYS, Deadline, parse_deadline, split_numbering, text
from .columns import ColumnTable
from .layout import footer
from .readings import Readings

_FOOTER_FIRST = frozenset("合总小共填制审负联备注说")
_CN = "一二三四五六七八九十百零〇两"
_AREA_NUMBER = re.compile(rf"^[{_CN}]+\s*[、.．]?\s*$")
_CATEGORY_NUMBER = re.compile(rf"^[（(]\s*[{_CN}]+\s*[)）]\s*[、.．]?\s*$")
_SECTION_FIRST = frozenset("一二三四五六七八九十（(")
_NAMES = {"area": "方面", "category": "问题类别"}
_CACHED = 10_000  # distinct cells memoised per column (the same few recur on every row)


class Columns:
    """Which cell of a row fills which field, found by header name in any order."""

    def __init__(self, path: Path, headers: list[str], table: ColumnTable, warnings: list[str], at: int = 1):
        self.index, clashes = table.assign(headers)
        self.header_of = {fld: headers[i] for fld, i in self.index.items()}
        taken = set(self.index.values())
        self.extra: dict[str, int] = {h: i for i, h in enumerate(headers) if h and i not in taken}
        for fld, keep, drop in clashes:
            warnings.append(f"{path}: row {at}: {drop}: the column {keep!r} also fills {fld!r} and comes first; "
                            f"{drop!r} is kept as an extra column (name it in the workflow's columns: to change that)")
        # warned of after the rows are read (``RowReader.status_like`` may say what one of them is)
        self.no_field = no_field = [h for h in self.extra if table.field_of(h) is None]
        problems, missing = [], []
        for required in ("ref", "title"):
            if required not in self.index:
                missing.append(required)
                # the alternatives inside the message, not appended to it: a message is translated whole
                others = " / ".join(table.spellings.get(required, [])[3:])
                problems.append(f"{path}: row {at}: missing the {table.named(required)} column (nor {others})"
                                if others else f"{path}: row {at}: missing the {table.named(required)} column")
        if problems:
            # the sheet's own name for the column is most likely among those read as no field
            unread = "、".join(no_field)
            hint = (f"this sheet's columns read as no field: {unread}; to read one of them as "
                    f"{table.named(missing[0], 1)}, rename it in the sheet or name it under "
                    f"columns: {missing[0]}: in the workflow's YAML") if unread else None
            raise LedgerError(f"{path}: cannot import", details=problems, hint=hint)

    def getter(self, fld: str) -> Callable[[list[Any]], Any]:
        """A fast accessor for one field's cell in a row padded to the header width."""
        i = self.index.get(fld)
        if i is None:
            return lambda cells: None
        return lambda cells: cells[i]


_UNIT_LINE = re.compile(r"(?:填报单位|被巡察单位|被巡察党组织|单位名称|单位)\s*(?:[（(][^)）]*[)）])?\s*[:：]\s*([^|:：\s]+)")


def unit_above(skipped: list[tuple[int, str]]) -> tuple[int, str, str] | None:
    """(row, line, unit) of an information row above the header such as "填报单位：区民政局"."""
    for number, line in skipped:
        m = _UNIT_LINE.search(line)
        if m:
            return number, line, m.group(1)
    return None


class RowReader:
    """Reads the rows of one sheet in order (a row's blank 方面 depends on the rows above it)."""

    def __init__(self, path: Path, cols: Columns, workflow: WorkflowDef, *, problems: list[str],
                 feedback: Callable[[], dt.date | None], add_workdays: Callable[[dt.date, int], dt.date]):
        self.path, self.cols, self.workflow, self.problems = path, cols, workflow, problems
        self.feedback, self.add_workdays = feedback, add_workdays
        self.readings = Readings()  # listed as read
        self.carried = Readings()  # listed as warnings
        self.words = workflow.word_to_state()
        self.seen: dict[str, int] = {}
        self.rows = 0
        self.unit = ""  # the sheet's 单位 column: one unit for the ledger (the first value given)
        self.immediate_days = (workflow.immediate_working_days if workflow.immediate_working_days is not None
                               else DEFAULT_IMMEDIATE_WORKING_DAYS)
        self._deadlines: dict[object, Deadline] = {}
        self._immediate: dict[dt.date, dt.date] = {}
        self._split: dict[str, tuple[str, str, str]] = {}
        # field -> (value, numbering, row, from a section heading) the next blank cell takes
        self._above: dict[str, tuple[str, str, int, bool] | None] = {}
        self.supplied: set[str] = set()  # fields section headings gave though the sheet has no column
        self._prev = -1  # the ledger row before this one
        self._prev_area: str | None = None
        get = cols.getter
        self._ref, self._title, self._deadline, self._status = get("ref"), get("title"), get("deadline"), get("status")
        self._area, self._category = get("area"), get("category")
        self._measures, self._leader, self._department = get("measures"), get("leader"), get("department")
        self._ref_i, self._title_i, self._unit_i = cols.index.get("ref"), cols.index.get("title"), cols.index.get("unit")
        self._unit_row = 0
        self._extra = list(cols.extra.items())
        # a sheet without a status column: its extra columns that hold status words only (完成情况:
        # 已完成 / 整改中) are likely the status under a name not read as one; the import says so
        self._status_like: dict[str, tuple[int, set[str]]] = (
            {} if "status" in cols.index else {h: (i, set()) for h, i in self._extra})

    def status_like(self) -> list[tuple[str, list[str]]]:
        """(header, its words) of the extra columns whose every filled cell is a status word."""
        return [(header, sorted(words)) for header, (_, words) in self._status_like.items() if words]

    def header(self, fld: str) -> str:
        return self.cols.header_of.get(fld, fld)

    def problem(self, row: int, fld: str, message: str) -> None:
        self.problems.append(f"{self.path}: row {row}: {self.header(fld)}: {message}")

    def read(self, number: int, cells: list[Any]) -> dict[str, Any] | None:
        """The fields of one row (padded to the header's width), or None: skipped or refused."""
        ref = text(self._ref(cells))
        if not ref or ref[0] in _FOOTER_FIRST:
            note = footer(cells, self._ref_i, self._title_i)
            if note is not None:
                self.readings.add(number, "", note, "a footer, skipped")
                return None
        if (not ref or ref[0] in _SECTION_FIRST or ref == text(self._title(cells))) and self._section(number, cells, ref):
            return None
        self.rows += 1
        prev, self._prev = self._prev, number
        for header, (i, words) in list(self._status_like.items()):
            if value := text(cells[i]):
                if value in self.words:
                    words.add(value)
                else:
                    del self._status_like[header]
        if self._unit_i is not None:
            self._read_unit(number, text(cells[self._unit_i]), prev)
        numbering: dict[str, str] = {}
        ok = True
        raw_title = text(self._title(cells))
        prefix, title, digits = split_numbering(raw_title)
        if prefix:
            numbering["title"] = prefix
            self.readings.add(number, self.header("title"), raw_title, f"{title} (numbering {prefix} moved out)",
                              after=prev)
        if not ref and digits:
            ref = digits
            self.readings.add(number, self.header("ref"), "", f"{ref} (the numbering of its {self.header('title')})",
                              after=prev)
        if not ref:
            self.problem(number, "ref", "missing 序号")
            ok = False
        elif ref in self.seen:
            self.problem(number, "ref", f"序号 {ref!r} already used in row {self.seen[ref]}")
            ok = False
        else:
            self.seen[ref] = number
        if not title:
            self.problem(number, "title", "missing the problem title (具体问题)")
            ok = False
        area = self._group("area", number, text(self._area(cells)), prev, numbering, True)
        category = self._group("category", number, text(self._category(cells)), prev, numbering,
                               area == self._prev_area)
        self._prev_area = area
        deadline = self._read_deadline(number, self._deadline(cells), prev)
        word = text(self._status(cells))
        state = self.words.get(word) if word else None  # a blank cell: the initial state, or keep the state
        if word and state is None:
            known = "、".join(sorted(w for w in self.words if not w.isascii()))
            self.problem(number, "status", f"unknown status {word!r} (known: {known})")
            ok = False
        ok = ok and deadline is not None
        long_term = deadline is not None and deadline.kind == "long_term"
        if long_term and ok:
            accepted, claimed = self.long_term(number, text(self._deadline(cells)), word, state, prev)
            if not accepted:
                return None
            if claimed is not None:
                state, word = claimed, text(self._deadline(cells))
        if not ok or self.problems or deadline is None:
            return None  # once anything is wrong nothing will be kept: only keep checking
        extra: dict[str, Any] = {h: v for h, i in self._extra if (v := text(cells[i]))} if self._extra else {}
        if numbering:
            extra["numbering"] = numbering
        return {
            "ref": ref, "position": number - 1, "area": area, "category": category, "title": title,
            "measures": text(self._measures(cells)), "leader": text(self._leader(cells)),
            "department": text(self._department(cells)), "deadline": deadline.day, "state": state, "extra": extra,
            "_row": number, "_word": word, "_long_term": long_term,
        }

    def _read_unit(self, number: int, value: str, prev: int) -> None:
        """单位: one unit for the ledger, the first given; another is said, not dropped unseen."""
        if not value:
            return
        if not self.unit:
            self.unit, self._unit_row = value, number
        elif value != self.unit:
            self.carried.add(number, self.header("unit"), value, f"not used: the ledger has one unit, {self.unit} "
                                                                 f"(row {self._unit_row})", after=prev)

    def _section(self, number: int, cells: list[Any], ref: str) -> bool:
        """A section heading (see the module's docstring): recorded for the rows below and listed;
        True when the row was one (or was refused as a heading that cannot be placed)."""
        texts = {t for c in cells if (t := text(c))}
        merged = bool(ref) and texts == {ref}
        if merged:
            ref = ""  # one text merged across the 序号 column too
        elif ref:
            texts.discard(ref)
            if not (_AREA_NUMBER.match(ref) or _CATEGORY_NUMBER.match(ref)):
                return False
        if len(texts) != 1:
            return False
        (body,) = texts
        where = {fld for fld in ("area", "category") if fld in self.cols.index
                 and text(cells[self.cols.index[fld]]) == body}
        prefix, value, _ = split_numbering(body)
        numbered = ref or prefix.strip()
        if _AREA_NUMBER.match(numbered) or (not _CATEGORY_NUMBER.match(numbered) and where == {"area"}):
            level = "area"
        elif _CATEGORY_NUMBER.match(numbered) or where == {"category"}:
            level = "category"
        elif merged:
            self.problem(number, "ref", f"one text across the row ({body[:40]!r}): a heading duban cannot place; "
                                        f"number it 一、 (a 方面) or （一） (a 问题类别)")
            return True
        else:
            return False
        self._above[level] = (value, prefix, number, True)
        if level == "area":
            self._above["category"] = None  # categories belong to their area
            self._prev_area = value
        if level not in self.cols.index:
            self.supplied.add(level)
        name = self.header(level) if level in self.cols.index else _NAMES[level]
        self.readings.add(number, "", " ".join(filter(None, (ref, body))), f"a section heading, the {name} of the rows below")
        return True

    def _group(self, fld: str, number: int, raw: str, prev: int, numbering: dict[str, str], may_carry: bool) -> str:
        """方面 or 问题类别: numbering moved out; a blank one carried down from the row above."""
        if fld not in self.cols.index:
            above = self._above.get(fld)
            if above is None:
                return ""
            if above[1]:
                numbering[fld] = above[1]
            return above[0]
        if raw:
            split = self._split.get(raw)
            if split is None:
                split = split_numbering(raw)
                if len(self._split) < _CACHED:
                    self._split[raw] = split
            prefix, value, _ = split
            if prefix:
                numbering[fld] = prefix
                self.readings.add(number, self.header(fld), raw, f"{value} (numbering {prefix} moved out)", after=prev)
            self._above[fld] = (value, prefix, number, False)
            return value
        above = self._above.get(fld)
        if above is None or not may_carry:
            why = "no row above to carry down from" if above is None else f"the {self.header('area')} changed"
            self.carried.add(number, self.header(fld), "", f"left blank ({why})", after=prev)
            self._above[fld] = None
            return ""
        value, prefix, source, heading = above
        if prefix:
            numbering[fld] = prefix
        if not heading:  # under a section heading the rows take it as said once
            self.carried.add(number, self.header(fld), "", f"carried down from row {source}: {value}", after=prev)
        return value

    def _read_deadline(self, number: int, cell: Any, prev: int) -> Deadline | None:
        """The row's deadline as read (and listed when not a plain date); None: refused."""
        try:
            found = self._deadlines[cell]
        except (KeyError, TypeError):
            try:
                found = parse_deadline(cell)
            except ValueError as exc:
                self.problem(number, "deadline", str(exc))
                return None
            if isinstance(cell, str) and len(self._deadlines) < _CACHED:
                self._deadlines[cell] = found
        if found.kind in ("date", "blank", "long_term"):
            return found
        shown = text(cell)
        if found.kind == "read":
            self.readings.add(number, self.header("deadline"), shown, found.meaning, after=prev)
            return found
        feedback = self.feedback()
        if feedback is None:
            self.problem(number, "deadline", f"{shown!r} (立行立改) is due {self.immediate_days} working day(s) after "
                                             f"the feedback date, and the ledger has none: give --feedback-date")
            return None
        day = self._immediate.get(feedback)
        if day is None:
            day = self._immediate[feedback] = self.add_workdays(feedback, self.immediate_days)
        self.readings.add(number, self.header("deadline"), shown,
                          f"{day.isoformat()} (立行立改: the feedback date {feedback.isoformat()} + {self.immediate_days} "
                          f"working days){found.meaning}", after=prev)
        return Deadline(day, "read")

    def long_term(self, number: int, shown: str, word: str, state: str | None, prev: int) -> tuple[bool, str | None]:
        """A 长期坚持 deadline: a long-term item, with no deadline.

        With a blank 整改状态 it claims the workflow's long-term state (``checkins.state``, whose
        look-backs come every ``every_months``): a new row is imported there, an existing one is
        moved there along the workflow or the claim is listed as not applied. With a 整改状态 that
        names the long-term state, or a state not due by its 整改时限 (已完成; 待整改, due by the
        feedback date), the status decides and the deadline stays blank. A state due by its 整改时限
        (已制定方案, 整改中) is refused: such an item needs a date. Returns (accepted, the state claimed
        or None when the status decides)."""
        workflow = self.workflow
        checkins = workflow.checkins
        if checkins is None:
            self.problem(number, "deadline", f"{shown!r} marks a long-term item, and the workflow {workflow.name} has no "
                                             f"long-term state (checkins:): give a date")
            return False, None
        term = workflow.label(checkins.state)
        look = f"a look-back every {checkins.every_months} month(s)"
        if state is None:
            self.readings.add(number, self.header("deadline"), shown,
                              f"no deadline: a long-term item, claims {term} ({look})", after=prev)
            return True, checkins.state
        if state == checkins.state:
            self.readings.add(number, self.header("deadline"), shown, f"no deadline: a long-term item ({term}, {look})",
                              after=prev)
            return True, None
        rule = workflow.deadlines.get(state)
        if rule is not None and rule.anchor == "deadline":
            label = "" if workflow.label(state) == word else f" ({workflow.label(state)})"
            self.problem(number, "deadline", f"{shown!r} is a long-term item, but {self.header('status')} says {word}"
                                             f"{label}, which is due by its {self.header('deadline')}: "
                                             f"give the date it is to be rectified by, or set {self.header('status')} "
                                             f"to {term}")
            return False, None
        self.readings.add(number, self.header("deadline"), shown,
                          f"no deadline ({self.header('status')} {word} decides: {workflow.label(state)})", after=prev)
        return True, None

