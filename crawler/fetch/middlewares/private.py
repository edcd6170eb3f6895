"""Links into private networks are not followed (`PrivateAddressMiddleware`: SSRF)."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached

from crawler.decide.urls import host_of, ip_literal, non_public_address
from crawler.fetch.failures import PRIVATE


class PrivateAddressMiddleware:
    """Refuses a link that leads off the public internet, unless ``[crawl] allow_private``.

    A feed, sitemap or page may link (or redirect) to a loopback, private, link-local or cloud
    metadata address: following it would make newswatch fetch from its own network on a
    publisher's behalf (server-side request forgery). Article pages, child sitemaps, section
    links and every redirect are checked; a source's configured URL is the operator's choice
    and passes, as does any URL on its host. The name is resolved through the crawl's own
    caching resolver, so the connection that follows uses the address that was checked.
    """

    def __init__(self, crawler: Crawler) -> None:
        ctx = crawler.settings.get("NEWSWATCH_PASS")
        if ctx is None:
            raise NotConfigured("no newswatch pass context")
        if ctx.options.allow_private:
            raise NotConfigured("[crawl] allow_private is on")
        self.sources = {s.name: s.url for s in ctx.sources}
        self.hosts = {s.name: host_of(s.url) for s in ctx.sources}
        self.passed: set[str] = set()  # hosts let through in this pass
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PrivateAddressMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        source = request.meta.get("source")
        host = urlparse_cached(request).hostname or ""
        if request.url == self.sources.get(source) or host == self.hosts.get(source):
            self.passed.add(host)  # the configured URL itself, or its host
            return
        if source is None and host in self.passed:
            return  # Scrapy's own robots.txt request for a host already let through
        address = ip_literal(host)
        if address is None:
            from twisted.internet import reactor

            resolve: Any = reactor.resolve  # typed for bytes; Scrapy's resolver takes str
            try:
                address = await maybe_deferred_to_future(resolve(host))
            except Exception:
                return
        if not address or not non_public_address(address):
            self.passed.add(host)
            return
        if self.stats is not None:
            self.stats.inc_value("newswatch/private_address/refused")
        raise IgnoreRequest(
            f"{request.url} {PRIVATE} ({address}): links into private networks are not "
            "followed; set [crawl] allow_private = true if this source needs them"
        )
