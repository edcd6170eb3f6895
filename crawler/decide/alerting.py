"""When an alert is sent (pure): at once, or held for a digest.

A rule with `digest = "hourly"` or `"daily"` holds every alert until the end of its period
(clock hours and days, UTC). A rule with `max_per_hour = N` sends the first N alerts of a clock
hour one by one and holds the rest for one digest at the end of that hour: nothing is dropped.

Alerts queued during a crawl pass are held until the pass ends (`collapse`): copies of one
story that arrive in any order in one pass (a trimmed and an edited copy, each starting a story
of its own until the original joins them) then give one alert per (rule, story, channel), and
the others are kept as merged into it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

RETRY_WINDOW = timedelta(hours=24)  # a delivery not made within this is marked failed


def period_end(created: datetime, digest: str) -> datetime:
    """The end of the digest period `created` falls in."""
    if digest == "daily":
        start = created.replace(hour=0, minute=0, second=0, microsecond=0)
        return start + timedelta(days=1)
    start = created.replace(minute=0, second=0, microsecond=0)
    return start + timedelta(hours=1)


def period_start(end: datetime, digest: str) -> datetime:
    """The start of the digest period that ends at `end` (a day for daily, else an hour)."""
    return end - (timedelta(days=1) if digest == "daily" else timedelta(hours=1))


def hour_start(created: datetime) -> datetime:
    return created.replace(minute=0, second=0, microsecond=0)


def hold_until(
    created: datetime, digest: str, max_per_hour: int | None, sent_this_hour: int
) -> datetime | None:
    """When the alert's digest is due, or None to send it on its own now.

    `sent_this_hour`: alerts of the same rule and channel already queued on their own since
    the start of `created`'s clock hour.
    """
    if digest in ("hourly", "daily"):
        return period_end(created, digest)
    if max_per_hour is not None and sent_this_hour >= max_per_hour:
        return period_end(created, "hourly")
    return None


@dataclass(frozen=True)
class QueuedAlert:
    """An alert row as the collapse sees it: its story is the one its article is in NOW."""

    id: int  # outbox id (queue order)
    rule: str
    channel: str
    story: int | None  # None: its article is gone; such a row stands alone


def collapse(held: Iterable[QueuedAlert], earlier: Iterable[QueuedAlert]) -> dict[int, int]:
    """Which held alerts merge into another: {held id: the id of the alert that stands for it}.

    `held`: the alerts of a pass that ended; `earlier`: the live (not merged) alerts already
    released for the same stories. Per (rule, channel, story) one alert stands: an earlier one
    if there is one (the story alerted already), else the first held one queued.
    """
    standing: dict[tuple[str, str, int], int] = {}
    for alert in sorted(earlier, key=lambda a: a.id):
        if alert.story is not None:
            standing.setdefault((alert.rule, alert.channel, alert.story), alert.id)
    merged: dict[int, int] = {}
    for alert in sorted(held, key=lambda a: a.id):
        if alert.story is None:
            continue
        key = (alert.rule, alert.channel, alert.story)
        if key in standing:
            merged[alert.id] = standing[key]
        else:
            standing[key] = alert.id
    return merged
