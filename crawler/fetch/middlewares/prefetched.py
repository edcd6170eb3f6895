"""A listing its poll already received is not requested again (`PrefetchedMiddleware`)."""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.statscollectors import StatsCollector


class PrefetchedMiddleware:
    """Answers a listing request with the response its poll already received (see
    ``crawler.fetch.poll``), so a changed listing is requested once. The answer goes on through
    every
    middleware's ``process_response`` (decompression, size limits) like a downloaded one."""

    def __init__(self, stats: StatsCollector | None = None) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrefetchedMiddleware:
        return cls(crawler.stats)

    def process_request(self, request: Request) -> Response | None:
        answer = request.meta.pop("nw_prefetched", None)
        if answer is None or answer.url != request.url:
            return None
        if self.stats is not None:
            self.stats.inc_value("newswatch/prefetched/answered")
        headers = Headers()
        for name, value in answer.headers:
            headers.appendlist(name, value)
        cls = responsetypes.from_args(headers=headers, url=request.url, body=answer.body)
        return cls(
            url=request.url,
            status=answer.status,
            headers=headers,
            body=answer.body,
            request=request,
            flags=["prefetched"],
        )
