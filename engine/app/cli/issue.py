"""``duban issue``: look at issues and move them through their workflow."""

from __future__ import annotations

from pathlib import Path

import click
from rich.cells import cell_len
from rich.table import Table

from ...clock import parse_date
from ...errors import BadInput
from ...i18n import N_, _
from ...issues.board import DOORS, step_words
from ...issues.evidence import EvidenceStore, read_evidence
from ...issues.queries import (
    find_ledger,
    issue_detail,
    issue_dict,
    list_issues,
    resolve_ref,
)
from ...issues.service import checkin, transition
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import out, print_json, say


@click.group("issue", cls=Group)
def issue_group() -> None:
    """Issues (具体问题) of the ledgers."""


@issue_group.command("list")
@click.option("--ledger", "ledger_name", metavar="NAME")
@click.option("--state", metavar="STATE", help="Only issues in this state (e.g. in_progress).")
@click.option("--department", metavar="NAME", help="Only issues of this responsible department (责任科室).")
@json_option
@pass_app
def list_(app: App, ledger_name: str | None, state: str | None, department: str | None, as_json: bool) -> None:
    """List issues. --state takes a state's name or its label (整改中)."""
    with app.transaction() as session:
        ledger = find_ledger(session, ledger_name)
        if state is not None:
            workflow = app.registry.definition(app.registry.of_ledger(session, ledger) if ledger is not None
                                               else app.registry.current(session, app.config.workflows.default))
            named = {s.name: s.name for s in workflow.states} | {s.label: s.name for s in workflow.states}
            if state not in named:
                choices = ", ".join(f"{s.name} ({s.label})" for s in workflow.states)
                raise BadInput(f"--state {state!r} is not a state of {workflow.name}", hint=f"states: {choices}")
            state = named[state]
        rows = []
        for issue in list_issues(session, ledger=ledger, state=state, department=department):
            rows.append(issue_dict(issue, app.registry.definition(issue.workflow), app.config.tz))
    if as_json:
        print_json(rows)
        return
    table = Table(_("ref"), _("state"), _("deadline"), _("leader"), _("department"), _("title"))
    for r in rows:
        table.add_row(r["ref"], r["state_label"], r["deadline"] or "", r["leader"], r["department"], r["title"])
    out.print(table)
    say(f"{len(rows)} issue(s)")


# the fields `issue show` lists, marked for the catalogue (their labels in Chinese: 序号, 方面 ...)
FIELDS = (N_("ref"), N_("area"), N_("category"), N_("title"), N_("measures"), N_("leader"), N_("department"),
          N_("deadline"))
LABELS = (N_("state"), N_("next"))


def _field(key: str, value: str) -> None:
    """``   key: value``, the labels aligned (in Chinese by terminal cells)."""
    label = _(key)
    if label == key:
        say(f"{key:>10}: {value}")
    else:
        say(f"{' ' * max(0, 10 - cell_len(label))}{label}：{value}")


@issue_group.command("show")
@click.argument("ref")
@json_option
@pass_app
def show(app: App, ref: str, as_json: bool) -> None:
    """One issue with its history and evidence. REF is LEDGER/序号 or a bare 序号."""
    with app.transaction() as session:
        issue = resolve_ref(session, ref)
        workflow = app.registry.definition(issue.workflow)
        data = issue_detail(session, issue, workflow, app.config.tz)
    if as_json:
        print_json(data)
        return
    # the words the pages use (待整改, 制定整改方案, 网页), each step with the name `transition` takes
    steps = step_words(workflow)
    for key in FIELDS:
        _field(key, str(data[key] or ""))
    _field("state", _("{state} ({label}) since {since}").format(
        state=data["state"], label=data["state_label"], since=data["state_since"]))
    _field("next", _("; ").join(_("{label} ({trigger})").format(label=steps.get(t, t), trigger=t)
                                for t in data["triggers"]) or _("(final)"))
    if data["evidence"]:
        say("evidence:")
        for e in data["evidence"]:
            say(f"  {e['file_name']}  {e['size']} bytes  sha256 {e['sha256'][:16]}…  by {e['added_by']}")
    history = Table(_("at"), _("by"), _("door"), _("trigger"), _("from"), _("to"), _("note"), title=_("history"))
    for h in data["history"]:
        history.add_row(h["at"], h["by"], DOORS.get(h["door"], h["door"]), steps.get(h["trigger"], h["trigger"]),
                        workflow.label(h["from"]) if h["from"] else "", workflow.label(h["to"]), h["note"])
    out.print(history)


@issue_group.command("transition")
@click.argument("ref")
@click.argument("trigger")
@click.option("--by", required=True, help="The user acting (an existing account; checked against the step's roles).")
@click.option("--note", default="", help="Why (required e.g. to reopen).")
@click.option("--deadline", metavar="DATE", help="Set the deadline (整改时限), YYYY-MM-DD.")
@click.option("--evidence", "evidence", multiple=True, type=click.Path(path_type=Path),
              help="Attach an evidence file (佐证材料); repeatable.")
@at_option
@pass_app
def transition_(app: App, ref: str, trigger: str, by: str, note: str, deadline: str | None,
                evidence: tuple[Path, ...], at: str | None) -> None:
    """Move an issue by TRIGGER (e.g. plan, start, submit, approve, return, sustain, reopen)."""
    due = parse_date(deadline) if deadline else None
    now = app.now(at)
    with EvidenceStore.of(app.config).staging() as staged:
        files = read_evidence(evidence, staged)  # copied in: the original may go away afterwards
        with app.transaction() as session:
            actor = app.actor(session, by)
            moved = transition(session, app.runtime, ref, trigger, actor=actor, now=now, note=note,
                               deadline=due, evidence=files)
            staged.keep(session, by=actor.name)
    say(f"{moved.ref}: {moved.from_state} -> {moved.to_state} ({trigger} by {by})")


@issue_group.command("edit")
@click.argument("ref")
@click.option("--by", required=True, help="Who is editing (recorded).")
@click.option("--measures", metavar="TEXT", help="New rectification measures (整改措施).")
@click.option("--deadline", metavar="DATE", help="A new deadline (整改时限): an extension (延期), needs --note.")
@click.option("--leader", metavar="NAME", help="A new responsible leader (责任领导): a handover.")
@click.option("--department", metavar="NAME", help="A new responsible department (责任科室): a handover.")
@click.option("--note", default="", help="Why (required with --deadline).")
@click.option("--force", is_flag=True, help="Hand over even to a leader or department no account can act for "
                                            "(the history records the warning).")
@at_option
@pass_app
def edit_(app: App, ref: str, by: str, measures: str | None, deadline: str | None, leader: str | None,
          department: str | None, note: str, force: bool, at: str | None) -> None:
    """Change an issue's measures, deadline, leader or department; each change goes into its history."""
    from ...issues.edit import edit_issue

    due = parse_date(deadline) if deadline else None
    with app.transaction() as session:
        edited = edit_issue(session, app.runtime, ref, actor=app.actor(session, by), now=app.now(at), note=note,
                            measures=measures,
                            deadline=due, leader=leader, department=department, force=force)
    for line in edited.changes:
        say(f"{edited.ref}: {line}")


@issue_group.command("checkin")
@click.argument("ref")
@click.option("--by", required=True, help="Who checked (recorded).")
@click.option("--failed", is_flag=True, help="The measures did not hold: reopen the issue (needs --note).")
@click.option("--note", default="", help="What was checked, or what went wrong.")
@at_option
@pass_app
def checkin_(app: App, ref: str, by: str, failed: bool, note: str, at: str | None) -> None:
    """Record a long-term item's check-in (回头看); a failed one reopens it."""
    now = app.now(at)
    with app.transaction() as session:
        moved = checkin(session, app.runtime, ref, actor=app.actor(session, by), now=now, ok=not failed, note=note)
    if failed:
        say(f"{moved.ref}: check-in failed; {moved.from_state} -> {moved.to_state}")
    else:
        say(f"{moved.ref}: checked in by {by}; next check-in follows from {now.astimezone(app.config.tz).date()}")


@issue_group.group("extension")
def extension_group() -> None:
    """延期申请: ask for a later deadline; its leader or a reviewer approves or refuses (with a reason)."""


@extension_group.command("request")
@click.argument("ref")
@click.option("--by", required=True, help="Who asks (the issue's leader, department or unit administrator).")
@click.option("--to", "to", required=True, metavar="DATE", help="The deadline asked for, YYYY-MM-DD.")
@click.option("--reason", required=True, help="Why the deadline must move (延期理由).")
@at_option
@pass_app
def extension_request(app: App, ref: str, by: str, to: str, reason: str, at: str | None) -> None:
    """Ask for the deadline of REF to move to --to: it waits on its deciders, who are reminded of it."""
    from ...issues.extensions import request_extension

    with app.transaction() as session:
        asked = request_extension(session, app.runtime, ref, actor=app.actor(session, by), now=app.now(at),
                                  to=parse_date(to), reason=reason)
    say(f"{ref}: 延期申请 to {asked.to.isoformat()} waits on a decision")


@extension_group.command("decide")
@click.argument("ref")
@click.option("--by", required=True, help="Who decides (the issue's leader, a reviewer or unit administrator).")
@click.option("--approve/--refuse", required=True, help="Approve (the deadline moves) or refuse (needs --note).")
@click.option("--note", default="", help="Why; required to refuse: the requester reads it.")
@at_option
@pass_app
def extension_decide(app: App, ref: str, by: str, approve: bool, note: str, at: str | None) -> None:
    """Approve or refuse the 延期申请 waiting on REF."""
    from ...issues.extensions import decide_extension

    with app.transaction() as session:
        asked = decide_extension(session, app.runtime, ref, actor=app.actor(session, by), now=app.now(at),
                                 approve=approve, note=note)
    if approve:
        say(f"{ref}: 延期申请 to {asked.to.isoformat()} approved by {by}")
    else:
        say(f"{ref}: 延期申请 to {asked.to.isoformat()} refused by {by}")
