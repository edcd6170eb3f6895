"""A host answering 429 or 503 is backed off, honouring Retry-After (`RetryAfterMiddleware`)."""

from __future__ import annotations

import asyncio
import time

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.statscollectors import StatsCollector
from scrapy.utils.httpobj import urlparse_cached

from crawler.fetch.httputil import parse_retry_after


class RetryAfterMiddleware:
    """Backs off a host that answers 429 or 503, honouring its Retry-After.

    A short wait (up to `MAX_WAIT` seconds) pauses every request to that host and retries the
    request (at most `MAX_TRIES` times); a longer one is left to the callback, which records it
    so the source is not crawled again before that time.
    """

    MAX_WAIT = 60.0
    MAX_TRIES = 2
    DEFAULT_WAIT = 5.0  # a 429/503 without Retry-After

    def __init__(self, stats: StatsCollector | None = None) -> None:
        self.not_before: dict[str, float] = {}
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RetryAfterMiddleware:
        return cls(crawler.stats)

    def _count(self, key: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"newswatch/retry_after/{key}")

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).netloc
        wait = self.not_before.get(host, 0.0) - time.monotonic()
        if wait > 0:
            self._count("paused")
            await asyncio.sleep(wait)

    def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in (429, 503):
            return response
        header = response.headers.get(b"Retry-After")
        delay = parse_retry_after(header) if header else None
        tries = int(request.meta.get("nw_backoff", 0))
        wait = delay if delay is not None else self.DEFAULT_WAIT
        if wait <= self.MAX_WAIT and tries < self.MAX_TRIES:
            host = urlparse_cached(request).netloc
            self.not_before[host] = max(self.not_before.get(host, 0.0), time.monotonic() + wait)
            retry = request.replace(dont_filter=True)
            retry.meta["nw_backoff"] = tries + 1
            self._count("retried")
            return retry
        request.meta["nw_retry_after"] = wait
        self._count("left_to_the_source")
        return response
