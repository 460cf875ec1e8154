"""The draft ledger (台账草稿): from the inspection's feedback document to the ledger template.

An office's rectification starts with a document — the 反馈意见, or a report in its shape — numbered
the way Chinese official documents are: 一、 › （一） › 1． › （1）/⑴ › 1） › ①, with full-width and
half-width variants. Each numbered paragraph opens a level by that convention, not by where it sits,
so a document that skips a level keeps its ranks; an unnumbered paragraph belongs to the numbered
paragraph above it.

Which level holds the problems: the level of the 关于“…”问题 titles when the document has them (a
report names each problem so, and so do many 反馈意见); otherwise the deepest level, unless some
paragraphs of the level above have none of it under them — then the deepest level is a problem's
sub-points and the level above holds the problems. The level above the problems gives the 问题类别,
the one above that the 方面; levels above the 方面 (a report's chapters) are only context. One
heading over every problem is such a chapter (一、巡察发现的主要问题): an inspection reports on several
方面, so the headings under it are the 方面, and the document has no 问题类别 level.

A problem's title is its 关于“…”问题 quotation, or else its first sentence; the rest of its paragraph,
the paragraphs under it and its sub-points are its description, kept word for word. A dated line,
附件 or 抄送 closes the body: what follows is not a problem's description.

Nothing is dropped: every non-blank paragraph is part of a problem's row, the heading of an area or
category a problem sits under, or listed as 未归类 with its number — the line of a text file, the
paragraph of a .docx — and why. The draft is written with the ledger's own headers, so once the
office fills the marked columns it imports like any ledger.
"""

from __future__ import annotations

import os
import re
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .sheet import MAX_CELL

SUFFIXES = (".docx", ".txt", ".md")
MAX_TEXT = 20 * 1024 * 1024  # bytes: a feedback document is a few pages; more is not one
MAX_EXPANDED = 200 * 1024 * 1024  # bytes a .docx's parts may expand to (a zip bomb is refused)

# The ledger columns, as the shipped workflow names them (engine's workflows/*.yaml `columns`).
REF, AREA, CATEGORY, TITLE = "序号", "方面", "问题类别", "具体问题"
DESCRIPTION = "原文表述"  # an extra column: the import keeps it with the issue
TO_FILL = ("整改措施", "责任领导", "责任科室", "整改时限", "整改状态")
UNIT = "单位"
HEADERS = (REF, AREA, CATEGORY, TITLE, DESCRIPTION, *TO_FILL, UNIT)
UNPLACED_SHEET = "未归类"

# ---------------------------------------------------------------------------------------------
# The numbering of official documents, outermost first. Ranks, not positions: 1． is always
# inside （一）, wherever it appears.

_CN = "一二三四五六七八九十百零〇"
_RANKS: tuple[re.Pattern[str], ...] = (
    re.compile(rf"^[{_CN}]+\s*[、．.]"),                          # 一、
    re.compile(rf"^[（(]\s*[{_CN}]+\s*[）)]\s*[、．.]?"),          # （一）
    re.compile(r"^\d{1,3}\s*[．.、](?!\d)"),                       # 1． 1. 1、
    re.compile(r"^(?:[（(]\s*\d{1,3}\s*[）)]|[⑴-⒇])\s*[、．.]?"),  # （1） (1) ⑴
    re.compile(r"^\d{1,3}\s*[）)]"),                               # 1） 1)
    re.compile(r"^[①-⑳]\s*[、．.]?"),                             # ①
)
UNNUMBERED_ABOUT = len(_RANKS)  # an unnumbered 关于“…”问题 paragraph: below every numbered level
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")

# 关于“…”问题(的整改情况): the title is what the quotation marks hold (greedy: a title may quote).
_ABOUT_QUOTED = re.compile(r"^关于\s*[“\"「『](?P<title>.+)[”\"」』]\s*(?:等)?(?:方面)?(?:的)?问题")
_ABOUT_BARE = re.compile(r"^关于(?P<title>[^，,。；;：:“”\"]{2,60}?)(?:等)?(?:方面)?(?:的)?问题"
                         r"(?:的?整改(?:落实)?情况)?\s*[。：:；;]?$")

# Lines that close a document's body: its date, signature block, attachments, distribution.
_CN_DIGIT = "〇零一二三四五六七八九十"
_DATE_LINE = re.compile(rf"^[（(]?\s*(?:\d{{4}}|[{_CN_DIGIT}]{{4}})\s*年\s*[\d{_CN_DIGIT}]{{1,3}}\s*月"
                        rf"\s*[\d{_CN_DIGIT}]{{1,3}}\s*日\s*[）)]?$")
_CLOSING = re.compile(r"^(?:附件\s*(?:\d+\s*)?[：:．.、]|抄送[：:]|印发[：:]|[（(]此件.{0,12}[）)]$)")

_OPENERS, _CLOSERS = "“‘「『《（(【〔[", "”’」』》）)】〕]"
_SENTENCE_END = "。！？；：!?;:"
_TRAILING = re.compile(r"[\s。，、；：,.;:！？!?]+$")

WHY_OUTSIDE = "不在任何编号标题之下"
WHY_NO_PROBLEM = "标题之下没有具体问题"
WHY_ABOVE = "方面之上的标题或正文，台账没有对应的列"
WHY_HEADING_TEXT = "方面或问题类别标题下的正文，不属于某个具体问题"
WHY_STRAY_DEEP = "下级编号不在任何具体问题之下"
WHY_CLOSING = "落款、日期、附件或抄送"
WHY_NO_TITLE = "编号之后没有问题的文字"
WHY_TOO_LONG = f"超出一个单元格的容量（{MAX_CELL:,}字），接在上一行具体问题之后"


@dataclass(frozen=True)
class Paragraph:
    number: int  # the line of a text file, the paragraph of a .docx (1-based, blank ones counted)
    text: str


@dataclass(frozen=True)
class Problem:
    number: int
    area: str
    category: str
    title: str
    description: str
    holds: tuple[int, ...] = ()  # the paragraphs the row is made of: its headings, its own, its description's


@dataclass(frozen=True)
class Unplaced:
    number: int
    text: str
    why: str


@dataclass
class Draft:
    source: Path
    where: str  # "line" (text files) or "paragraph" (.docx): what Problem/Unplaced.number counts
    problems: list[Problem]
    unplaced: list[Unplaced]

    @property
    def areas(self) -> int:
        return len({p.area for p in self.problems if p.area})

    @property
    def categories(self) -> int:
        return len({(p.area, p.category) for p in self.problems if p.category})

    @property
    def gaps(self) -> list[Problem]:
        """Problems with no 方面 or 问题类别 where the others have one: the document skips that level
        above them, and the cell is left blank for the office to fill."""
        area, category = any(p.area for p in self.problems), any(p.category for p in self.problems)
        return [p for p in self.problems if (area and not p.area) or (category and not p.category)]


    def summary(self, out: Path) -> list[str]:
        """What the command prints: the counts, each gap and each paragraph not placed, what next."""
        lines = [f"drafted {len(self.problems)} 具体问题 in {self.areas} 方面 and {self.categories} 问题类别 "
                 f"from {self.source} into {out}"]
        for problem in self.gaps:
            missing = "、".join(name for name, cell in ((AREA, problem.area), (CATEGORY, problem.category)) if not cell)
            lines.append(f"{self.source}: {self.where} {problem.number}: {problem.title}: no {missing} above it "
                         f"in the document; left blank")
        for item in self.unplaced:
            text = item.text if len(item.text) <= 40 else item.text[:40] + "…"
            lines.append(f"{self.source}: {self.where} {item.number}: 未归类（{item.why}）：{text}")
        if self.unplaced:
            lines.append(f"{len(self.unplaced)} paragraph(s) not placed: listed in the sheet {UNPLACED_SHEET} of {out}")
        lines.append(f"next: fill {'、'.join(TO_FILL[:4])} (the yellow columns), then "
                     f"duban ledger import {out} --feedback-date YYYY-MM-DD")
        return lines


@dataclass(eq=False)
class _Node:
    para: Paragraph
    rank: int  # index into _RANKS, UNNUMBERED_ABOUT, or -1 for the document itself
    label: str  # the paragraph without its numbering
    about: str | None = None  # the 关于“…”问题 title
    parent: _Node | None = None
    children: list[_Node] = field(default_factory=list)
    body: list[Paragraph] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The whole step


def draft_ledger(source: Path, out: Path, *, unit: str | None = None) -> Draft:
    """Read ``source`` (.docx, .txt, .md), write the draft ledger to ``out`` (.xlsx); the draft.

    Raises ``BadInput`` naming the file (and line) when it cannot be read or holds no problem;
    then nothing is written."""
    if out.suffix.lower() != ".xlsx":
        raise BadInput(f"{out}: the draft is written as .xlsx", hint="e.g. -o 台账草稿.xlsx")
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise BadInput(f"{out}: would overwrite the document being read")
    paragraphs, where = read_document(source)
    draft = parse(source, paragraphs, where)
    if not draft.problems:
        raise BadInput(f"{source}: no problem found: no numbered paragraphs (一、（一）1．（1）) "
                       f"or 关于“…”问题 titles", hint="is it the feedback document? a scanned PDF has no text")
    write_draft(draft, out, unit=unit)
    return draft


# ---------------------------------------------------------------------------------------------
# Reading


def read_document(path: Path) -> tuple[list[Paragraph], str]:
    """The document's paragraphs (blank ones left out, their numbers kept) and what numbers them."""
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return _read_docx(path), "paragraph"
    if suffix in (".txt", ".md"):
        return _read_text(path, markdown=suffix == ".md"), "line"
    hint = "save it from Word or WPS as .docx" if suffix in (".doc", ".wps", ".pdf", ".rtf") else None
    raise BadInput(f"{path}: unsupported file type {suffix or '(none)'}: use .docx, .txt or .md", hint=hint)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def _read_text(path: Path, *, markdown: bool) -> list[Paragraph]:
    if path.stat().st_size > MAX_TEXT:
        raise BadInput(f"{path}: {path.stat().st_size / 2**20:,.0f} MB is not a feedback document "
                       f"(at most {MAX_TEXT // 2**20} MB)")
    data = path.read_bytes()
    text = _decode(path, data)
    out = []
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.rstrip("\r").replace("\t", " ").replace("\x0c", " ")
        bad = _CONTROL.search(line)
        if bad:
            raise BadInput(f"{path}: line {number}: a control character (U+{ord(bad.group()):04X}): not a text document",
                           hint="a .doc or .pdf renamed .txt? save it from Word or WPS as .docx or as text")
        if markdown:
            line = _plain_markdown(line)
            if _MD_RULE.fullmatch(line):
                continue  # a rule or a table's separator row: markup, no text
        if line.strip():
            out.append(Paragraph(number, line.strip()))
    return out


def _decode(path: Path, data: bytes) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK: Chinese Windows' text files)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as utf8:
        try:
            return data.decode("gb18030")
        except UnicodeDecodeError as gbk:
            def line(at: int) -> int:
                return data.count(b"\n", 0, at) + 1
            raise BadInput(f"{path}: line {line(utf8.start)}: not UTF-8 text (byte 0x{data[utf8.start]:02X}), "
                           f"nor GBK/GB18030 (line {line(gbk.start)}, byte 0x{data[gbk.start]:02X})",
                           hint="save it as UTF-8 text, or as .docx") from None


_MD_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+)+")
_MD_RULE = re.compile(r"[-*_=|:\s]+")
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>])")


def _plain_markdown(line: str) -> str:
    """A Markdown line as the paragraph it shows: no heading marks, bullets, emphasis or escapes."""
    line = _MD_PREFIX.sub("", line).strip()
    for mark in ("**", "__"):
        if line.startswith(mark) and line.endswith(mark) and len(line) > 2 * len(mark):
            line = line[len(mark):-len(mark)].strip()
    return _MD_ESCAPE.sub(r"\1", line)


def _read_docx(path: Path) -> list[Paragraph]:
    try:
        with zipfile.ZipFile(path) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise BadInput(f"{path}: not a readable .docx ({exc or type(exc).__name__})",
                       hint="open it in Word or WPS and save it as .docx") from None
    if expanded > MAX_EXPANDED:
        raise BadInput(f"{path}: the document expands to {expanded / 2**20:,.0f} MB "
                       f"(at most {MAX_EXPANDED // 2**20} MB): not a feedback document")
    import docx
    from docx.oxml.ns import qn
    from docx.text.paragraph import Paragraph as DocxParagraph

    try:
        document = docx.Document(str(path))
        numbering = _Numbering(document)
        out = []
        fallback = "{http://schemas.openxmlformats.org/markup-compatibility/2006}Fallback"
        number = 0
        # every w:p in document order, table cells and text boxes included; a text box's
        # Fallback copy (for old Word) repeats its Choice and is left out
        for element in document.element.body.iter(qn("w:p")):
            if any(a.tag == fallback for a in element.iterancestors()):
                continue
            number += 1
            shown = numbering.prefix(element)  # counted on empty paragraphs too, as Word does
            text = DocxParagraph(element, document).text.replace("\t", " ").strip()
            if text:
                out.append(Paragraph(number, shown + text))
        return out
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever python-docx or lxml raise on a damaged file
        raise BadInput(f"{path}: not a readable .docx ({type(exc).__name__}: {exc})",
                       hint="open it in Word or WPS and save it as .docx") from None


class _Numbering:
    """Word's automatic numbering, written out: python-docx reads a paragraph's text without the
    number Word shows before it (一、 or （1） from a list style), and the number is the structure."""

    def __init__(self, document: Any):
        from docx.oxml.ns import qn

        self._qn = qn
        self._levels: dict[str, dict[int, tuple[str, str, int]]] = {}  # numId -> ilvl -> (fmt, text, start)
        self._abstract_of: dict[str, str] = {}
        self._counters: dict[str, list[int]] = {}
        self._style_num: dict[str, tuple[str, int]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, NotImplementedError, AttributeError):
            return
        abstracts: dict[str, dict[int, tuple[str, str, int]]] = {}
        for abstract in root.findall(qn("w:abstractNum")):
            levels = {}
            for lvl in abstract.findall(qn("w:lvl")):
                fmt, text, start = lvl.find(qn("w:numFmt")), lvl.find(qn("w:lvlText")), lvl.find(qn("w:start"))
                levels[int(lvl.get(qn("w:ilvl"), "0"))] = (
                    fmt.get(qn("w:val"), "") if fmt is not None else "decimal",
                    text.get(qn("w:val"), "") if text is not None else "",
                    int(start.get(qn("w:val"), "1")) if start is not None else 1)
            abstracts[abstract.get(qn("w:abstractNumId"), "")] = levels
        for num in root.findall(qn("w:num")):
            ref = num.find(qn("w:abstractNumId"))
            if ref is not None:
                num_id, abstract_id = num.get(qn("w:numId"), ""), ref.get(qn("w:val"), "")
                self._levels[num_id] = abstracts.get(abstract_id, {})
                self._abstract_of[num_id] = abstract_id
        for style in document.styles.element.findall(qn("w:style")):
            found = self._num_pr(style)
            if found:
                self._style_num[style.get(qn("w:styleId"), "")] = found

    def _num_pr(self, element: Any) -> tuple[str, int] | None:
        qn = self._qn
        ppr = element.find(qn("w:pPr"))
        pr = ppr.find(qn("w:numPr")) if ppr is not None else None
        if pr is None:
            return None
        num_id, ilvl = pr.find(qn("w:numId")), pr.find(qn("w:ilvl"))
        if num_id is None:
            return None
        return num_id.get(qn("w:val"), ""), int(ilvl.get(qn("w:val"), "0")) if ilvl is not None else 0

    def prefix(self, p: Any) -> str:
        """The number Word shows before paragraph ``p`` ("" when none), counting as Word does."""
        if not self._levels:
            return ""
        found = self._num_pr(p)
        if found is None:
            ppr = p.find(self._qn("w:pPr"))
            style = ppr.find(self._qn("w:pStyle")) if ppr is not None else None
            found = self._style_num.get(style.get(self._qn("w:val"), "")) if style is not None else None
        if found is None or found[0] == "0" or found[0] not in self._levels:
            return ""
        num_id, ilvl = found
        levels = self._levels[num_id]
        counters = self._counters.setdefault(self._abstract_of[num_id], [0] * 10)
        if not 0 <= ilvl < len(counters) or ilvl not in levels:
            return ""
        counters[ilvl] += 1
        for deeper in range(ilvl + 1, len(counters)):
            counters[deeper] = 0
        fmt, text, _ = levels[ilvl]
        if fmt in ("bullet", "none"):
            return ""

        def value(match: re.Match[str]) -> str:
            level = int(match.group(1)) - 1
            if level not in levels or not 0 <= level < len(counters):
                return ""
            lfmt, _, start = levels[level]
            return _format_number(lfmt, start - 1 + max(counters[level], 1))

        return re.sub(r"%(\d)", value, text)


def _format_number(fmt: str, n: int) -> str:
    if fmt.startswith(("chinese", "ideograph")) or fmt == "taiwaneseCounting":
        return _chinese_numeral(n)
    if fmt == "decimalEnclosedCircle" or fmt == "decimalEnclosedCircleChinese":
        return chr(0x2460 + n - 1) if 1 <= n <= 20 else str(n)
    if fmt == "decimalEnclosedParen":
        return chr(0x2474 + n - 1) if 1 <= n <= 20 else f"({n})"
    if fmt == "decimalFullWidth" or fmt == "decimalFullWidth2":
        return str(n).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    return str(n)  # decimal, and what the ranks do not know (letters, roman) reads as text


def _chinese_numeral(n: int) -> str:
    digits = "零一二三四五六七八九"
    if not 0 < n < 100:
        return str(n)
    tens, ones = divmod(n, 10)
    if tens == 0:
        return digits[ones]
    return ("" if tens == 1 else digits[tens]) + "十" + (digits[ones] if ones else "")


# ---------------------------------------------------------------------------------------------
# Parsing


def parse(source: Path, paragraphs: list[Paragraph], where: str) -> Draft:
    """The problems the paragraphs hold, and every paragraph that is not part of one."""
    root = _tree(paragraphs)
    nodes = list(_walk(root))[1:]
    rank = _problem_rank(nodes)
    problems: list[Problem] = []
    unplaced: list[Unplaced] = []
    if rank is not None:
        _place(root, rank, problems, unplaced)
    else:
        unplaced.extend(Unplaced(p.number, p.text, WHY_OUTSIDE) for p in paragraphs)
    unplaced.sort(key=lambda u: u.number)
    return Draft(source, where, problems, unplaced)


def _numbered(text: str) -> tuple[int, str] | None:
    """(rank, the text after the number) of a numbered paragraph."""
    probe = text[:12].translate(_FULL_WIDTH_DIGITS)
    for rank, pattern in enumerate(_RANKS):
        match = pattern.match(probe)
        if match:
            return rank, text[match.end():].lstrip(" 　、，,．.")
    return None


def _about(label: str) -> str | None:
    match = _ABOUT_QUOTED.match(label) or _ABOUT_BARE.match(label)
    return match.group("title").strip() if match else None


def _tree(paragraphs: list[Paragraph]) -> _Node:
    root = _Node(Paragraph(0, ""), -1, "")
    stack = [root]
    last_body: tuple[_Node, Paragraph] | None = None
    for para in paragraphs:
        if _DATE_LINE.match(para.text) or _CLOSING.match(para.text):
            # the document's end matter; its signature is the short line just above the date
            if last_body is not None and _looks_like_signature(last_body[1].text):
                last_body[0].body.remove(last_body[1])
                root.body.append(last_body[1])
            del stack[1:]
            root.body.append(para)
            last_body = None
            continue
        numbered = _numbered(para.text)
        about = _about(numbered[1] if numbered else para.text)
        if numbered is None and about is None:
            stack[-1].body.append(para)
            last_body = (stack[-1], para)
            continue
        rank, label = numbered if numbered else (UNNUMBERED_ABOUT, para.text)
        while len(stack) > 1 and stack[-1].rank >= rank:
            stack.pop()
        node = _Node(para, rank, label, about, parent=stack[-1])
        stack[-1].children.append(node)
        stack.append(node)
        last_body = None
    return root


def _looks_like_signature(text: str) -> bool:
    return len(text) <= 30 and not any(c in text for c in "。；，")


def _walk(node: _Node) -> Iterator[_Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _problem_rank(nodes: list[_Node]) -> int | None:
    abouts = Counter(n.rank for n in nodes if n.about is not None)
    if abouts:
        return abouts.most_common(1)[0][0]
    counts = Counter(n.rank for n in nodes)
    ranks = sorted((r for r, c in counts.items() if c >= 2), reverse=True) or sorted(counts, reverse=True)
    if not ranks:
        return None
    rank = ranks[0]
    while True:
        parents = Counter(n.parent.rank for n in nodes if n.rank == rank and n.parent and n.parent.rank >= 0)
        if not parents:
            return rank
        above = parents.most_common(1)[0][0]
        # a heading of the level above with none of this level under it, beside one that has
        # some: this level is a problem's sub-points, and the level above holds the problems
        families = {id(n.parent): n.parent for n in nodes if n.rank == above and n.parent}
        if any(any(c.rank == above and not c.children for c in f.children)
               and any(c.rank == above and any(g.rank == rank for g in c.children) for c in f.children)
               for f in families.values()):
            rank = above
            continue
        return rank


def _place(root: _Node, rank: int, problems: list[Problem], unplaced: list[Unplaced]) -> None:
    nodes = list(_walk(root))[1:]
    category_rank = _mode(n.parent.rank for n in nodes if n.rank == rank and n.parent and n.parent.rank >= 0)
    # a category that numbers its problems one level up (1． where the others have （1）) still
    # holds problems: a paragraph between the two levels with nothing under it is one
    found = [n for n in nodes if n.rank == rank or (
        category_rank is not None and category_rank < n.rank < rank and not n.children)]
    area_rank = _mode(n.parent.parent.rank for n in found
                      if n.parent and n.parent.rank == category_rank and n.parent.parent and n.parent.parent.rank >= 0)
    areas = {id(a): a for n in found if (a := _ancestor(_ancestor(n, category_rank) or n, area_rank))}
    categories = {id(c): c for n in found if (c := _ancestor(n, category_rank))}
    if len(areas) == 1 and len(categories) > 1:
        # one heading over every problem is a chapter (一、巡察发现的主要问题), not a 方面: the
        # headings under it are the 方面, and the document has no 问题类别 level
        area_rank, category_rank = category_rank, None
    heads: set[int] = set()  # ids of the area and category headings a problem sits under
    for node in found:
        category = _ancestor(node, category_rank)
        area = _ancestor(category or node, area_rank)
        title, rest = _title(node)
        parts = [(node.para.number, rest)] if rest else []
        parts.extend((para.number, para.text) for para in _inside(node))
        held = {node.para.number}
        if not title and parts:  # the number alone on its line: the title is the text that follows
            first, more = _first_sentence(parts[0][1])
            if _clean(first):
                title = _clean(first)
                held.add(parts[0][0])
                parts = [(n, t) for n, t in [(parts[0][0], more), *parts[1:]] if t]
        if not title:
            unplaced.append(Unplaced(node.para.number, node.para.text, WHY_NO_TITLE))
            unplaced.extend(Unplaced(n, t, WHY_NO_TITLE) for n, t in parts if n != node.para.number)
            continue
        heads.update(id(h) for h in (category, area) if h is not None)
        kept = _fit(parts, unplaced)
        holds = {*held, *(h.para.number for h in (area, category) if h is not None),
                 *(number for number, _ in parts[:len(kept)])}
        problems.append(Problem(node.para.number, _heading(area), _heading(category), title, "\n".join(kept),
                                tuple(sorted(holds))))
    top = min((r for r in (area_rank, category_rank) if r is not None), default=rank)
    _leftovers(root, {id(n) for n in found}, rank, top, heads, unplaced)


def _mode(values: Iterator[int]) -> int | None:
    """The most common rank; on a tie the deeper one (a document that skips a level skips it rarely)."""
    counts = Counter(values)
    return max(counts, key=lambda r: (counts[r], r)) if counts else None


def _ancestor(node: _Node, rank: int | None) -> _Node | None:
    up = node.parent
    while up is not None and up.rank >= 0:
        if up.rank == rank:
            return up
        up = up.parent
    return None


def _inside(node: _Node) -> Iterator[Paragraph]:
    """A problem's own paragraphs after its title, in document order: its body, its sub-points."""
    yield from node.body
    for child in node.children:
        yield child.para
        yield from _inside(child)


def _fit(parts: list[tuple[int, str]], unplaced: list[Unplaced]) -> list[str]:
    """The description's paragraphs that fit one cell; the rest is listed, not cut off."""
    kept: list[str] = []
    size = 0
    for i, (_, text) in enumerate(parts):
        size += len(text) + (1 if kept else 0)
        if size > MAX_CELL:
            unplaced.extend(Unplaced(number, rest, WHY_TOO_LONG) for number, rest in parts[i:])
            break
        kept.append(text)
    return kept


def _title(node: _Node) -> tuple[str, str]:
    """A problem's title, and the rest of its paragraph (the start of its description)."""
    first, rest = _first_sentence(node.label)
    if node.about is not None:
        return node.about, rest
    return _clean(first), rest


def _heading(node: _Node | None) -> str:
    return "" if node is None else _clean(_first_sentence(node.label)[0])


def _clean(text: str) -> str:
    """A title or heading without the punctuation that ends it."""
    return _TRAILING.sub("", text).strip()


def _first_sentence(text: str) -> tuple[str, str]:
    """Split at the first sentence end outside quotation marks and brackets."""
    depth = 0
    straight = False  # inside "…" (the same mark opens and closes)
    for i, ch in enumerate(text):
        if ch == '"':
            straight = not straight
        elif ch in _OPENERS:
            depth += 1
        elif ch in _CLOSERS:
            depth = max(depth - 1, 0)
        elif ch in _SENTENCE_END and depth == 0 and not straight:
            return text[:i].strip(), text[i + 1:].strip()
    return text.strip(), ""


def _leftovers(node: _Node, problems: set[int], rank: int, top: int, heads: set[int], unplaced: list[Unplaced]) -> None:
    """Every paragraph of the tree that no problem row holds, listed with why."""

    def why_of(heading: _Node) -> str:
        return WHY_ABOVE if heading.rank < top else WHY_STRAY_DEEP if heading.rank > rank else WHY_NO_PROBLEM

    for para in node.body:
        if node.rank < 0:  # before the first numbered paragraph, or the document's end matter
            first = node.children[0].para.number if node.children else None
            why = WHY_OUTSIDE if first is None or para.number < first else WHY_CLOSING
        else:
            why = WHY_HEADING_TEXT if id(node) in heads else why_of(node)
        unplaced.append(Unplaced(para.number, para.text, why))
    for child in node.children:
        if id(child) in problems:
            continue  # its row holds it and everything under it
        if id(child) in heads:
            rest = _first_sentence(child.label)[1]
            if rest:
                unplaced.append(Unplaced(child.para.number, rest, WHY_HEADING_TEXT))
        else:
            unplaced.append(Unplaced(child.para.number, child.para.text, why_of(child)))
        _leftovers(child, problems, rank, top, heads, unplaced)


# ---------------------------------------------------------------------------------------------
# Writing

_FILL_ME = "FFF2CC"  # the light yellow offices use for "to be filled in"
_HEAD = "D9E1F2"
_WIDTHS = {REF: 6, AREA: 24, CATEGORY: 24, TITLE: 36, DESCRIPTION: 60, "整改措施": 40, "责任领导": 12,
           "责任科室": 14, "整改时限": 14, "整改状态": 12, UNIT: 20}
_NOTES = {
    "整改措施": "待填写：针对该问题的具体整改措施。",
    "责任领导": "待填写：牵头负责的领导（如 党组书记、分管副局长）。",
    "责任科室": "待填写：具体负责整改的科室。",
    "整改时限": "待填写：完成整改的日期，如 2026-12-31。",
    "整改状态": "可留空：留空即“待整改”，导入后由工作流推进。",
    UNIT: "待填写：被巡察单位全称（或导入时用 --unit 给出）。",
    DESCRIPTION: "文件中该问题之后的段落，原样摘录；导入后作为附加列保留。",
}


def write_draft(draft: Draft, out: Path, *, unit: str | None = None) -> None:
    """Write the draft ledger: sheet 台账 (the rows to fill in, the columns still to fill marked),
    sheet 未归类 (each paragraph not placed, with its number), sheet 说明. Written whole or not at all."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill

    book = openpyxl.Workbook()
    ws = book.active
    ws.title = "台账"
    to_fill = {*TO_FILL, *(() if unit else (UNIT,))}
    fill = PatternFill("solid", fgColor=_FILL_ME)
    head_fill = PatternFill("solid", fgColor=_HEAD)
    wrap = Alignment(wrap_text=True, vertical="top")
    ws.append(list(HEADERS))
    for col, header in enumerate(HEADERS, start=1):
        cell = ws.cell(row=1, column=col)
        cell.font = Font(bold=True)
        cell.fill = fill if header in to_fill else head_fill
        if header in _NOTES and (header in to_fill or header == DESCRIPTION):
            cell.comment = Comment(_NOTES[header], "duban")
        ws.column_dimensions[cell.column_letter].width = _WIDTHS.get(header, 14)
    for i, problem in enumerate(draft.problems, start=1):
        values: dict[str, object] = {REF: i, AREA: problem.area, CATEGORY: problem.category, TITLE: problem.title,
                                     DESCRIPTION: problem.description, UNIT: unit or ""}
        row = i + 1
        for col, header in enumerate(HEADERS, start=1):
            cell = ws.cell(row=row, column=col)
            _set(cell, values.get(header) or None)
            cell.alignment = wrap
            if header in to_fill:
                cell.fill = fill
            if header == "整改时限":
                cell.number_format = "yyyy-mm-dd"
    ws.freeze_panes = "A2"

    where = "段号" if draft.where == "paragraph" else "行号"
    left = book.create_sheet(UNPLACED_SHEET)
    left.append([where, "原文", "原因"])
    for u in draft.unplaced:
        left.append([u.number, None, u.why])
        _set(left.cell(row=left.max_row, column=2), u.text)
    for letter, width in (("A", 8), ("B", 80), ("C", 36)):
        left.column_dimensions[letter].width = width
    for cell in left[1]:
        cell.font = Font(bold=True)

    notes = book.create_sheet("说明")
    for line in _explanation(draft, unit, where):
        notes.append([line])
    notes.column_dimensions["A"].width = 100

    fd, tmp = tempfile.mkstemp(prefix=".draft-", suffix=".xlsx", dir=out.parent)
    os.close(fd)
    try:
        book.save(tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _set(cell: Any, value: object) -> None:
    cell.value = value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text, never a formula, whatever it starts with


def _explanation(draft: Draft, unit: str | None, where: str) -> list[str]:
    fill = "、".join((*TO_FILL, *(() if unit else (UNIT,))))
    return [
        f"台账草稿：由 duban ledger draft 从《{draft.source.name}》生成。",
        f"共{len(draft.problems)}个具体问题，{draft.areas}个方面，{draft.categories}个问题类别；"
        f"{len(draft.unplaced)}段未能归类。",
        f"已填写：{REF}、{AREA}、{CATEGORY}、{TITLE}（按文件原文），{DESCRIPTION}（文件中该问题之后的段落，原样摘录）"
        + (f"、{UNIT}。" if unit else "。"),
        f"黄色的列待填写：{fill}。整改时限填日期（如2026-12-31）；整改状态可留空，留空即“待整改”。",
        f"“{UNPLACED_SHEET}”表列出文件中未归入任何具体问题的段落及其{where}（说明性文字、落款等），请逐条核对，"
        f"确有遗漏的问题请补入台账。",
        "填好后导入：duban ledger import 本文件 --feedback-date 收到反馈意见的日期（导入读第一张表“台账”）。",
    ]
