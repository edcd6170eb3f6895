"""Downloader middlewares newswatch adds to Scrapy."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest, NotConfigured
from scrapy.http import Headers, Response
from scrapy.responsetypes import responsetypes
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.failures import PRIVATE, SEEN
from crawler.httputil import parse_retry_after
from crawler.urls import canonical_url, host_of, ip_literal, non_public_address


def _fork(deferred: Deferred[Any]) -> Deferred[Any]:
    """A new Deferred firing with `deferred`'s result, leaving that result in place for others."""
    child: Deferred[Any] = Deferred()

    def pass_on(result: Any) -> Any:
        child.callback(result)
        return result

    deferred.addBoth(pass_on)
    return child


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware, fixed for requests that wait on one robots.txt fetch.

    Measured on Scrapy 2.19: while a host's robots.txt is being fetched, every further request
    to that host awaits the same Deferred, but only the first waiter receives the parser (the
    conversion to a Future swallows the result), so the second and later requests were sent
    even where robots.txt forbids them. And when the robots.txt fetch failed, the waiters were
    never woken. Here each waiter gets its own fork of the result, and a failed fetch wakes
    them with "no robots.txt" (allowed), as Scrapy does for the first request.
    """

    async def robot_parser(self, request: Request) -> Any:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(pending, Deferred):
            return await maybe_deferred_to_future(_fork(pending))
        return await super().robot_parser(request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        pending = self._parsers.get(netloc)
        super()._robots_error(exc, netloc)
        if isinstance(pending, Deferred) and not pending.called:
            pending.callback(None)


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

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeenFilterMiddleware:
        return cls(crawler)

    def process_request(self, request: Request) -> None:
        if request.meta.get("nw_kind") != "page" or request.meta.get("nw_refetch"):
            return
        if self.ctx.archive.is_known_url(canonical_url(request.url)):
            raise IgnoreRequest(SEEN)


class RetryAfterMiddleware:
    """Backs off a host that answers 429 or 503, honouring its Retry-After.

    A short wait (up to `MAX_WAIT` seconds) pauses every request to that host and retries the
    request (at most `MAX_TRIES` times); a longer one is left to the callback, which records it
    so the source is not crawled again before that time.
    """

    MAX_WAIT = 60.0
    MAX_TRIES = 2
    DEFAULT_WAIT = 5.0  # a 429/503 without Retry-After

    def __init__(self) -> None:
        self.not_before: dict[str, float] = {}

    async def process_request(self, request: Request) -> None:
        host = urlparse_cached(request).netloc
        wait = self.not_before.get(host, 0.0) - time.monotonic()
        if wait > 0:
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
            return retry
        request.meta["nw_retry_after"] = wait
        return response


class PrefetchedMiddleware:
    """Answers a listing request with the response its poll already received (see
    ``crawler.poll``), so a changed listing is requested once. The answer goes on through every
    middleware's ``process_response`` (decompression, size limits) like a downloaded one."""

    def process_request(self, request: Request) -> Response | None:
        answer = request.meta.pop("nw_prefetched", None)
        if answer is None or answer.url != request.url:
            return None
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
        raise IgnoreRequest(
            f"{request.url} {PRIVATE} ({address}): links into private networks are not "
            "followed; set [crawl] allow_private = true if this source needs them"
        )
