"""The service (`newswatch run`): one process, one asyncio loop.

Scrapy's AsyncCrawlerRunner and APScheduler 3's AsyncIOScheduler share the loop of Twisted's
asyncio reactor. Jobs (all `async def`, so they run on the loop, not in a thread pool):

- crawl (every second; cheap when nothing is due): every source whose due time, kept in the
  archive, has come is crawled, all together in ONE pass (one per-host limit); a source is
  never in two passes at once (`max_instances=1`);
- deliver (every 5 s): digests whose period closed, then every due delivery;
- health (every minute): each source's state (ok, failing, silent); a change is a notice to
  `[health] notify`;
- prune (hourly, when `[archive] keep_days` is set).

Health and prune run once per period across the processes (nodes) on one archive: the first to
claim the period's slot in the archive (`OutboxStore.claim_slot`) runs it, the others skip it.

Because due times live in the archive, a restart neither re-crawls every source nor skips what
fell due while it was down. SIGTERM or SIGINT: stop scheduling, close the running crawl
cleanly, flush due deliveries, exit 0 (within 30 s).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from crawler.archive import Storage, StorageError
from crawler.archive.aio import call, networked
from crawler.clock import utcnow
from crawler.fetch.passes import load_crawl_machinery
from crawler.query.matcher import RuleIndex
from scheduler.cli.trouble import archive_trouble
from scheduler.config import Config
from scheduler.delivery.outbox import deliver_due, deliver_due_async
from scheduler.service.health import assess, notice
from scheduler.service.holds import owner_here
from scheduler.service.jobs import ARCHIVE_RETRY, claim_and_crawl, due_sources
from scheduler.service.metrics import Metrics
from scheduler.service.schedule import period_slot
from scheduler.web.app import WebServer
from scheduler.web.site import Site

log = logging.getLogger("newswatch")

STOP_BUDGET = 25.0  # seconds for the running crawl to close and deliveries to flush
# After the archive failed to write (disk full, locked past the busy timeout), every job waits
# this long before trying again, so the sources are not fetched once a second meanwhile.
ARCHIVE_PAUSE = ARCHIVE_RETRY.total_seconds()
HEALTH_EVERY = timedelta(minutes=1)  # the health job's period, claimed once across nodes
PRUNE_EVERY = timedelta(hours=1)  # the prune job's
PROBE_SECONDS = 2.0  # how often the archive is asked whether it answers (/healthz)
BATCH_AHEAD = 5.0  # seconds, and within each source's jitter (a tenth of its interval)


class Service:
    def __init__(
        self, config: Config, archive: Storage, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.config, self.archive, self.clock = config, archive, clock
        self.metrics = Metrics(config.node_name)
        # compiled once, or taken from the rules cache of the last run
        cache = config.rules_cache
        self.rule_index = (
            cache.index(config.rules)
            if cache is not None
            else RuleIndex([r for r in config.rules if r.notify])
        )
        if cache is not None:
            cache.save()
        gc.freeze()  # the rules live as long as the service: not walked by every collection
        self.stop = asyncio.Event()
        self.scheduler: AsyncIOScheduler | None = None
        self.crawling: set[str] = set()
        self.passes = 0
        # Jobs share the archive's one connection on this loop; each transaction is synchronous,
        # so they never interleave inside one. Only deliveries must not overlap (two rounds would
        # pick the same due rows).
        self._delivering = asyncio.Lock()
        self._running_jobs = 0
        self.archive_paused_until = 0.0  # time.monotonic() before which no job runs
        self.archive_answers = True  # the last probe of the archive (`probe_job`)
        self._prober = ThreadPoolExecutor(1, thread_name_prefix="newswatch-probe")

    # -- jobs ---------------------------------------------------------------------------

    async def crawl_job(self) -> None:
        if self.stop.is_set():
            return
        now = self.clock()
        states = await call(self.archive, self.archive.source_states)
        # sources falling due within the next few seconds join this pass: one pass (one Scrapy
        # crawler) for them all instead of one a second
        candidates = [
            s
            for s in due_sources(self.config, states, now, ahead=BATCH_AHEAD)
            if s.name not in self.crawling
        ]
        if not candidates:
            return
        self.crawling |= {s.name for s in candidates}
        started = time.monotonic()
        try:
            # only those this node claims are crawled here (another node may hold the rest)
            results = await claim_and_crawl(
                self.config,
                self.archive,
                candidates,
                self.clock,
                stop=self.stop,
                rule_index=self.rule_index,
                ahead=BATCH_AHEAD,
            )
        finally:
            self.crawling -= {s.name for s in candidates}
        if not results:
            return
        self.passes += 1
        self.metrics.crawl_duration.observe(time.monotonic() - started)
        for result in results.values():
            self.metrics.articles.labels(result.source).inc(result.new)
            for kind, count in result.duplicates.items():
                self.metrics.duplicates.labels(kind).inc(count)
            if result.status == "error":
                self.metrics.source_errors.labels(
                    result.source, result.error_class or "Error"
                ).inc()
            else:
                self.metrics.last_success.labels(result.source).set(
                    (result.finished or self.clock()).timestamp()
                )
            log.info(
                "%s: %s, %d new, %d seen%s",
                result.source,
                result.status,
                result.new,
                result.seen,
                f" ({result.error})" if result.error else "",
            )
        await self.check_health()  # a source that just turned failing or recovered says so now
        await self.deliver_job()

    async def deliver_job(self) -> None:
        if self._delivering.locked():
            return  # a round is running; the next one picks up what is due then
        async with self._delivering:
            if networked(self.archive):
                # the whole round on a worker thread: its bookkeeping (orphaned passes,
                # digests, due rows, outcomes) talks to the database too
                report = await asyncio.to_thread(
                    deliver_due, self.archive, self.config.channels, self.clock
                )
            else:  # SQLite: the bookkeeping on the loop, the sends on threads
                report = await deliver_due_async(self.archive, self.config.channels, self.clock)
        for rule, channel, status in report.outcomes:
            self.metrics.alerts.labels(rule, channel, status).inc()

    async def health_job(self) -> None:
        """The minute's health check, by one node (or process) of those on the archive."""
        if await self._my_turn("health", self.clock(), HEALTH_EVERY):
            await self.check_health()

    async def check_health(self) -> None:
        """Judge each source; a change of state is recorded with its notices, once across
        nodes (`set_health` records a change only the first time)."""
        now = self.clock()
        states = await call(self.archive, self.archive.source_states)
        for source in self.config.sources:
            state = states.get(source.name)
            if state is None or state.last_run is None:
                continue  # never ran: nothing to judge yet
            health = assess(
                state.consecutive_failures,
                self.config.health_failures,
                state.last_error,
                await call(self.archive, self.archive.recent_first_seen, source.name),
                now,
            )
            change = notice(state.health_state, health)
            if change is None:
                continue
            notices = []
            for channel in self.config.health_notify:
                delivery = str(uuid.uuid4())
                payload = {
                    "event": "source-health",
                    "delivery": delivery,
                    "source": source.name,
                    "state": change,
                    "detail": health.detail or "the source works again",
                }
                notices.append((channel, delivery, json.dumps(payload)))
            changed = await call(
                self.archive, self.archive.set_health, source.name, health.state, now, notices
            )
            if not changed:
                continue  # another node recorded this change (and queued its notices)
            log.warning("source %s is %s: %s", source.name, change, health.detail)

    async def prune_job(self) -> None:
        if self.config.keep_days <= 0:
            return
        if not await self._my_turn("prune", self.clock(), PRUNE_EVERY):
            return

        before = self.clock() - timedelta(days=self.config.keep_days)
        pruned = await call(self.archive, self.archive.prune, before)
        if pruned:
            log.info("pruned %d articles older than %d days", pruned, self.config.keep_days)

    async def _my_turn(self, job: str, now: datetime, every: timedelta) -> bool:
        """This process runs `job` for the period `now` falls in: the first on the archive
        to claim the period's slot (several nodes on one archive run it once)."""
        slot = period_slot(now, every)
        return await call(self.archive, self.archive.claim_slot, job, slot, owner_here(), now)

    async def probe_job(self) -> None:
        """Ask the archive whether it answers (off the loop for a networked engine), for
        /healthz and /metrics. A database that answers again ends the pause at once."""
        # a thread of its own: never queued behind calls waiting for a database that is gone
        loop = asyncio.get_running_loop()
        answers = await loop.run_in_executor(self._prober, self.archive.writable)
        if answers and not self.archive_answers and networked(self.archive):
            self.archive_paused_until = 0.0
            log.warning("the archive answers again; the service resumes")
        self.archive_answers = answers
        self.metrics.archive_up.set(1 if self.healthy_archive() else 0)

    async def probe_forever(self) -> None:
        """`probe_job` every `PROBE_SECONDS`, as a task of its own beside the scheduler (not a
        job: it runs through a pause, and /healthz does not depend on the scheduler's jobs)."""
        while not self.stop.is_set():
            await self.probe_job()
            await asyncio.sleep(PROBE_SECONDS)

    def healthy_archive(self) -> bool:
        return self.archive_answers and time.monotonic() >= self.archive_paused_until

    def _tracked(self, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """The job, counted while it runs, so a stop can wait for it to finish."""

        async def run() -> None:
            if time.monotonic() < self.archive_paused_until:
                return
            self._running_jobs += 1
            try:
                await job()
            except StorageError as exc:
                self.archive_paused_until = time.monotonic() + ARCHIVE_PAUSE
                log.error(
                    "%s; the service tries again in %.0f s (what was committed is kept, "
                    "unfinished work is redone)",
                    archive_trouble(exc),
                    ARCHIVE_PAUSE,
                )
            finally:
                self._running_jobs -= 1

        run.__name__ = getattr(job, "__name__", "job")
        return run

    # -- health --------------------------------------------------------------------------

    def healthz(self) -> tuple[bool, dict[str, Any]]:
        running = self.scheduler is not None and self.scheduler.running and not self.stop.is_set()
        writable = self.healthy_archive()
        detail = {
            "node": self.config.node_name,
            "scheduler": "running" if running else "stopped",
            "archive": "writable" if writable else "not writable",
            "sources": len(self.config.sources),
            "passes": self.passes,
            "crawling": sorted(self.crawling),
        }
        return running and writable, detail

    def site(self) -> Site:
        """What the web view reads (and /healthz, /metrics)."""
        return Site(
            archive=self.archive,
            sources=self.config.sources,
            rules=self.config.rules,
            options=self.config.web,
            health_failures=self.config.health_failures,
            parse=self.config.parse_query,
            clock=self.clock,
            health=self.healthz,
            metrics=self.metrics.exposition,
            # the web view reads on a connection of its own, in its own thread: a long search
            # does not hold up the crawl and deliveries on this loop
            reader=self.config.open_archive,
        )

    # -- life ----------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop.set)
        for name, state in (await call(self.archive, self.archive.source_states)).items():
            if state.last_success is not None:
                self.metrics.last_success.labels(name).set(state.last_success.timestamp())
        load_crawl_machinery()  # not in the first pass: it cost that pass 0.5 s (measured)
        server = WebServer(self.config.listen, self.site())
        await server.start()
        scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        options: dict[str, Any] = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}
        now = datetime.now(UTC)
        job = self._tracked
        scheduler.add_job(job(self.crawl_job), "interval", seconds=1, next_run_time=now, **options)
        scheduler.add_job(job(self.deliver_job), "interval", seconds=5, **options)
        scheduler.add_job(
            job(self.health_job),
            "interval",
            seconds=HEALTH_EVERY.total_seconds(),
            next_run_time=now + timedelta(seconds=5),
            **options,
        )
        scheduler.add_job(
            job(self.prune_job),
            "interval",
            seconds=PRUNE_EVERY.total_seconds(),
            next_run_time=now,
            **options,
        )
        self.scheduler = scheduler
        scheduler.start()
        prober = asyncio.ensure_future(self.probe_forever())
        web = f"; web view on http://{self.config.listen}/" if self.config.web is not None else ""
        print(
            f"newswatch: watching {len(self.config.sources)} sources; health and metrics on "
            f"http://{self.config.listen}/healthz{web}; stop with Ctrl-C",
            flush=True,
        )
        try:
            await self.stop.wait()
        finally:
            print("newswatch: stopping", flush=True)
            # no new jobs; the running ones finish (a crawl sees `stop` and closes cleanly):
            # shutting the scheduler down now would cancel them halfway
            scheduler.pause()
            deadline = time.monotonic() + STOP_BUDGET
            while self._running_jobs and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            scheduler.shutdown(wait=False)
            try:
                async with asyncio.timeout(max(1.0, deadline - time.monotonic())):
                    while self._delivering.locked():
                        await asyncio.sleep(0.1)
                    await self._tracked(self.deliver_job)()
            except TimeoutError:
                log.warning("deliveries still running at shutdown; they resume on restart")
            prober.cancel()
            await server.close()
            self._prober.shutdown(wait=False)
            print("newswatch: stopped", flush=True)
