"""Article pages the archive already knows are not fetched again (`SeenFilterMiddleware`)."""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured

from crawler.decide.urls import canonical_url
from crawler.fetch.failures import SEEN


class SeenFilterMiddleware:
    """Drops a request for an article page the archive already knows, before it is sent.

    Only requests marked as article pages (`meta["nw_kind"] == "page"`) are checked, by their
    canonical URL (also after a redirect, which comes back through here). A deliberate
    re-fetch (`meta["nw_refetch"]`) passes. This is what scrapy-deltafetch did, on the archive.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.ctx = crawler.settings.get("NEWSWATCH_PASS")
        if self.ctx is None:
            raise NotConfigured("no newswatch pass context")
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeenFilterMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if request.meta.get("nw_kind") != "page" or request.meta.get("nw_refetch"):
            return
        if self.ctx.archive.is_known_url(canonical_url(request.url)):
            if self.stats is not None:
                self.stats.inc_value("newswatch/seen_filter/dropped")
            raise IgnoreRequest(SEEN)
