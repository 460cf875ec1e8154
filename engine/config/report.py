"""``[report]``: the wording, parts and state mapping of the rectification report.

``engine.report.settings.settings_for`` applies a ledger's ``[report.ledgers.NAME]`` overrides (kept
as tables here, checked against this same model when that ledger's report is made).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# The Party organisations that lead a unit, as a report's 发文机关 names them.
PARTY_BODIES = ("党组", "党委", "党工委", "党总支", "党支部")


def _paragraphs(value: object) -> object:
    return [value] if isinstance(value, str) else value


Paragraphs = Annotated[list[str], BeforeValidator(_paragraphs)]


class ReportSettings(BaseModel):
    """``[report]`` in config.toml; ``[report.ledgers.NAME]`` overrides any key for one ledger.

    Text settings may use the placeholders {unit} {short_unit} {inspector} {issues} {leaders}
    {departments}; they are replaced literally (never ``str.format``, which would let a config
    file reach Python attributes).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit: str | None = None  # 发文机关, e.g. 中共重庆市璧山区科学技术局党组 (default from the ledger's unit)
    short_unit: str | None = None  # how the body names it, e.g. 区科技局党组 (default: unit without 中共)
    # the unit's Party organisation, added to a ledger's unit that does not name one: 区教育委员会 →
    # 中共区教育委员会党委 with "党委"; "" for none (a unit cell ending in one of these keeps its own)
    party_body: str = "党组"
    inspector: str = "巡察组"  # e.g. 区委第一巡察组
    title: str | None = None  # the whole title; "\n" breaks lines (default: unit + 关于落实…的报告)
    intro: Paragraphs = Field(default_factory=lambda: [
        "根据{inspector}反馈意见，{short_unit}认真分析，逐条研判，精心制定整改方案，逐项落实整改任务，"
        "及时加强跟踪督办，确保整改工作落到实处。现将整改情况报告如下："])
    part1_heading: str = "高度重视，精心组织，认真落实整改责任"
    part1: Paragraphs = Field(default_factory=lambda: [
        "{short_unit}切实履行整改主体责任，成立巡察整改领导小组，认真梳理巡察反馈意见，逐条对照研判，"
        "制定整改工作方案，建立健全整改工作机制，将{issues}个具体问题逐一分解落实到{leaders}名责任领导、"
        "{departments}个责任科室，明确整改时限，实行台账管理、跟踪督办、逐项销号。"])
    part2_heading: str = "突出重点，注重实效，确保整改落到实处"
    part3_heading: str = "认真总结，增添措施，推进整改全面深化"
    part3: Paragraphs = Field(default_factory=lambda: [
        "下阶段，{short_unit}将继续按照做好巡察整改“后半篇文章”的要求，认真总结，增添措施，确保力度不减，"
        "标准不降。加强“回头看”，抓好巩固提升，防止出现反弹。对正在整改和需要长期坚持的整改任务，对照整改标准，"
        "作出后续工作安排和跟踪督办，确保整改彻底。"])
    # a status line under each problem (state, deadline, evidence, look-backs); by default in md and
    # html (working copies) but not in the docx, which is the report as sent (the seed has none)
    details: bool | None = None
    duties: bool = True  # the appendix of recurring duties done and due
    signature: bool = True  # 发文机关署名 and 成文日期 at the end
    done_states: list[str] | None = None
    long_term_states: list[str] | None = None
    templates: str | None = None  # a folder whose report.md.j2 / report.html.j2 replace the shipped ones
    ledgers: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("party_body")
    @classmethod
    def _party_body(cls, value: str) -> str:
        if value not in (*PARTY_BODIES, ""):
            raise ValueError(f"{value!r} is not a Party organisation: use one of {'、'.join(PARTY_BODIES)} (or \"\")")
        return value

    @field_validator("inspector")
    @classmethod
    def _inspector(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name the inspection team, e.g. 区委第一巡察组")
        return value.strip()
