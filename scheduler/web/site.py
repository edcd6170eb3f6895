"""What every handler reads: the `Site` (archive, config, `[web]`), kept on the application."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
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

    async def read(self, work: Callable[[], T]) -> T:
        """Run `work`, a handler's storage reads, as the engine wants them run. SQLite answers
        on the loop (one connection, one short transaction a call); a networked engine awaits
        them on its own threads here, the one place that changes (docs/architecture.md,
        "Storage and the event loop")."""
        return work()

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
