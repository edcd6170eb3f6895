"""The feed spider: one conditional GET per feed source, entries handed to the pipeline.

Scrapy does the HTTP (robots.txt, User-Agent, per-host limit, timeouts, size limit, redirects);
feedparser parses the bytes (crawler.feeds). A 304, or a 200 whose body hash is unchanged, is a
cheap no-op. Every failure becomes the source's recorded error; other sources go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import scrapy
from scrapy.http import Response
from twisted.python.failure import Failure

from crawler.feeds import parse_feed
from crawler.model import Source
from crawler.passes import PassContext
from crawler.settings import HANDLED_STATUSES

# Failure classes (Twisted's and Scrapy's) as users read them in `newswatch sources`.
_FRIENDLY = (
    ("DNS", "the host name does not resolve; check the URL"),
    ("CannotResolveHost", "the host name does not resolve; check the URL"),
    ("Timeout", "the server did not answer in time ([crawl] timeout)"),
    ("TimedOut", "the connection timed out"),
    ("Refused", "the server refused the connection"),
    ("SSL", "the TLS handshake failed (bad or untrusted certificate?)"),
    ("TLS", "the TLS handshake failed (bad or untrusted certificate?)"),
    ("ConnectionLost", "the server closed the connection"),
    ("DataLoss", "the server closed the connection mid-answer"),
    ("NeverReceived", "the server closed the connection before answering"),
)


def describe_failure(cls: str, detail: str) -> tuple[str, str]:
    """(error class, message an operator can act on) for a failed request."""
    lowered = detail.lower()
    if "robots.txt" in lowered:
        return "RobotsDisallowed", "robots.txt forbids this URL; ask the site or remove the source"
    if "redirect" in lowered:
        return "RedirectLoop", f"too many redirects (a redirect loop?): {detail}"
    if "maxsize" in lowered or "max size" in lowered or "exceeds" in lowered:
        return "TooLarge", f"the response is larger than [crawl] max_page_bytes: {detail}"
    for needle, text in _FRIENDLY:
        if needle.lower() in cls.lower() or needle.lower() in lowered:
            return cls, f"{text}: {detail}"
    return cls, f"the fetch failed: {detail}"


class FeedSpider(scrapy.Spider):
    name = "newswatch-feeds"

    def __init__(self, sources: list[Source], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources = {s.name: s for s in sources}

    @property
    def pass_ctx(self) -> PassContext:
        ctx: PassContext = self.settings["NEWSWATCH_PASS"]
        return ctx

    async def start(self) -> AsyncIterator[scrapy.Request]:
        ctx = self.pass_ctx
        for source in self.sources.values():
            ctx.result(source.name)  # the run starts now
            state = ctx.archive.source_state(source.name) or {}
            headers = {}
            if state.get("url") == source.url:
                if state.get("etag"):
                    headers["If-None-Match"] = state["etag"]
                if state.get("last_modified"):
                    headers["If-Modified-Since"] = state["last_modified"]
            yield scrapy.Request(
                source.url,
                headers=headers,
                callback=self.parse_feed,
                errback=self.on_error,
                dont_filter=True,
                meta={"source": source.name, "handle_httpstatus_list": HANDLED_STATUSES},
            )

    def parse_feed(self, response: Response) -> Iterator[dict[str, Any]]:
        ctx = self.pass_ctx
        name = response.meta["source"]
        result = ctx.result(name)
        result.http_status = response.status
        if response.status == 304:
            result.status = "not_modified"
            return
        if response.status >= 400:
            hint = {
                404: "the feed is not there (404); check the URL",
                410: "the feed is gone (410); remove or replace the source",
                403: "the server refuses us (403)",
                429: "the server asks us to slow down (429)",
            }.get(response.status, f"the server answered HTTP {response.status}")
            result.fail(f"HTTP{response.status}", hint)
            return
        body = response.body
        body_hash = hashlib.sha1(body).hexdigest()
        etag = response.headers.get(b"ETag")
        last_modified = response.headers.get(b"Last-Modified")
        validators = (
            etag.decode("latin-1") if etag else None,
            last_modified.decode("latin-1") if last_modified else None,
            body_hash,
        )
        state = ctx.archive.source_state(name) or {}
        if state.get("body_hash") == body_hash and state.get("url") == response.url:
            # Some servers send fresh validators for an unchanged feed: the body decides.
            result.status = "not_modified"
            result.validators = validators
            return
        content_type = response.headers.get(b"Content-Type")
        parsed = parse_feed(body, content_type.decode("latin-1") if content_type else None)
        if parsed.error:
            result.fail(parsed.error_class or "FeedError", parsed.error)
            return
        if parsed.warning:
            result.warn(parsed.warning)
            self.logger.info("%s: %s", name, parsed.warning)
        result.fetched += len(parsed.entries)
        result.validators = validators
        for entry in parsed.entries:
            yield {"source": name, "entry": entry, "feed_url": response.url}

    def on_error(self, failure: Failure) -> None:
        request = getattr(failure, "request", None)
        name = request.meta["source"] if request is not None else None
        if name is None:
            return
        cls, message = describe_failure(
            failure.type.__name__ if failure.type else "Error", str(failure.value)
        )
        self.pass_ctx.result(name).fail(cls, message)
        self.logger.info("%s: %s", name, message)
