"""What every handler reads: the `Site` (archive, config, `[web]`), kept on the application."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from crawler.archive.interface import Storage
from crawler.clock import utcnow
from crawler.model import Rule, Source
from crawler.query import Query, parse
from scheduler.web import auth
from scheduler.web.auth import SignInLimiter
from scheduler.web.options import WebOptions

Health = Callable[[], tuple[bool, dict[str, Any]]]
T = TypeVar("T")


@dataclass
class Site:
    """What the web view reads: the archive (through the storage interface only), the config's
    sources and rules, `[web]`, and the service's health and metrics."""

    archive: Storage
    sources: Sequence[Source] = ()
    rules: Sequence[Rule] = ()
    options: WebOptions | None = None
    health_failures: int = 3
    parse: Callable[[str], Query] = parse
    clock: Callable[[], datetime] = utcnow
    health: Health | None = None
    metrics: Callable[[], bytes] | None = None
    monotonic: Callable[[], float] = time.monotonic
    limiter: SignInLimiter = field(default_factory=SignInLimiter)

    # opens an archive for reading in the web view's own thread (SQLite: a second connection,
    # WAL lets it read beside the service's writer); None: handlers read on the loop
    reader: Callable[[], Storage] | None = None
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)
    _reading: Storage | None = field(default=None, init=False, repr=False)

    async def read(self, work: Callable[[Storage], T]) -> T:
        """Run `work`, a handler's storage reads, off the service's loop when a `reader` is
        set (one worker thread, its own connection), so a long search does not hold up the
        crawl and deliveries; else on the loop with `archive`. The one place that changes
        with the engine (docs/architecture.md, "Storage and the event loop")."""
        if self.reader is None:
            return work(self.archive)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-web")
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._work, work)

    def _work(self, work: Callable[[Storage], T]) -> T:
        if self._reading is None:
            assert self.reader is not None
            self._reading = self.reader()
        return work(self._reading)

    async def close(self) -> None:
        """Close the reading connection (in its thread) and the thread."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        reading, self._reading = self._reading, None
        if reading is not None:
            await asyncio.get_running_loop().run_in_executor(pool, reading.close)
        pool.shutdown(wait=True)

    def rule(self, name: str) -> Rule | None:
        return next((r for r in self.rules if r.name == name), None)

    def source(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)


SITE = web.AppKey("site", Site)


def site_of(request: web.Request) -> Site:
    return request.app[SITE]


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


def query_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    return value if value not in (None, "") else None


def signed_in(request: web.Request) -> bool:
    """The request carries a valid session cookie."""
    options = site_of(request).options
    return options is not None and auth.session_ok(
        options, request.cookies.get(auth.SESSION_COOKIE)
    )
