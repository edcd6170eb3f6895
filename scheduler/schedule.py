"""When things are due (pure): source schedules and delivery backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from crawler.model import Source

# Delivery retries: after the 1st failed attempt wait 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h,
# and 10 h from then on, until the 24-hour window closes (the schedule of common webhook
# platforms: quick recovery from a blip, patience with an outage).
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)


def next_due(source: Source, default_every: float, after: datetime) -> datetime:
    """The next time `source` should be crawled, counting from `after` (a run's start)."""
    if source.cron:
        trigger = CronTrigger.from_crontab(source.cron, timezone=UTC)
        fire = trigger.get_next_fire_time(None, after)
        if fire is not None:
            return fire.astimezone(UTC)
    every = source.every if source.every is not None else default_every
    return after + timedelta(seconds=every)


def is_due(next_due_at: str | None, now: datetime) -> bool:
    """A source with no recorded due time (never crawled) is due."""
    if not next_due_at:
        return True
    return datetime.fromisoformat(next_due_at.replace("Z", "+00:00")) <= now


def retry_at(
    attempts: int, now: datetime, expires: datetime, retry_after: float | None = None
) -> datetime | None:
    """When to try a delivery again after its `attempts`-th failure; None: give up (failed).

    A receiver's Retry-After is honoured (we never come back sooner). The last try is made
    when the window closes; past it, the delivery is failed.
    """
    if now >= expires:
        return None
    delay = float(RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1])
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(now + timedelta(seconds=delay), expires)
