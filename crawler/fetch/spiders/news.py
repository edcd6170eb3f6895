"""The one spider of a pass: every due source, whatever its kind, in one crawl.

One crawl means one downloader, so the per-host limit and delay hold across all sources. The
listing of each source (a feed, a sitemap, a section page) is fetched with conditional GET;
its new items become article-page requests (when pages are fetched), which the archive-backed
`SeenFilterMiddleware` drops when the page is already known. Failures are recorded on the
source (`PassContext.result`); nothing here raises past Scrapy.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.decide.urls import canonical_url
from crawler.fetch.context import MAX_NEW_PAGES, MAX_PAGE_ATTEMPTS, PassContext
from crawler.fetch.failures import PRIVATE, SEEN, describe_failure, describe_status
from crawler.fetch.settings import HANDLED_STATUSES
from crawler.fetch.spiders import feeds, sitemaps, sites
from crawler.fetch.workers import INLINE_PAGES
from crawler.model import Source
from crawler.records import RunRecord


def charset_of(content_type: str) -> str | None:
    """The charset a Content-Type header declares, if any."""
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return None


class NewsSpider(scrapy.Spider):
    name = "newswatch"

    def __init__(self, sources: list[Source], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = {s.name: s for s in sources}
        self.new_page_counts: dict[str, int] = {}
        self.requested: set[str] = set()  # canonical URLs of the pages requested this pass

    @property
    def ctx(self) -> PassContext:
        ctx: PassContext = self.settings["NEWSWATCH_PASS"]
        return ctx

    def result(self, response_or_meta: Response | dict[str, Any]) -> RunRecord:
        meta = response_or_meta if isinstance(response_or_meta, dict) else response_or_meta.meta
        return self.ctx.result(meta["source"])

    # -- the listing of each source ------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for source in self.sources.values():
            self.ctx.result(source.name)  # the run starts now
            yield self.listing_request(source, source.url, conditional=True)
            for pending in self.ctx.archive.pending_pages(source.name, MAX_PAGE_ATTEMPTS):
                self.count_page_request()
                yield self.page_request(source.name, pending.url, pending.info, True)

    def listing_request(self, source: Source, url: str, conditional: bool) -> scrapy.Request:
        headers: dict[str, str] = {}
        state = self.ctx.archive.source_state(source.name)
        if conditional and state is not None and state.url == source.url:
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        callback = {
            "feed": self.parse_feed,
            "sitemap": self.parse_sitemap,
            "site": self.parse_section,
        }[source.kind]
        return scrapy.Request(
            url,
            headers=headers,
            callback=callback,
            errback=self.listing_failed,
            dont_filter=True,
            priority=10,  # listings before pages
            meta={
                "source": source.name,
                "nw_kind": "listing",
                "nw_conditional": conditional,
                "handle_httpstatus_list": HANDLED_STATUSES,
                "nw_prefetched": self.ctx.prefetched.get(source.name) if conditional else None,
            },
        )

    def listing_body(self, response: Response) -> bytes | None:
        """The body of a listing worth parsing; None when unchanged or failed (recorded)."""
        result = self.result(response)
        top = response.meta.get("nw_conditional", False)
        if top:
            result.http_status = response.status
        if response.status == 304:
            if top:
                result.status = "not_modified"
            return None
        if response.status >= 400:
            cls, message = describe_status(response.status, response.meta.get("nw_retry_after"))
            if response.status in (429, 503) and response.meta.get("nw_retry_after"):
                result.retry_after = float(response.meta["nw_retry_after"])
            result.fail(cls, message if top else f"{response.url}: {message}")
            return None
        body = response.body
        if top:
            body_hash = hashlib.sha1(body).hexdigest()
            etag = response.headers.get(b"ETag")
            last_modified = response.headers.get(b"Last-Modified")
            result.validators = (
                etag.decode("latin-1") if etag else None,
                last_modified.decode("latin-1") if last_modified else None,
                body_hash,
            )
            state = self.ctx.archive.source_state(result.source)
            source = self.sources[result.source]
            if state is not None and state.body_hash == body_hash and state.url == source.url:
                # Some servers send fresh validators for an unchanged listing: the body decides.
                result.status = "not_modified"
                return None
        return body

    def parse_feed(self, response: Response) -> Iterator[Any]:
        yield from feeds.parse(self, response)

    def parse_sitemap(self, response: Response) -> Iterator[Any]:
        yield from sitemaps.parse(self, response)

    def parse_section(self, response: Response) -> Iterator[Any]:
        yield from sites.parse(self, response)

    def listing_failed(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        if request is None:
            return
        cls, message = describe_failure(
            failure.type.__name__ if failure.type else "Error", str(failure.value)
        )
        result = self.result(request.meta)
        if not request.meta.get("nw_conditional"):
            message = f"{request.url}: {message}"
        result.fail(cls, message)
        self.logger.info("%s: %s", result.source, message)

    # -- article pages --------------------------------------------------------------------

    def page_request(
        self, source: str, url: str, info: dict[str, Any], refetch: bool = False
    ) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_page,
            errback=self.page_failed,
            meta={
                "source": source,
                "nw_kind": "page",
                "nw_info": info,
                "nw_url": url,
                "nw_refetch": refetch,
                "handle_httpstatus_list": HANDLED_STATUSES,
            },
        )

    def new_pages(self, source: str, urls: Iterable[tuple[str, dict[str, Any]]]) -> Iterator[Any]:
        """Requests for the article pages of a listing (the seen ones are dropped later)."""
        for url, info in urls:
            count = self.new_page_counts.get(source, 0)
            if count >= MAX_NEW_PAGES:
                result = self.ctx.result(source)
                if not result.truncated:  # said once, however long the listing
                    self.logger.info("%s: over %d new pages; the rest next pass", source, count)
                result.truncated = True  # read the listing again next pass
                return
            canonical = canonical_url(url)
            if canonical in self.requested or self.ctx.archive.is_known_url(canonical):
                self.ctx.result(source).seen += 1
                continue
            self.requested.add(canonical)
            self.new_page_counts[source] = count + 1
            self.count_page_request()
            yield self.page_request(source, url, info)

    def count_page_request(self) -> None:
        """Count a page request; past a few, start the extraction workers now, so they are
        ready when the pages arrive."""
        self.ctx.pages_requested += 1
        if self.ctx.pages_requested == INLINE_PAGES + 1:
            self.ctx.start_pool()

    def parse_page(self, response: Response) -> Iterator[dict[str, Any]]:
        result = self.result(response)
        result.pages += 1
        if response.status >= 400:
            _, message = describe_status(response.status, response.meta.get("nw_retry_after"))
            yield from self._page_failed(response.meta, message)
            return
        content_type = (response.headers.get(b"Content-Type") or b"").decode("latin-1").lower()
        if content_type and not any(t in content_type for t in ("html", "xml", "text")):
            yield from self._page_failed(response.meta, f"not an HTML page ({content_type})")
            return
        yield {
            "kind": "page",
            "source": response.meta["source"],
            "info": response.meta["nw_info"],
            "url": response.meta["nw_url"],
            "final_url": response.url,
            "body": response.body,
            "encoding": charset_of(content_type),
        }

    def page_failed(self, failure: Failure) -> Iterator[dict[str, Any]]:
        request = getattr(failure, "request", None)
        if request is None:
            return
        if SEEN in str(failure.value):
            self.result(request.meta).seen += 1
            return
        if PRIVATE in str(failure.value):  # a policy, not a failure: not tried again
            result = self.result(request.meta)
            result.errors += 1
            result.warn(str(failure.value))
            self.logger.warning("%s: %s", result.source, failure.value)
            return
        _, message = describe_failure(
            failure.type.__name__ if failure.type else "Error", str(failure.value)
        )
        yield from self._page_failed(request.meta, message)

    def _page_failed(self, meta: dict[str, Any], message: str) -> Iterator[dict[str, Any]]:
        self.logger.info("%s: page %s failed: %s", meta["source"], meta["nw_url"], message)
        yield {
            "kind": "page_failed",
            "source": meta["source"],
            "info": meta["nw_info"],
            "url": meta["nw_url"],
            "error": message,
        }
