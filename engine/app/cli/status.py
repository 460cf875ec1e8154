"""``duban status``: the overview of a ledger (or all), as the report opens."""

from __future__ import annotations

import click
from rich.table import Table

from ...issues.queries import (
    find_ledger,
    status_board,
    status_by_unit,
)
from .context import App, json_option, pass_app
from .language import Command
from .output import out, print_json, say


@click.command("status", cls=Command)
@click.option("--ledger", "ledger_name", metavar="NAME")
@json_option
@pass_app
def status(app: App, ledger_name: str | None, as_json: bool) -> None:
    """The status board: areas, categories, problems and how many are in each state; without
    --ledger, one sentence per unit (the JSON's totals add them up, its "units" keep them apart)."""
    with app.transaction() as session:
        ledger = find_ledger(session, ledger_name)
        board = status_board(session, app.registry, ledger=ledger, workflow_name=app.config.workflows.default)
        units = [] if ledger else status_by_unit(session, app.registry, workflow_name=app.config.workflows.default)
    if as_json:
        print_json(board.as_json() | ({} if ledger else {"units": [{"unit": label, **b.as_json()} for label, b in units]}))
        return
    if ledger is not None or len(units) < 2:
        archived = "（已归档）" if ledger is not None and ledger.archived_at else ""
        scope = f"台账 {ledger.name}{archived}：" if ledger else (f"{units[0][0]}：" if units else "")
        say(f"{scope}{board.sentence()}。")
        table = Table("方面 area", *(board.labels[s] for s in board.by_state), "合计")
        for area, counts in board.by_area:
            table.add_row(area, *(str(counts.get(s, 0) or "") for s in board.by_state), str(sum(counts.values())))
        table.add_row("合计", *(str(n) for n in board.by_state.values()), str(board.issues), style="bold")
        out.print(table)
        return
    for label, unit_board in units:  # areas of two units are not one area: no sum across them
        say(f"{label}：{unit_board.sentence()}。")
    table = Table("单位 unit", *(board.labels[s] for s in board.by_state), "合计")
    for label, unit_board in units:
        table.add_row(label, *(str(unit_board.by_state.get(s, 0) or "") for s in board.by_state),
                      str(unit_board.issues))
    table.add_row("合计", *(str(n) for n in board.by_state.values()), str(board.issues), style="bold")
    out.print(table)
