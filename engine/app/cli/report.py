"""``duban report``: the rectification report (整改情况报告), or with --district the 通报 of every unit."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ...errors import BadInput
from ...issues.queries import one_ledger
from ...report.build import build_report
from ...report.render import render_report
from .context import App, at_option, pass_app
from .language import Command
from .output import say, warn

_one_ledger = one_ledger


@click.command("report", cls=Command)
@click.option("--ledger", "ledger_name", metavar="NAME", help="Ledger to report on (needed when there are several).")
@click.option("--district", is_flag=True, help="The district's 巡察整改情况通报 over every unit (md or docx).")
@click.option("--format", "fmt", type=click.Choice(["md", "html", "docx"]), default=None,
              help="Output format (default: from -o's extension, else md).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="File to write (default: standard output; docx needs a file).")
@at_option
@pass_app
def report(app: App, ledger_name: str | None, district: bool, fmt: str | None, output: Path | None,
           at: str | None) -> None:
    """The rectification report (整改情况报告) in the official structure: md, html or docx (GB/T 9704);
    with --district, the 通报 of every unit's rectification."""
    if fmt is None:
        suffix = output.suffix.lower() if output else ""
        fmt = {".docx": "docx", ".html": "html", ".htm": "html"}.get(suffix, "md")
    if fmt == "docx" and output is None:
        raise BadInput("a .docx report needs a file: -o FILE.docx")
    if district:
        _district_notice(app, ledger_name, fmt, output, at)
        return
    app.sync_duties(at)
    now = app.now(at)
    with app.transaction() as session:
        data = build_report(session, app.runtime, _one_ledger(session, ledger_name), now)
    if not data.unit_known:
        warn(f"ledger {data.ledger} names no unit: the report says 本单位; give it with `duban ledger import … --unit`, "
             "a 单位 column, or [report] unit in config.toml")
    if fmt == "docx":
        from ...report.docx import write_docx

        write_docx(data, output)  # type: ignore[arg-type]
    else:
        text = render_report(data, fmt, app.config)
        if output is None:
            sys.stdout.write(text)
            return
        output.write_text(text, encoding="utf-8")
    say(f"report of {data.ledger} ({fmt}) written to {output}: {data.overview.counted()}")


def _district_notice(app: App, ledger_name: str | None, fmt: str, output: Path | None, at: str | None) -> None:
    from ...report.district import build_notice, render_md, write_docx

    if ledger_name:
        raise BadInput("--district covers every unit: leave out --ledger")
    if fmt == "html":
        raise BadInput("the district's notice is written as md or docx")
    with app.reading() as session:
        notice = build_notice(session, app.runtime, app.now(at))
    if fmt == "docx":
        write_docx(notice, output)  # type: ignore[arg-type]
    elif output is None:
        sys.stdout.write(render_md(notice))
        return
    else:
        output.write_text(render_md(notice), encoding="utf-8")
    say(f"district notice ({fmt}) of {len(notice.units)} unit(s) written to {output}")
