"""Conditional polls of listings with a light HTTP client (aiohttp), before the crawl.

Most polls of a listing answer 304 Not Modified. Through Scrapy's engine each of those costs
a few milliseconds of CPU; here a fraction of one, so a service watching hundreds of feeds
spends its cycle on what changed. Only listings with validators from their last good run
(an ETag or a Last-Modified) are polled, with exactly the request the crawl would send: the
configured User-Agent, robots.txt obeyed (Protego, as Scrapy's middleware; each host's file is
kept for an hour), the pass's per-host limit and delay, its timeout, certificates verified, the
environment's proxies (``http_proxy``, ``https_proxy``, ``no_proxy``).

What a poll decides is small on purpose:

- 304: the listing is unchanged; the source's run ends here.
- any other complete answer within ``max_page_bytes`` (a changed listing, an error status, a
  redirect): handed to the crawl as the listing's response
  (``crawler.fetch.middlewares.prefetched.PrefetchedMiddleware``), so the listing is requested once,
  and the answer is decompressed, followed, parsed or recorded as an error exactly as a
  downloaded one.
- no answer within ``timeout``: the source's error (``DownloadTimeoutError``, as the crawl
  records it), so a server that hangs is not asked twice in one pass.
- no answer for another reason (a connection or TLS failure, a body over the limit) or
  robots.txt refusing or unreadable: left to the crawl, which fetches the listing and records
  what happens, as it does for every listing that is not polled.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crawler.model import CrawlOptions

log = logging.getLogger(__name__)

ROBOTS_TTL = 3600.0  # seconds a host's robots.txt is trusted
# What the crawl can decode (Scrapy's HttpCompressionMiddleware), so the body is handed on as is.
ACCEPT_ENCODING = "gzip, deflate"


@dataclass(frozen=True)
class Poll:
    """One listing to poll: its source, URL and the validators of its last good run."""

    source: str
    url: str
    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        """The conditional GET's own headers (the session sends the User-Agent)."""
        headers = {"Accept-Encoding": ACCEPT_ENCODING}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True)
class Answer:
    """A 304, an answer to hand to the crawl (raw: still content-encoded), or a timeout
    (``timed_out``: status 0, nothing received in time)."""

    url: str
    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    timed_out: float | None = None  # the timeout (s) the listing did not answer within

    @staticmethod
    def timeout(url: str, seconds: float) -> Answer:
        return Answer(url, 0, timed_out=seconds)


@dataclass
class RobotsCache:
    """Parsed robots.txt per scheme://host:port, for ``ROBOTS_TTL`` seconds.

    An entry is a Protego parser, or None when the file could not be read (a failure or a 5xx):
    such hosts are not polled, the crawl decides for them."""

    clock: Callable[[], float] = time.monotonic
    entries: dict[str, tuple[float, Any]] = field(default_factory=dict)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def parser(
        self, session: Any, netloc_url: str, options: CrawlOptions, proxy: str | None = None
    ) -> Any:
        lock = self.locks.setdefault(netloc_url, asyncio.Lock())
        async with lock:
            found = self.entries.get(netloc_url)
            if found is not None and found[0] > self.clock():
                return found[1]
            parser = await _read_robots(session, netloc_url, options, proxy)
            self.entries[netloc_url] = (self.clock() + ROBOTS_TTL, parser)
            return parser


ROBOTS = RobotsCache()  # one per process: the service keeps it across passes


async def _read_robots(
    session: Any, netloc_url: str, options: CrawlOptions, proxy: str | None
) -> Any:
    import aiohttp
    from protego import Protego

    try:
        async with session.get(
            f"{netloc_url}/robots.txt",
            headers={"Accept-Encoding": "identity"},
            timeout=aiohttp.ClientTimeout(total=options.timeout),
            max_redirects=5,
            proxy=proxy,
        ) as response:
            if response.status >= 500:
                return None
            if response.status >= 400:
                return Protego.parse("")  # no robots.txt: everything allowed (RFC 9309)
            body = await _whole_body(response, options.max_page_bytes)
            return None if body is None else Protego.parse(body.decode("utf-8", "replace"))
    except Exception as exc:  # unreadable: the crawl's robots middleware decides
        log.debug("robots.txt of %s unreadable: %r", netloc_url, exc)
        return None


async def _whole_body(response: Any, limit: int) -> bytes | None:
    """All of the body (a single read returns only what has arrived so far), or None when it
    grows past ``limit`` bytes."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(65536):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _netloc_url(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class _HostGate:
    """At most ``per_host`` requests at once to a host, their starts ``delay`` seconds apart."""

    def __init__(self, per_host: int, delay: float) -> None:
        self.per_host, self.delay = max(1, per_host), delay
        self.slots: dict[str, asyncio.Semaphore] = {}
        self.next_start: dict[str, float] = {}

    async def __call__(self, host: str) -> asyncio.Semaphore:
        slot = self.slots.setdefault(host, asyncio.Semaphore(self.per_host))
        await slot.acquire()
        if self.delay > 0:
            now = time.monotonic()
            start = max(now, self.next_start.get(host, now))
            self.next_start[host] = start + self.delay
            if start > now:
                await asyncio.sleep(start - now)
        return slot


async def poll(
    polls: Iterable[Poll], options: CrawlOptions, robots: RobotsCache = ROBOTS
) -> dict[str, Answer]:
    """The answers to ``polls``, by source name; a listing without one is not in it (see the
    module's doc)."""
    import aiohttp

    polls = list(polls)
    if not polls:
        return {}
    gate = _HostGate(options.per_host, options.delay)
    proxies = urllib.request.getproxies()
    connector = aiohttp.TCPConnector(limit=0, ssl=True)
    async with aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        headers={"User-Agent": options.user_agent},
    ) as session:

        async def one(p: Poll) -> tuple[str, Answer | None]:
            try:
                proxy = proxy_for(p.url, proxies)
                return p.source, await _poll_one(session, p, options, gate, robots, proxy)
            except TimeoutError:  # aiohttp's total timeout: asked once, recorded as such
                return p.source, Answer.timeout(p.url, options.timeout)
            except Exception as exc:  # left to the crawl, which reports it
                log.debug("%s: poll of %s failed: %r", p.source, p.url, exc)
                return p.source, None

        answers = await asyncio.gather(*(one(p) for p in polls))
    return {name: answer for name, answer in answers if answer is not None}


def proxy_for(url: str, proxies: dict[str, str]) -> str | None:
    """The proxy the environment names for ``url`` (``http_proxy``, ``https_proxy``,
    ``no_proxy``), as the crawl's proxy middleware reads them; ``proxies`` from
    ``urllib.request.getproxies()``."""
    parts = urlsplit(url)
    if not proxies.get(parts.scheme):
        return None
    # the standard library's own no_proxy matching (untyped in typeshed)
    if urllib.request.proxy_bypass_environment(parts.hostname or "", proxies):  # type: ignore[attr-defined]
        return None
    return proxies[parts.scheme]


async def _poll_one(
    session: Any,
    p: Poll,
    options: CrawlOptions,
    gate: _HostGate,
    robots: RobotsCache,
    proxy: str | None,
) -> Answer | None:
    import aiohttp

    if options.obey_robots:
        parser = await robots.parser(session, _netloc_url(p.url), options, proxy)
        if parser is None or not parser.can_fetch(p.url, options.user_agent):
            return None
    host = urlsplit(p.url).hostname or ""
    slot = await gate(host)
    try:
        async with session.get(
            p.url,
            headers=p.headers(),
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=options.timeout),
            proxy=proxy,
        ) as response:
            if response.status == 304:
                return Answer(p.url, 304)
            body = await _whole_body(response, options.max_page_bytes)
            if body is None:
                return None
            headers = tuple((k, v) for k, v in response.headers.items())
            return Answer(p.url, response.status, headers, body)
    finally:
        slot.release()
