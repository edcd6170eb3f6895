"""One crawl pass: every due source of a tick in ONE Scrapy crawl (one downloader, so one
per-host limit across sources), then one result per source.

The spider and the pipeline share a `PassContext` (handed to them through the crawler's
settings); after the crawl, `crawl_pass` returns a `RunRecord` per source for the caller to
record. Conditional-GET validators are only returned for a source whose items were all
processed, so a pass killed halfway fetches the feed in full again next time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from crawler.fetch.context import MAX_PAGE_ATTEMPTS, PassContext
from crawler.fetch.failures import describe_failure
from crawler.fetch.poll import Answer, Poll, poll
from crawler.fetch.settings import scrapy_settings
from crawler.model import Source
from crawler.records import RunRecord, SourceState

log = logging.getLogger(__name__)


async def crawl_pass(ctx: PassContext, stop: asyncio.Event | None = None) -> dict[str, RunRecord]:
    """Crawl every source of `ctx` once. Needs the asyncio Twisted reactor to be running.

    When `stop` is set mid-crawl, the crawl is closed cleanly (Scrapy finishes what it is
    downloading and closes the pipeline); what was not fetched is fetched next pass.
    """
    from scrapy.crawler import AsyncCrawlerRunner

    from crawler.fetch.spiders.news import NewsSpider

    stopped = False
    for source in ctx.sources:
        ctx.result(source.name)  # every run of the pass starts now (next due counts from here)
    crawled = list(ctx.sources)
    if crawled and not _own_resolver(ctx):
        polling = asyncio.ensure_future(poll(_polls(ctx), ctx.options))
        answers = await _unless_stopped(polling, stop)
        if answers is None:
            stopped, crawled = True, []
        else:
            crawled = _after_polls(ctx, answers)
    if crawled:
        settings = scrapy_settings(ctx.options, NEWSWATCH_PASS=ctx, **ctx.scrapy_overrides)
        runner = AsyncCrawlerRunner(settings)
        crawl = runner.crawl(NewsSpider, sources=crawled)
        if stop is not None:
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({crawl, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not crawl.done():
                log.info("stopping the crawl")
                stopped = True
                await runner.stop()
            stopper.cancel()
        await crawl
    now = ctx.clock()
    # a pass the archive stopped left listings' items unrequested, like a stopped one
    stopped = stopped or ctx.archive_error is not None
    for source in ctx.sources:
        result = ctx.result(source.name)
        if result.finished is None:
            result.finished = now
        if result.status == "error" or stopped or result.truncated or result.unstored:
            # read the whole listing again next time: some of its items were not processed
            result.validators = None
    return ctx.results


def load_crawl_machinery() -> None:
    """Import what a pass imports on first use (Scrapy's engine and HTTP handler, the poll's
    client, feedparser): a service does it once at start, so its first pass is not slower."""
    import aiohttp  # noqa: F401
    import feedparser  # noqa: F401
    import protego  # noqa: F401
    import scrapy.core.downloader.handlers.http11
    import scrapy.core.engine  # noqa: F401

    import crawler.fetch.spiders.news  # noqa: F401


def _own_resolver(ctx: PassContext) -> bool:
    """A pass given its own DNS resolver (the tests' fake one) resolves names through Scrapy
    only: the poll's client would ask the system's."""
    return any("DNS_RESOLVER" in key for key in ctx.scrapy_overrides)


def _polls(ctx: PassContext) -> list[Poll]:
    """The listings worth a poll: those with validators from their last good run (what the
    crawl's conditional GET would send), and no failed pages waiting for this pass."""
    polls = []
    for source in ctx.sources:
        state = ctx.archive.source_state(source.name) or SourceState(source.name)
        etag, modified = state.etag, state.last_modified
        if state.url != source.url or not (etag or modified):
            continue
        if ctx.archive.pending_pages(source.name, MAX_PAGE_ATTEMPTS):
            continue
        polls.append(Poll(source.name, source.url, etag, modified))
    return polls


def _after_polls(ctx: PassContext, answers: dict[str, Answer]) -> list[Source]:
    """Record the 304s and the timeouts as the sources' runs, keep the other answers for the
    crawl; the sources still to crawl."""
    crawled = []
    for source in ctx.sources:
        answer = answers.get(source.name)
        if answer is not None and answer.status == 304:
            result = ctx.result(source.name)
            result.http_status, result.status = 304, "not_modified"
            result.finished = ctx.clock()
            continue
        if answer is not None and answer.timed_out is not None:
            result = ctx.result(source.name)
            result.fail(*timeout_error(answer.url, answer.timed_out))
            result.finished = ctx.clock()
            continue
        if answer is not None:
            ctx.prefetched[source.name] = answer
        crawled.append(source)
    return crawled


def timeout_error(url: str, seconds: float) -> tuple[str, str]:
    """The error class and message of a listing that did not answer in time, worded as the
    crawl words its own (Scrapy's DownloadTimeoutError)."""
    detail = f"Getting {url} took longer than {seconds:g} seconds."
    return describe_failure("DownloadTimeoutError", detail)


async def _unless_stopped(task: asyncio.Future[Any], stop: asyncio.Event | None) -> Any:
    """The task's result, or None (the task cancelled) when `stop` is set first."""
    if stop is None:
        return await task
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not task.done():
        task.cancel()
        return None
    return task.result()
