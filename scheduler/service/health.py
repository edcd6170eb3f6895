"""Source health (pure): is a source ok, failing, or silent?

- failing: `[health] failures` consecutive failed runs;
- silent: nothing new for far longer than the source's own cadence (learned from the gaps
  between its recent new articles), and never before a day has passed;
- ok otherwise. A change of state is a notice: failing, silent, or recovered (back to ok).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SILENT_AFTER_GAPS = 8  # silent after this many times the usual gap between new articles
MIN_SILENCE = timedelta(days=1)
MIN_HISTORY = 3  # articles needed before a cadence is learned


@dataclass(frozen=True)
class Health:
    state: str  # ok | failing | silent
    detail: str


def cadence(first_seen: Sequence[datetime]) -> timedelta | None:
    """The usual gap between a source's new articles (median), or None without history."""
    times = sorted(first_seen)
    if len(times) < MIN_HISTORY:
        return None
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return timedelta(seconds=statistics.median(g.total_seconds() for g in gaps))


def assess(
    consecutive_failures: int,
    failures_threshold: int,
    last_error: str | None,
    recent_first_seen: Sequence[datetime],
    now: datetime,
) -> Health:
    """The state of one source now."""
    if consecutive_failures >= failures_threshold:
        return Health(
            "failing", f"{consecutive_failures} failed runs in a row; last error: {last_error}"
        )
    usual = cadence(recent_first_seen)
    if usual is not None:
        quiet = now - max(recent_first_seen)
        limit = max(MIN_SILENCE, usual * SILENT_AFTER_GAPS)
        if quiet > limit:
            hours = quiet.total_seconds() / 3600
            usual_h = usual.total_seconds() / 3600
            return Health(
                "silent",
                f"nothing new for {hours:.0f} h; it usually brings something every {usual_h:.1f} h",
            )
    return Health("ok", "")


def notice(previous: str | None, current: Health) -> str | None:
    """The notice a change of state calls for: failing, silent, recovered, or None."""
    before = previous or "ok"
    if current.state == before:
        return None
    if current.state == "ok":
        return "recovered"
    return current.state
