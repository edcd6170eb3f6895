"""The work both `crawl` (cron) and `run` (the service) do: pick due sources, crawl them in one
pass, record each source's run, deliver what is due. Due times live in the archive."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from crawler.archive import Storage
from crawler.clock import utcnow
from crawler.fetch.context import PassContext
from crawler.fetch.passes import crawl_pass
from crawler.model import Source
from crawler.query.matcher import RuleIndex
from crawler.records import RunRecord, SourceState
from scheduler.config import Config
from scheduler.service.holds import holding
from scheduler.service.schedule import is_due, next_due

log = logging.getLogger(__name__)

# After the archive failed to store items (disk full, locked): a source with items not stored
# is due again this soon, and the service pauses its jobs this long.
ARCHIVE_RETRY = timedelta(seconds=30)


def due_sources(
    config: Config, archive: Storage, now: datetime, ahead: float = 0.0
) -> list[Source]:
    """The sources due at `now`. With `ahead` (seconds), also those falling due within that
    time, but never earlier than a tenth of their own interval (their schedule's jitter)."""
    states = archive.source_states()
    due = []
    for source in config.sources:
        state = states.get(source.name) or SourceState(source.name)
        every = source.every if source.every is not None else config.crawl.every
        early = timedelta(seconds=min(ahead, 0.1 * every))
        if is_due(state.next_due, now + early) or state.url != source.url:
            due.append(source)  # (a changed URL is a new source)
    return due


def next_wakeup(config: Config, archive: Storage) -> datetime | None:
    """The earliest recorded due time (None: something has never run, so now)."""
    states = archive.source_states()
    times = []
    for source in config.sources:
        state = states.get(source.name)
        if state is None or state.next_due is None:
            return None
        times.append(state.next_due)
    return min(times) if times else None


async def crawl_sources(
    config: Config,
    archive: Storage,
    sources: Sequence[Source],
    clock: Callable[[], datetime] = utcnow,
    scrapy_overrides: dict[str, Any] | None = None,
    stop: asyncio.Event | None = None,
    rule_index: RuleIndex | None = None,
) -> dict[str, RunRecord]:
    """One pass over `sources`; every source's run is recorded, whatever happened."""
    for source in sources:
        archive.register_source(source.name, source.kind, source.url)
    ctx = PassContext(
        archive=archive,
        sources=list(sources),
        rules=config.rules,
        topic=config.topic,
        options=config.crawl,
        clock=clock,
        scrapy_overrides=dict(scrapy_overrides or {}),
        rule_index=rule_index,
    )
    # the alerts the pass queues wait for its end: copies of one story give one alert
    async with holding(archive, clock) as ctx.hold:
        try:
            results = await crawl_pass(ctx, stop)
        except Exception as exc:  # the crawl machinery failed: every source gets the error
            log.exception("the crawl pass failed")
            for source in sources:
                ctx.result(source.name).fail(type(exc).__name__, f"the crawl pass failed: {exc}")
            results = ctx.results
    for source in sources:
        result = results[source.name]
        result.finished = result.finished or clock()
        if result.validators is not None:
            archive.save_validators(source.name, *result.validators)
        state = archive.source_state(source.name) or SourceState(source.name)
        failures = state.consecutive_failures + 1 if result.status == "error" else 0
        due = next_due(source, config.crawl.every, result.started, failures, random.random())
        if result.unstored:  # items the archive could not store: read again soon
            due = min(due, result.finished + ARCHIVE_RETRY)
        # a server that asked us to wait (429/503 Retry-After) is not asked again before then
        if result.retry_after:
            result.not_before = result.finished + timedelta(seconds=result.retry_after)
        not_before = result.not_before
        archive.record_run(result, max(due, not_before) if not_before else due)
    archive.checkpoint()
    if ctx.archive_error is not None:
        raise ctx.archive_error  # the caller says what happened (cli: exit 1; run: a pause)
    return results
