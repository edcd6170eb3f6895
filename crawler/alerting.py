"""When an alert is sent (pure): at once, or held for a digest.

A rule with `digest = "hourly"` or `"daily"` holds every alert until the end of its period
(clock hours and days, UTC). A rule with `max_per_hour = N` sends the first N alerts of a clock
hour one by one and holds the rest for one digest at the end of that hour: nothing is dropped.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def period_end(created: datetime, digest: str) -> datetime:
    """The end of the digest period `created` falls in."""
    if digest == "daily":
        start = created.replace(hour=0, minute=0, second=0, microsecond=0)
        return start + timedelta(days=1)
    start = created.replace(minute=0, second=0, microsecond=0)
    return start + timedelta(hours=1)


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
