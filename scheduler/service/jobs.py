"""The work both `crawl` (cron) and `run` (the service) do: pick due sources, claim them, crawl
them in one pass, record each source's run under its claim, deliver what is due. Due times and
claims live in the archive, so several nodes on one archive share the sources: each due source
is crawled by one node per due time (`claim_and_crawl`), a host's sources by one node at a time.
Storage calls made here go through `crawler.archive.aio.call` (off the loop for PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from crawler.archive import Storage, StorageError
from crawler.archive.aio import call
from crawler.clock import utcnow
from crawler.fetch.context import PassContext
from crawler.fetch.passes import crawl_pass
from crawler.model import Source
from crawler.query.matcher import RuleIndex
from crawler.records import Claim, RunRecord, SourceState
from scheduler.config import Config
from scheduler.service.holds import holding
from scheduler.service.schedule import is_due, next_due

log = logging.getLogger(__name__)

# After the archive failed to store items (disk full, locked): a source with items not stored
# is due again this soon, and the service pauses its jobs this long.
ARCHIVE_RETRY = timedelta(seconds=30)


def due_sources(
    config: Config, states: Mapping[str, SourceState], now: datetime, ahead: float = 0.0
) -> list[Source]:
    """The sources due at `now` by their `states` (the candidates to claim). With `ahead`
    (seconds), also those falling due within that time, but never earlier than a tenth of
    their own interval (their schedule's jitter)."""
    due = []
    for source in config.sources:
        state = states.get(source.name) or SourceState(source.name)
        every = source.every if source.every is not None else config.crawl.every
        early = timedelta(seconds=min(ahead, 0.1 * every))
        if is_due(state.next_due, now + early) or state.url != source.url:
            due.append(source)  # (a changed URL is a new source)
    return due


def early_by_source(
    config: Config, sources: Sequence[Source], ahead: float
) -> dict[str, timedelta]:
    """How long before its due time each source may be claimed: `ahead` seconds, but never
    more than a tenth of its own interval (its schedule's jitter)."""
    early = {}
    for source in sources:
        every = source.every if source.every is not None else config.crawl.every
        early[source.name] = timedelta(seconds=min(ahead, 0.1 * every))
    return early


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


async def claim_and_crawl(
    config: Config,
    archive: Storage,
    candidates: Sequence[Source],
    clock: Callable[[], datetime] = utcnow,
    stop: asyncio.Event | None = None,
    rule_index: RuleIndex | None = None,
    ahead: float = 0.0,
) -> dict[str, RunRecord]:
    """Claim those of `candidates` still due (by the archive's time) that no other node holds,
    and crawl them in one pass; a run is recorded only under its claim. The runs crawled
    (none: nothing left to claim)."""
    states = await call(archive, archive.source_states)
    changed = {s.name for s in candidates if getattr(states.get(s.name), "url", None) != s.url}
    for source in candidates:  # a new or changed URL is registered (and due now) first
        if source.name in changed:
            await call(archive, archive.register_source, source.name, source.kind, source.url)
    claims = await call(
        archive,
        archive.claim_due,
        config.node_name,
        [s.name for s in candidates],
        timedelta(seconds=config.lease),
        len(candidates),
        early_by_source(config, candidates, ahead),
    )
    if not claims:
        return {}
    held = {c.source: c for c in claims}
    sources = [s for s in candidates if s.name in held]
    return await crawl_sources(
        config, archive, sources, clock, stop=stop, rule_index=rule_index, claims=held
    )


async def crawl_sources(
    config: Config,
    archive: Storage,
    sources: Sequence[Source],
    clock: Callable[[], datetime] = utcnow,
    scrapy_overrides: dict[str, Any] | None = None,
    stop: asyncio.Event | None = None,
    rule_index: RuleIndex | None = None,
    claims: dict[str, Claim] | None = None,
) -> dict[str, RunRecord]:
    """One pass over `sources`; every source's run is recorded, whatever happened. With
    `claims` (one per source), their leases are renewed while the pass runs and each run is
    recorded only under its claim's token (a claim lost meanwhile records nothing)."""
    for source in sources:
        await call(archive, archive.register_source, source.name, source.kind, source.url)
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
    renewer = asyncio.ensure_future(_renew(config, archive, claims)) if claims else None
    try:
        # the alerts the pass queues wait for its end: copies of one story give one alert
        async with holding(archive, clock) as ctx.hold:
            try:
                results = await crawl_pass(ctx, stop)
            except Exception as exc:  # the crawl machinery failed: every source gets the error
                log.exception("the crawl pass failed")
                for source in sources:
                    ctx.result(source.name).fail(
                        type(exc).__name__, f"the crawl pass failed: {exc}"
                    )
                results = ctx.results
    finally:
        if renewer is not None:
            renewer.cancel()
    for source in sources:
        result = results[source.name]
        result.node = config.node_name
        result.finished = result.finished or clock()
        state = await call(archive, archive.source_state, source.name) or SourceState(source.name)
        failures = state.consecutive_failures + 1 if result.status == "error" else 0
        due = next_due(source, config.crawl.every, result.started, failures, random.random())
        if result.unstored:  # items the archive could not store: read again soon
            due = min(due, result.finished + ARCHIVE_RETRY)
        # a server that asked us to wait (429/503 Retry-After) is not asked again before then
        if result.retry_after:
            result.not_before = result.finished + timedelta(seconds=result.retry_after)
        not_before = result.not_before
        due = max(due, not_before) if not_before else due
        claim = claims.get(source.name) if claims else None
        if claim is None:
            await call(archive, archive.record_run, result, due)
        elif not await call(archive, archive.finish_claim, claim, result, due):
            log.warning(
                "%s: this node's lease ran out during the pass and another node may have taken "
                "the source over; this run is not recorded (a lease must outlast the slowest "
                "pass: [service] lease)",
                source.name,
            )
            continue
        if result.validators is not None:
            await call(archive, archive.save_validators, source.name, *result.validators)
    await call(archive, archive.checkpoint)
    if ctx.archive_error is not None:
        raise ctx.archive_error  # the caller says what happened (cli: exit 1; run: a pause)
    return results


async def _renew(config: Config, archive: Storage, claims: dict[str, Claim]) -> None:
    """Renew the pass's leases every third of a lease while it runs."""
    lease = timedelta(seconds=config.lease)
    held = list(claims.values())
    while held:
        await asyncio.sleep(config.lease / 3)
        try:
            renewed = await call(archive, archive.renew_claims, held, lease)
        except StorageError as exc:
            log.warning("could not renew this node's leases: %s", exc)
            continue
        lost = {c.source for c in held} - {c.source for c in renewed}
        for name in sorted(lost):
            log.warning("%s: this node's lease was lost; its run will not be recorded", name)
        held = [c for c in held if c.source not in lost]
