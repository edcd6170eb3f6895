"""Reading what the storage interface returns, whatever its shape: the typed records of
`crawler.records` (attributes, times as datetimes) or plain mappings of columns (times as ISO
text, as an engine's raw rows or a test's values are). Every page and feed reads a field
through `get` and a time through `when`, so a change of shape touches this module only."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from crawler.clock import parse_iso


def get(row: Any, name: str, default: Any = None) -> Any:
    """The field `name` of a row (a mapping or a record), or `default`."""
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def when(row: Any, name: str) -> datetime | None:
    """The field `name` as an aware UTC datetime (None when empty or unreadable)."""
    value = get(row, name)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return parse_iso(str(value))
    except ValueError:
        return None


def iso_z(moment: datetime | None) -> str | None:
    """UTC ISO 8601 with `Z`, to the second."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def shown(moment: datetime | None) -> str:
    """A time as the pages show it: `2025-06-09 10:00 UTC`."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
