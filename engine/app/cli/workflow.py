"""``duban workflow``: validate, list, show (and draw) workflows; move a ledger to another version."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from notifications.render import Renderer

from ...config import load_config
from ...errors import BadInput, ConfigError, DubanError, WorkflowError
from ...i18n import _
from ...ledger.migrate import migrate_ledger
from ...workflow.diagram import draw
from ...workflow.loader import load_workflow
from ...workflow.registry import WorkflowRegistry
from ...workflow.schema import BUILTIN_ACTORS, WorkflowDef
from ...workflow.yamlsource import load_located
from ..checks import template_problems
from .context import App, at_option, json_option, pass_app
from .language import Group
from .output import error_lines, out, print_json, say, warn


@click.group("workflow", cls=Group)
def workflow_group() -> None:
    """Workflow definitions (YAML)."""


def _actor_problems(path: Path, definition: WorkflowDef) -> list[str]:
    """Actors named by a state that no ``[recipients."NAME"]`` of the configuration reaches (checked
    only when a configuration is found: DUBAN_CONFIG, or config.toml here)."""
    try:
        config = load_config(None)
    except ConfigError:
        return []
    if config.source is None:
        return []
    doc = load_located(path.read_text(encoding="utf-8"), str(path))
    out = []
    for i, state in enumerate(definition.states):
        for j, name in enumerate(state.actor):
            if name in BUILTIN_ACTORS or name in config.recipients:
                continue
            out.append(f"{doc.where(('states', i, 'actor', j))}: actor {name!r} of state {state.name} is reached by "
                       f"no recipient: add [recipients.\"{name}\"] to {config.source}, or name leader / department / reviewer")
    return out


@workflow_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files: tuple[Path, ...]) -> None:
    """Check workflow files; every error is printed as FILE:LINE:COL: message. Writes nothing."""
    failed = 0
    renderer = Renderer()
    for path in files:
        try:
            loaded = load_workflow(path)
        except WorkflowError as exc:
            failed += 1
            error_lines([exc.message, *exc.details])
            continue
        problems = template_problems(renderer, loaded)
        if problems:
            failed += 1
            error_lines([f"{path}: a template does not render", *problems])
            continue
        problems = _actor_problems(path, loaded.definition)
        if problems:
            failed += 1
            error_lines([f"{path}: a state's actor cannot be reached", *problems])
            continue
        say(f"{path}: ok ({loaded.name}@{loaded.version}, {len(loaded.definition.states)} states, "
            f"{len(loaded.definition.transitions)} transitions)")
    shipped = renderer.check()
    if shipped:
        failed += 1
        error_lines(["the notification templates do not render", *shipped])
    if failed:
        raise click.exceptions.Exit(2)


@workflow_group.command("sync")
@at_option
@pass_app
def sync(app: App, at: str | None) -> None:
    """Register new versions of the workflow files. Ledgers stay on their version until moved with
    `duban workflow migrate`."""
    with app.transaction() as session:
        for version, created in app.registry.sync_all(session, app.now(at)):
            if created:
                say(f"workflow {version.name}@{version.version}: registered")
            else:
                say(f"workflow {version.name}@{version.version}: unchanged")
            if not created:
                continue
            for ledger, state, n in app.registry.left_behind(session, version):
                warn(f"ledger {ledger}: {n} issue(s) in {state}, a state @{version.version} does not have; to move "
                     f"the ledger to it: duban workflow migrate {ledger} --to {version.version} --map {state}=STATE")


def _mapping(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise BadInput(f"--map {item!r}: expected OLD=NEW (state names or labels)")
        if out.get(old.strip(), new.strip()) != new.strip():
            raise BadInput(f"--map names two places for {old.strip()!r}")
        out[old.strip()] = new.strip()
    return out


@workflow_group.command("migrate")
@click.argument("ledger_name", metavar="LEDGER")
@click.option("--to", "to", metavar="VERSION", required=True,
              help="The version to move to: its hash as `duban workflow list` shows it, or latest.")
@click.option("--map", "maps", metavar="OLD=NEW", multiple=True,
              help="Issues in state OLD go to state NEW of that version (names or labels); repeatable. "
                   "Other states keep their name.")
@click.option("--by", required=True, help="Who moves it: an administrator, or the unit's (recorded in each history).")
@click.option("--dry-run", is_flag=True, help="Print what would change, state by state; write nothing.")
@json_option
@at_option
@pass_app
def migrate(app: App, ledger_name: str, to: str, maps: tuple[str, ...], by: str, dry_run: bool, as_json: bool,
            at: str | None) -> None:
    """Move a ledger's issues to another version of its workflow, as a recorded step: each issue's
    state carried over (--map for a state the version lacks), a history row and a new plan for each."""
    mapping = _mapping(maps)
    now = app.now(at)
    with app.transaction() as session:
        result = migrate_ledger(session, app.runtime, ledger_name, to, mapping=mapping, actor=app.actor(session, by),
                                now=now, dry_run=dry_run)
    if as_json:
        print_json(result.as_json())
        return
    target = f"{result.workflow}@{result.to_version}"
    if not result.moves:
        say(f"ledger {result.ledger} is already on {target}: nothing to move")
        return
    for m in result.moves:
        say(f"  @{m.version} {m.label} ({m.state}) → @{result.to_version} {m.to_label} ({m.to_state}): {m.issues} issue(s)")
    verb = _("would move") if dry_run else _("moved")
    say(f"{verb} {result.issues} issue(s) of ledger {result.ledger} to {target}")
    if dry_run:
        say("dry run: nothing was written")


@workflow_group.command("list")
@json_option
@pass_app
def list_(app: App, as_json: bool) -> None:
    """The workflows and their registered versions."""
    with app.transaction() as session:
        rows = [{"name": v.name, "version": v.version, "title": v.title, "registered": v.created_at.isoformat(),
                 "issues": count, "source": v.source_path} for v, count in app.registry.versions(session)]
    if as_json:
        print_json(rows)
        return
    table = Table(_("name"), _("version"), _("title"), _("registered"), _("issues"))
    for r in rows:
        table.add_row(str(r["name"]), str(r["version"]), str(r["title"]), str(r["registered"])[:19], str(r["issues"]))
    out.print(table)


@workflow_group.command("show")
@click.argument("name")
@click.option("--graph", "graph", type=click.Path(path_type=Path), default=None, is_flag=False, flag_value="",
              help="Draw the state diagram to FILE.svg or FILE.png (default: NAME.svg).")
@json_option
@pass_app
def show(app: App, name: str, graph: Path | None, as_json: bool) -> None:
    """States, transitions and guards of a workflow: NAME of a configured one, or a FILE.yaml (not
    registered yet)."""
    loaded = WorkflowRegistry(app.config).file(name) if not Path(name).suffix else load_workflow(Path(name))
    wf = loaded.definition
    if graph is not None and str(graph) in ("", "."):  # --graph without a file name
        graph = Path(f"{wf.name}.svg")
    if graph is not None:
        if graph.suffix.lower() not in (".svg", ".png"):
            raise BadInput(f"{graph}: the diagram must be .svg or .png")
        try:
            draw(wf, graph)
        except OSError as exc:
            raise DubanError(f"cannot draw the diagram: {exc}", hint="install Graphviz (the `dot` program)") from None
        say(f"diagram written to {graph}")
    if as_json:
        print_json({"version": loaded.version, **wf.model_dump(mode="json")})
        return
    say(f"{wf.name}@{loaded.version}  {wf.title}  ({loaded.path})")
    states = Table(_("state"), _("label"), _("label (en)"), title=_("states"))
    for s in wf.states:
        states.add_row(s.name + (" (initial)" if s.name == wf.initial else ""), s.label, s.label_en)
    out.print(states)
    moves = Table(_("trigger"), _("from"), _("to"), _("guards"), _("roles"), title=_("transitions"))
    for t in wf.transitions:
        moves.add_row(t.trigger, ", ".join(t.source), t.dest, ", ".join([*t.conditions, *(f"not {u}" for u in t.unless)]),
                      ", ".join(t.roles) or "anyone")
    out.print(moves)
