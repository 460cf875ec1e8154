"""``duban evidence``: the evidence store (``[evidence] folder``) checked against the database."""

from __future__ import annotations

import click

from ...errors import EXIT_REFUSED
from ...i18n import _
from ...issues.evidence import EvidenceStore
from .context import App, json_option, pass_app
from .language import Group
from .output import print_json, say


@click.group("evidence", cls=Group)
def evidence_group() -> None:
    """Evidence files (佐证材料): where they are kept and whether they are intact."""


@evidence_group.command("check")
@click.option("--adopt", is_flag=True,
              help="Copy files that older rows keep outside the store (CLI evidence by its own path) into it.")
@json_option
@pass_app
def check(app: App, adopt: bool, as_json: bool) -> None:
    """Hash every evidence file against the database; exit 1 when one is missing or changed."""
    store = EvidenceStore.of(app.config)
    with app.transaction() as session:
        report = store.check(session, adopt=adopt)
    space = report.space
    if as_json:
        print_json({"folder": str(store.folder), "free_bytes": space.free, "min_free_bytes": space.min_free,
                    "rows": report.rows, "inline": report.inline, "stored": report.stored,
                    **{k: [{"id": i, "file_name": n, "detail": d} for i, n, d in getattr(report, k)]
                       for k in ("outside", "adopted", "missing", "changed")},
                    "unreferenced": report.unreferenced, "staging": report.staging})
    else:
        free = _("unknown") if space.free is None else f"{space.free / 2**30:,.1f} GiB"
        if space.ok:
            say(f"evidence store {store.folder}: {free} free")
        else:
            say(f"evidence store {store.folder}: {free} free — below [evidence] min_free_bytes "
                f"({space.min_free / 2**30:,.1f} GiB): uploads are refused")
        say(f"{report.rows} file(s): {report.inline} in the database, {report.stored} in the store, "
            f"{len(report.outside)} outside it, {len(report.adopted)} adopted")
        for title, rows in (("missing", report.missing), ("changed (SHA-256 differs)", report.changed),
                            ("outside the store (served while unchanged; --adopt copies them in)", report.outside),
                            ("adopted", report.adopted)):
            for evidence_id, name, detail in rows:
                say(f"  {title}: #{evidence_id} {name}: {detail}")
        if report.unreferenced:
            say(f"{len(report.unreferenced)} file(s) in the store no row names (safe to delete): "
                + ", ".join(report.unreferenced[:10]) + (" …" if len(report.unreferenced) > 10 else ""))
        if report.staging:
            say(f"{len(report.staging)} temporary upload file(s) ({', '.join(report.staging[:5])}): "
                "left by a stopped process when no upload is running; safe to delete then")
    if not report.ok:
        raise click.exceptions.Exit(EXIT_REFUSED)
