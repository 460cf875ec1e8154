"""What duban ships besides code: the workflows, duties and routing (YAML), the example ledgers and
the commented ``config.toml``.

They live in the repository's top-level ``workflows/``, ``examples/`` and ``config.toml``;
``engine/_shipped/`` links to them in a checkout and holds their copies in a wheel (package
data), so an installed duban finds them without a checkout. A configuration that leaves out
``[workflows] paths``, ``[duties] paths`` or ``[notifications] routing_paths`` uses these.
"""

from __future__ import annotations

import shutil
from pathlib import Path

SHIPPED = Path(__file__).resolve().parent / "_shipped"


def workflows_dir() -> Path:
    return SHIPPED / "workflows"


def duties_dir() -> Path:
    return SHIPPED / "workflows" / "duties"


def routing_dir() -> Path:
    return SHIPPED / "workflows" / "routing"


def config_file() -> Path:
    return SHIPPED / "config.toml"


def examples_dir() -> Path:
    return SHIPPED / "examples"


def write_project(folder: Path, *, database_url: str) -> list[Path]:
    """Write a commented ``config.toml`` and editable copies of the shipped YAML and examples into
    ``folder``; returns what was written. Refuses (FileExistsError) to overwrite a config.toml."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.toml"
    if config.exists():
        raise FileExistsError(config)
    text = config_file().read_text(encoding="utf-8")
    text = text.replace('url = "sqlite:///var/duban.db"   # (not the default: the default is ./duban.db)',
                        f'url = "{database_url}"')
    written = []
    for source, target in ((workflows_dir(), folder / "workflows"), (examples_dir(), folder / "examples")):
        if not target.exists():
            shutil.copytree(source, target)
            written.append(target)
    config.write_text(text, encoding="utf-8")
    return [config, *written]
