"""Which ledger header fills which issue field: the spellings offices use, built in.

District offices name the same column many ways (具体问题 / 反馈问题 / 问题表现, 责任科室 / 责任股室,
整改时限 / 完成时限, 整改状态 / 整改进度 …). ``BUILT_IN`` holds the common ones, so a ledger written the
way offices write them imports without editing the workflow; a workflow's ``columns:`` adds its own
spellings and wins where it names one differently (``columns: {category: [反馈问题]}`` makes 反馈问题
a category column for that workflow).

Headers are compared after ``normalize``: whitespace removed (headers are often spaced or wrapped to
fit a cell: "序  号", "整改\\n时限"), a trailing colon dropped, full-width letters made half-width;
failing that, without a trailing bracketed note ("整改时限（年月日）", "责任领导(签字)").

When two columns of a sheet spell the same field, the spelling listed first wins (the workflow's
before the built-in ones) and the other is kept as an extra column, with a warning.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

# field -> spellings, the most specific first (it wins when a sheet has two of them)
BUILT_IN: dict[str, tuple[str, ...]] = {
    "ref": ("序号", "编号", "问题序号", "问题编号", "序"),
    "area": ("方面", "问题方面", "反馈问题方面", "问题领域", "领域", "板块"),
    "category": ("问题类别", "类别", "问题类型", "类型", "问题分类", "分类"),
    "title": ("具体问题", "问题表现", "具体问题表现", "问题描述", "问题具体表现", "存在问题", "存在的问题", "问题内容",
              "反馈问题", "巡察反馈问题", "问题", "问题清单"),
    "measures": ("整改措施", "具体整改措施", "整改举措", "整改措施及目标", "整改目标及措施", "措施"),
    "leader": ("责任领导", "牵头领导", "分管领导", "责任领导人", "牵头责任领导", "责任人"),
    "department": ("责任科室", "责任股室", "责任处室", "责任部门", "责任单位", "牵头科室", "牵头股室", "牵头部门",
                   "牵头单位", "承办科室", "责任主体"),
    "deadline": ("整改时限", "完成时限", "整改期限", "完成时间", "整改时间", "计划完成时间", "办结时限", "时限"),
    "status": ("整改状态", "整改进度", "进展情况", "状态"),
    "unit": ("单位", "被巡察单位", "被巡察党组织", "填报单位"),
}

_SPACE = re.compile(r"\s+")
_NOTE = re.compile(r"[（(][^（()）]*[)）]$")


def normalize(header: str) -> str:
    """A header as compared: NFKC (full-width → half-width), no whitespace, no trailing colon."""
    return _SPACE.sub("", unicodedata.normalize("NFKC", header)).rstrip(":")


class ColumnTable:
    """The spellings of one workflow: its ``columns:`` over the built-in table."""

    def __init__(self, workflow_columns: Mapping[str, Sequence[str]]):
        self.spellings: dict[str, list[str]] = {}
        self._field: dict[str, str] = {}
        self._rank: dict[str, int] = {}
        for fld, names in workflow_columns.items():
            for name in names:
                self._add(fld, name)
        for fld, names in BUILT_IN.items():
            for name in names:
                if normalize(name) not in self._field:
                    self._add(fld, name)

    def _add(self, fld: str, name: str) -> None:
        key = normalize(name)
        if key in self._field:
            return  # the workflow's own spelling of a name comes first
        self._field[key] = fld
        self.spellings.setdefault(fld, []).append(name)
        self._rank[key] = len(self.spellings[fld])

    def field_of(self, header: str) -> str | None:
        """The field ``header`` fills, or None (an extra column)."""
        key = normalize(header)
        found = self._field.get(key)
        if found is None and key.endswith((")", "）")):
            found = self._field.get(_NOTE.sub("", key))
        return found

    def rank(self, header: str) -> int:
        """The place of ``header``'s spelling in its field's list (lower wins)."""
        key = normalize(header)
        return self._rank.get(key) or self._rank.get(_NOTE.sub("", key), 1 << 20)

    def assign(self, headers: Sequence[str]) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
        """field -> the column that fills it, and (field, kept, other) for each column left to be an
        extra one because an earlier-listed spelling of its field is in the sheet too."""
        index: dict[str, int] = {}
        clashes: list[tuple[str, str, str]] = []
        for i, header in enumerate(headers):
            fld = self.field_of(header) if header else None
            if fld is None:
                continue
            held = index.get(fld)
            if held is None:
                index[fld] = i
            elif self.rank(header) < self.rank(headers[held]):
                clashes.append((fld, header, headers[held]))
                index[fld] = i
            else:
                clashes.append((fld, headers[held], header))
        return index, clashes

    def named(self, fld: str, limit: int = 3) -> str:
        """The first spellings of a field, for messages ("具体问题 / 问题表现 / …")."""
        return " / ".join(self.spellings.get(fld, [fld])[:limit])
