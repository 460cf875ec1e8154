"""Writing the report out as Markdown or a standalone HTML page (Word is ``engine.report.docx``)."""

from __future__ import annotations

from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

from ..config import Config
from ..errors import BadInput
from ..templating import render_template, template_env
from ..wording import cn_date, cn_number
from .model import Report
from .settings import settings_for

TEMPLATES = Path(__file__).resolve().parent / "templates"



def report_env(config: Config, override: str | None) -> SandboxedEnvironment:
    """The report's template environment, with the report's wording helpers as filters."""
    return template_env(config, TEMPLATES, override, {"cndate": cn_date, "cnnum": cn_number})


def render_report(report: Report, fmt: str, config: Config) -> str:
    """The report as Markdown or a standalone HTML page."""
    if fmt not in ("md", "html"):
        raise BadInput(f"unknown report format {fmt!r}", hint="use md, html or docx")
    env = report_env(config, settings_for(config, report.ledger).templates)
    return render_template(env, f"report.{fmt}.j2", report=report.as_dict())
