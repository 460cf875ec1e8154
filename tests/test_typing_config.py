"""mypy checks the packages the issue names with everything `mypy --strict` turns on.

`strict = true` cannot be written in a per-module section: mypy then turns strict mode on for the
whole tree. So the overrides list strict's flags one by one, and this test keeps that list equal to
what the installed mypy calls strict (a new mypy that adds a strict flag fails here, not silently).
"""

from __future__ import annotations

import tomllib

import pytest
from mypy.main import define_options

from .conftest import ROOT

STRICT_PACKAGES = ("engine.issues", "engine.accounts")


def _mypy_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]


def _settings_for(package: str) -> dict:
    """The global settings with every override that names the package applied on top."""
    config = _mypy_config()
    settings = {k: v for k, v in config.items() if k != "overrides"}
    for override in config.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        if package in modules or f"{package}.*" in modules:
            settings.update({k: v for k, v in override.items() if k != "module"})
    return settings


def test_no_override_says_strict():
    assert all("strict" not in override for override in _mypy_config().get("overrides", []))


@pytest.mark.parametrize("package", STRICT_PACKAGES)
def test_strict_flags_cover_the_package(package):
    _, _, strict_flags = define_options()
    settings = _settings_for(package)
    missing = {flag: value for flag, value in strict_flags if settings.get(flag) != value}
    assert missing == {}
