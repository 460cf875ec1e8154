"""``duban audit``: the history's hash chains, recomputed (engine/issues/history.py)."""

from __future__ import annotations

import click

from ...errors import BadInput, Refused
from ...issues import history
from ...issues.queries import find_ledger
from .context import App, json_option, pass_app
from .language import Group
from .output import print_json, say


@click.group("audit", cls=Group)
def audit_group() -> None:
    """The history's hash chains: anything changed, deleted or inserted behind duban's back."""


@audit_group.command("verify")
@click.option("--ledger", "ledger_name", metavar="NAME", help="One ledger (default: every ledger).")
@click.option("--head", "head", metavar="HASH", help="A chain head kept earlier (an export's, a report's, "
                                                     "an earlier verify's): the history must still end there.")
@json_option
@pass_app
def verify(app: App, ledger_name: str | None, head: str | None, as_json: bool) -> None:
    """Recompute every entry's hash and link; name the first entry of each issue that does not hold.

    Exit 0 when every chain holds (and the history up to --head's instant is what it was then);
    1 when anything was changed, deleted or inserted."""
    if head is not None and history.parse_head(head) is None:
        raise BadInput(f"--head {head[:80]!r} is not a chain head (INSTANT-DIGEST, as exports and reports print it)")
    with app.reading() as session:
        ledger = find_ledger(session, ledger_name)
        found = history.verify(session, ledger, at=app.now(None), held=head)
    breaks = [str(b) for b in found.breaks or []]
    moved = found.held_ok is False
    if as_json:
        print_json({"ok": found.ok and not moved, "issues": found.issues, "entries": found.entries,
                    "evidence": found.evidence, "head": found.head, "expected_head": head, "breaks": breaks})
    else:
        say(f"{found.entries} history entries of {found.issues} issue(s) and {found.evidence} evidence file(s) checked")
        say(f"chain head {found.head}")
    if breaks:
        raise Refused(f"the history was changed behind duban's back in {len(breaks)} place(s)", details=breaks)
    if moved:
        raise Refused(f"the history up to {head.split('-')[0] if head else ''} is not what it was when {head} was taken",
                      hint="entries of that time were changed, deleted or inserted and the chain re-hashed behind duban's back")
    if not as_json:
        say("every chain holds")
