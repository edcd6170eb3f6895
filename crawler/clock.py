"""The one clock: UTC now, and times as text (`iso`, `parse_iso`). Decisions take the time
as an argument; only the I/O shell asks the clock (and tests hand their own instead)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with ``Z``, to the second: how times are stored and shown."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_or_none(dt: datetime | None) -> str | None:
    """`iso`, and None for no time."""
    return iso(dt) if dt is not None else None


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
