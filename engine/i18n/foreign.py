"""Messages of the libraries and the system that duban passes on as they are, marked for the catalogue.

They are written by others (pydantic's validation errors in config.toml and workflow YAML, PyYAML's
syntax errors, the operating system's ``strerror``), so no source line of duban holds them; marking
them here puts them in ``duban.pot`` and ``engine.i18n.translate`` finds them inside the lines that
carry them (``FILE:LINE:COL: states: Input should be a valid list``).
"""

from __future__ import annotations

from . import N_

OPERATING_SYSTEM = (
    N_("No such file or directory"), N_("Permission denied"), N_("Is a directory"), N_("Not a directory"),
    N_("File exists"), N_("No space left on device"), N_("Read-only file system"), N_("Directory not empty"),
    N_("Address already in use"), N_("Connection refused"),
)

PYDANTIC = (
    N_("Extra inputs are not permitted"), N_("Field required"), N_("Input should be a valid list"),
    N_("Input should be a valid string"), N_("Input should be a valid integer"),
    N_("Input should be a valid integer, unable to parse string as an integer"),
    N_("Input should be a valid boolean"), N_("Input should be a valid dictionary"),
    N_("Input should be a valid number"), N_("Input should be a valid date"),
    N_("Input should be a valid boolean, unable to interpret input"),
    N_("Input should be a valid dictionary or instance of {model}"),
    N_("Input should be greater than or equal to {ge}"), N_("Input should be greater than {gt}"),
    N_("Input should be less than or equal to {le}"), N_("String should have at least {min_length} character"),
    N_("Value error, {message}"),
)

YAML = (
    N_("expected the node content, but found '<stream end>'"),
    N_("mapping values are not allowed here"),
    N_("found character '\\t' that cannot start any token"),
    N_("could not find expected ':'"),
)

# click translates these through a variable (``_(extra["required"])``), so its own extraction misses them
CLICK = (N_("required"),)

# the level names of the CLI's log lines (``警告：…``)
LOG_LEVELS = (N_("WARNING"), N_("ERROR"), N_("CRITICAL"), N_("INFO"))
