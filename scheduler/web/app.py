"""The aiohttp application and its server on the service's own loop.

`make_app(site)` builds the routes: /healthz and /metrics always (open), and with ``[web]``
the sign-in, the pages (session needed: without one a page answers 303 to /login and shows
no data), the feeds (token) and the API (Bearer token). Every answer carries a
Content-Security-Policy (no script, no inline style, nothing from elsewhere), ``nosniff`` and
``frame-ancestors 'none'``; every POST must come with this site's `Origin` (403 otherwise).
The access log shows method, path (never the query string, which may hold a feed token) and
status.
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from scheduler.web import api, feeds, pages, status
from scheduler.web.auth import same_origin
from scheduler.web.site import SITE, Site

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
STATIC = Path(__file__).parent / "static"


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")


@web.middleware
async def _origin_check(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS") and not same_origin(
        request.headers.get("Origin"), request.host
    ):
        raise web.HTTPForbidden(
            text="this form was not sent from this site (Origin missing or different)\n"
        )
    return await handler(request)


class QuietAccessLogger(AbstractAccessLogger):
    """Method, path without the query string, status, time: no token ever reaches a log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.0f ms", request.method, request.path, response.status, time * 1000
        )


def make_app(site: Site) -> web.Application:
    app = web.Application(middlewares=[_origin_check], client_max_size=64 * 1024)
    app[SITE] = site
    app.on_response_prepare.append(_headers)
    app.add_routes(status.routes(site.health, site.metrics))
    if site.options is not None:
        app.add_routes(pages.routes())
        app.add_routes(feeds.routes())
        app.add_routes(api.routes())
        app.router.add_static("/static/", STATIC, name="static", append_version=True)
    return app


class WebServer:
    """Serves the application on ``host:port`` (``[service] listen``) on the running loop."""

    def __init__(self, listen: str, site: Site) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]") or "127.0.0.1", int(port)
        self.app = make_app(site)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(
            self.app,
            access_log_class=QuietAccessLogger,
            access_log=logging.getLogger("newswatch.web.access"),
            handle_signals=False,
            shutdown_timeout=2.0,
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        await self.app[SITE].close()
