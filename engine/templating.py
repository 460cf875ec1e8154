"""Jinja2 for the board and the report: shipped templates, an admin's folder in front, a sandbox.

Templates are admin-editable, so they run in Jinja's ``SandboxedEnvironment`` (no walking from a
variable to ``__class__``/``__globals__`` and on to Python internals); ``StrictUndefined`` turns a
misspelt variable into an error instead of a silently empty paragraph in an official report.
HTML templates (``*.html.j2``) autoescape, because ledger text is typed by people; Markdown and
plain text do not, since their readers see characters, not markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader, StrictUndefined, TemplateError, select_autoescape
from jinja2.sandbox import SandboxedEnvironment

from .config import Config
from .errors import BadInput, ConfigError


def template_env(config: Config, shipped_dir: Path | Sequence[Path], override: str | None,
                 filters: dict[str, Callable[..., Any]] | None = None) -> SandboxedEnvironment:
    """The shipped templates of ``shipped_dir`` (several folders: the first that has a name wins),
    behind the admin's folder ``override`` (relative to config.toml).

    An admin template replaces the shipped one of the same name and may extend it as
    ``default/NAME`` to change one block only.
    """
    folders = [shipped_dir] if isinstance(shipped_dir, Path) else list(shipped_dir)
    shipped = FileSystemLoader([str(folder) for folder in folders])
    loaders: list[Any] = []
    if override:
        folder = (config.base_dir / override).resolve()
        if not folder.is_dir():
            raise ConfigError(f"{config.source or 'config'}: templates folder {folder} not found")
        loaders.append(FileSystemLoader(str(folder)))
    loaders += [shipped, PrefixLoader({"default": shipped})]
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                               autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
                               trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(filters or {})
    return env


def render_template(env: SandboxedEnvironment, name: str, **context: Any) -> str:
    """Render, turning a broken admin template into a readable error rather than a traceback."""
    try:
        return env.get_template(name).render(**context)
    except TemplateError as exc:
        where = f"{getattr(exc, 'filename', None) or name}:{getattr(exc, 'lineno', None) or '?'}"
        raise BadInput(f"template {where}: {exc}", hint="check the templates folder in config.toml") from None
