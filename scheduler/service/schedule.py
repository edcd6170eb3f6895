"""When things are due (pure): source schedules and delivery backoff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from crawler.model import Source

# Delivery retries: after the 1st failed attempt wait 5 s, then 5 min, 30 min, 2 h, 5 h, 10 h,
# and 10 h from then on, until the 24-hour window closes (the schedule of common webhook
# platforms: quick recovery from a blip, patience with an outage).
RETRY_DELAYS = (5, 300, 1800, 7200, 18000, 36000)


def period_slot(now: datetime, every: timedelta) -> str:
    """The period of a once-per-period job that `now` falls in (periods of `every`, counted
    from the epoch, in UTC): its start as ISO text, the key nodes claim
    (`OutboxStore.claim_slot`) so the job runs once per period across nodes."""
    step = max(1, int(every.total_seconds()))
    start = int(now.timestamp()) // step * step
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekday(text: str, end: bool) -> int:
    """One crontab day of the week as 0-7 (0 and 7 are Sunday); a name, too."""
    word = text.strip().lower()
    if word.isalpha():
        if word[:3] not in _WEEKDAYS:
            raise ValueError(f"not a day of the week: {text!r}")
        day = _WEEKDAYS.index(word[:3])
        return 7 if end and day == 0 else day
    day = int(word)
    if not 0 <= day <= 7:
        raise ValueError(f"day of the week out of range: {text!r}")
    return day


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 and 7 Sunday, 1 Monday) in APScheduler 3's terms.

    APScheduler 3 counts 0 as Monday, also in ``from_crontab`` (its issue 286), so a crontab
    "1-5" (Monday to Friday) would run Tuesday to Saturday. Names mean the same in both.
    """
    if field.strip() in ("*", "?"):
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        span, slash, step_text = part.partition("/")
        step = int(step_text) if slash else 1
        if step < 1:
            raise ValueError(f"bad step in {field!r}")
        if span.strip() == "*":
            first, last = 0, 6
        else:
            low, dash, high = span.partition("-")
            first = _weekday(low, end=False)
            last = _weekday(high, end=True) if dash else (6 if slash else first)
            if last < first:
                raise ValueError(f"backwards range in {field!r}")
        days.update(day % 7 for day in range(first, last + 1, step))
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def cron_trigger(expression: str) -> CronTrigger:
    """A trigger for a standard five-field crontab expression, weekdays as crontab counts them."""
    fields = expression.split()
    if len(fields) == 5:
        try:
            weekdays = crontab_weekdays(fields[4])
        except ValueError:
            pass  # not crontab syntax we know: leave it to APScheduler as written
        else:
            minute, hour, day, month, _ = fields
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=weekdays, timezone=UTC
            )
    return CronTrigger.from_crontab(expression, timezone=UTC)


# A failing source waits longer and longer: its interval doubles with each consecutive failure,
# up to once a day (or its own interval, if that is longer).
MAX_BACKOFF = 86400.0
# Schedules are spread a little so sources that share an interval do not all fire together.
JITTER_SHARE, MAX_JITTER = 0.1, 300.0


def next_due(
    source: Source,
    default_every: float,
    after: datetime,
    failures: int = 0,
    jitter: float = 0.0,
) -> datetime:
    """The next time `source` should be crawled, counting from `after` (a run's start).

    `failures`: consecutive failed runs so far (0 after a success) — each one doubles the
    wait, never more often than the schedule, never less than once a day. `jitter` in [0, 1)
    (drawn by the caller) adds up to 10% of the interval (5 minutes at most).
    """
    failures = max(0, min(failures, 32))
    jitter = min(max(jitter, 0.0), 0.999)
    if source.cron:
        trigger = cron_trigger(source.cron)
        # a failing cron source skips fire times for a growing pause (15 min, 30 min, ...)
        pause = min(900.0 * (2**failures - 1), MAX_BACKOFF) if failures else 0.0
        start = after + timedelta(seconds=pause)
        # strictly after: a run that starts on its fire time is not due again at once
        fire = trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
        if fire is not None:
            return fire.astimezone(UTC) + timedelta(seconds=min(60.0, 60.0 * jitter))
    every = source.every if source.every is not None else default_every
    wait = min(every * 2**failures, max(every, MAX_BACKOFF)) if failures else every
    return after + timedelta(seconds=wait + min(MAX_JITTER, every * JITTER_SHARE) * jitter)


def is_due(next_due_at: datetime | None, now: datetime) -> bool:
    """A source with no recorded due time (never crawled) is due."""
    return next_due_at is None or next_due_at <= now


def retry_at(
    attempts: int,
    now: datetime,
    expires: datetime,
    retry_after: float | None = None,
    jitter: float = 0.0,
) -> datetime | None:
    """When to try a delivery again after its `attempts`-th failure; None: give up (failed).

    `jitter` in [0, 1) (the caller draws it) stretches the delay by up to 20%, so deliveries
    that failed together do not all come back at the same second. A receiver's Retry-After is
    honoured (we never come back sooner). The last try is made when the window closes; past
    it, the delivery is failed.
    """
    if now >= expires:
        return None
    delay = float(RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1])
    delay *= 1.0 + 0.2 * min(max(jitter, 0.0), 0.999)
    if retry_after is not None:
        delay = max(delay, retry_after)
    # capped before adding: a huge Retry-After must not overflow the date
    delay = min(delay, (expires - now).total_seconds())
    return now + timedelta(seconds=delay)
