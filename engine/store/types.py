"""Column types shared by the models."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum
from sqlalchemy.types import TypeDecorator

UTC = dt.UTC


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An instant, stored as naive UTC and returned aware.

    SQLite has no time zones and compares datetimes as text, so every value must be stored in one
    zone and one format for the ``next_due_at`` index to order correctly; PostgreSQL gets the same
    shape so queries read alike on both.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQLite text, e.g. from a text() query
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)

    def bind_processor(self, dialect) -> Callable[[Any], Any]:
        # A bulk import binds the same `now` three times a row, a million rows; convert each
        # distinct instant once (the last one is remembered, compared by identity).
        convert = super().bind_processor(dialect)
        memo: list[tuple[Any, Any]] = [(object(), None)]  # one slot, replaced whole: thread-safe

        def process(value: Any) -> Any:
            seen, out = memo[0]
            if value is seen:
                return out
            out = convert(value) if convert else value
            memo[0] = (value, out)
            return out

        return process


class JSONDoc(TypeDecorator[Any]):
    """JSON that skips serialising the empty document, the value of most rows' extra columns."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect) -> Callable[[Any], Any]:
        convert = self.impl_instance.bind_processor(dialect)
        if convert is None:
            return None  # type: ignore[return-value]
        empty_dict, empty_list = convert({}), convert([])

        def process(value: Any) -> Any:
            if value == {} and type(value) is dict:
                return empty_dict
            if value == [] and type(value) is list:
                return empty_list
            return convert(value)

        return process

    def result_processor(self, dialect, coltype) -> Callable[[Any], Any]:
        convert = self.impl_instance.result_processor(dialect, coltype)
        if convert is None:
            return None  # type: ignore[return-value]

        def process(value: Any) -> Any:
            # Most rows hold the empty document: a fresh dict without the JSON decoder (listing
            # 20k issues decodes two a row).
            if value == "{}":
                return {}
            if value == "[]":
                return []
            return convert(value)

        return process


def enum_type(enum: type[StrEnum], name: str) -> Enum:
    """A text column holding one of ``enum``'s values, with a CHECK constraint named ``name``."""
    return Enum(enum, name=name, native_enum=False, create_constraint=True, length=20, validate_strings=True,
                values_callable=lambda e: [m.value for m in e])
