"""``duban workflow``: validate, list, show (and draw) workflows."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from notifications.render import Renderer

from ...config import load_config
from ...errors import BadInput, ConfigError, DubanError, WorkflowError
from ...workflow.diagram import draw
from ...workflow.loader import load_workflow
from ...workflow.registry import WorkflowRegistry
from ...workflow.schema import BUILTIN_ACTORS, WorkflowDef
from ...workflow.yamlsource import load_located
from ..checks import template_problems
from .context import App, at_option, json_option, pass_app
from .output import error_lines, out, print_json, say


@click.group("workflow")
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
    """Register new versions of the workflow files (refused if live issues would be stranded)."""
    with app.transaction() as session:
        for version, created in app.registry.sync_all(session, app.now(at)):
            say(f"workflow {version.name}@{version.version}: {'registered' if created else 'unchanged'}")


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
    table = Table("name", "version", "title", "registered", "issues")
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
    states = Table("state", "label", "label (en)", title="states")
    for s in wf.states:
        states.add_row(s.name + (" (initial)" if s.name == wf.initial else ""), s.label, s.label_en)
    out.print(states)
    moves = Table("trigger", "from", "to", "guards", "roles", title="transitions")
    for t in wf.transitions:
        moves.add_row(t.trigger, ", ".join(t.source), t.dest, ", ".join([*t.conditions, *(f"not {u}" for u in t.unless)]),
                      ", ".join(t.roles) or "anyone")
    out.print(moves)
