"""What Alembic's autogenerate compares between the models and a database.

Revision 0017 makes in SQL what no model declares: SQLite's FTS5 table over ``issue_search`` (and
the shadow tables FTS5 keeps beside it); and the models declare an index for one database only
(``Index.ddl_if``: PostgreSQL's GIN over the search terms), which Alembic does not know to skip on
the other. Both the migrations' environment and the test that the migrations build exactly the
models compare through this filter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

FTS_PREFIX = "issue_search_fts"


def include_object_for(dialect: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table" and reflected and name and name.startswith(FTS_PREFIX):
            return False
        ddl_if = getattr(obj, "_ddl_if", None) if type_ == "index" else None
        return not (ddl_if is not None and ddl_if.dialect is not None and ddl_if.dialect != dialect)

    return include_object
