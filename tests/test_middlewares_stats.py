"""Each downloader middleware counts what it does in the crawler's stats (`newswatch/...`),
built the way Scrapy builds it (`from_crawler` on a real crawler) and fed real requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import closing

import pytest
from scrapy import Request
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Response
from scrapy.utils.test import get_crawler

from crawler.archive import Storage
from crawler.clock import utcnow
from crawler.fetch.context import PassContext
from crawler.fetch.middlewares.prefetched import PrefetchedMiddleware
from crawler.fetch.middlewares.retry_after import RetryAfterMiddleware
from crawler.fetch.middlewares.seen import SeenFilterMiddleware
from crawler.fetch.poll import Answer
from crawler.model import CrawlOptions


def test_seen_filter_counts_the_pages_it_drops(open_engine: Callable[[], Storage]) -> None:
    with closing(open_engine()) as archive:
        archive.mark_seen("https://example.org/known", "s", "off-topic", utcnow())
        ctx = PassContext(archive=archive, sources=[], rules=[], topic=None, options=CrawlOptions())
        crawler = get_crawler(settings_dict={"NEWSWATCH_PASS": ctx})
        crawler.stats.open_spider()
        seen = SeenFilterMiddleware.from_crawler(crawler)
        seen.process_request(Request("https://example.org/new", meta={"nw_kind": "page"}))
        with pytest.raises(IgnoreRequest):
            seen.process_request(Request("https://example.org/known", meta={"nw_kind": "page"}))
        assert crawler.stats.get_value("newswatch/seen_filter/dropped") == 1
    with pytest.raises(NotConfigured):  # no pass context: not part of this crawl
        SeenFilterMiddleware.from_crawler(get_crawler())


def test_retry_after_counts_retries_and_long_waits() -> None:
    crawler = get_crawler()
    crawler.stats.open_spider()
    backoff = RetryAfterMiddleware.from_crawler(crawler)
    request = Request("https://example.org/feed")
    busy = Response(request.url, status=429, headers={"Retry-After": "0"}, request=request)
    retry = backoff.process_response(request, busy)
    assert isinstance(retry, Request) and retry.meta["nw_backoff"] == 1
    later = Response(request.url, status=503, headers={"Retry-After": "3600"}, request=request)
    assert backoff.process_response(request, later) is later
    assert crawler.stats.get_value("newswatch/retry_after/retried") == 1
    assert crawler.stats.get_value("newswatch/retry_after/left_to_the_source") == 1
    backoff.not_before["example.org"] = 0.0
    asyncio.run(backoff.process_request(request))  # nothing to wait for: not counted
    assert crawler.stats.get_value("newswatch/retry_after/paused") is None


def test_prefetched_counts_the_listings_it_answers() -> None:
    crawler = get_crawler()
    crawler.stats.open_spider()
    prefetched = PrefetchedMiddleware.from_crawler(crawler)
    url = "https://example.org/feed.xml"
    answer = Answer(url, 200, (("Content-Type", "application/rss+xml"),), b"<rss/>")
    response = prefetched.process_request(Request(url, meta={"nw_prefetched": answer}))
    assert response is not None and response.body == b"<rss/>"
    assert prefetched.process_request(Request(url)) is None
    assert crawler.stats.get_value("newswatch/prefetched/answered") == 1
