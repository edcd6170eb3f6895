"""The one clock: UTC now. Decisions take the time as an argument; only the I/O shell asks
this (and tests hand their own clock instead)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
