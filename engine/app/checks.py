"""Checks that render what a configuration would render, now rather than at the next 09:00: used
by `duban workflow validate` and by every (re)load of the daemon, which keeps its running version
when one fails."""

from __future__ import annotations

from notifications.render import Renderer

from ..errors import ConfigError
from ..workflow.loader import LoadedWorkflow
from ..workflow.yamlsource import load_located


def template_problems(renderer: Renderer, loaded: LoadedWorkflow) -> list[str]:
    """Render every item template the workflow names with sample data of every kind."""
    doc = load_located(loaded.source, loaded.path)
    wf = loaded.definition
    found = []
    if wf.reminders.item_template:
        found += renderer.check_item_template(wf.reminders.item_template, doc.where(("reminders", "item_template")))
    for i, ms in enumerate(wf.milestones):
        if ms.reminders is not None and ms.reminders.item_template:
            found += renderer.check_item_template(ms.reminders.item_template,
                                                  doc.where(("milestones", i, "reminders", "item_template")))
    rule = wf.extension_requests
    if rule is not None and rule.reminders.item_template:
        found += renderer.check_item_template(rule.reminders.item_template,
                                              doc.where(("extension_requests", "reminders", "item_template")))
    return found


def check_rendering(renderer: Renderer, workflows: list[LoadedWorkflow]) -> None:
    """Raise ConfigError listing every template, shipped, overriding or per rule, that does not render."""
    problems = renderer.check()
    for loaded in workflows:
        problems += template_problems(renderer, loaded)
    if problems:
        raise ConfigError("the notification templates do not render", details=problems)
