"""GET /healthz and GET /metrics: open to all (no session), answering exactly as the service's
status server always did: /healthz 200 or 503 with a JSON status, /metrics Prometheus text."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from scheduler.web.site import Health


def routes(health: Health | None, exposition: Callable[[], bytes] | None) -> list[web.RouteDef]:
    async def healthz(request: web.Request) -> web.Response:
        if health is None:
            raise web.HTTPNotFound(text="no health check here\n")
        ok, detail = health()
        body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
        return web.Response(
            body=body, status=200 if ok else 503, headers={"Content-Type": "application/json"}
        )

    async def metrics(request: web.Request) -> web.Response:
        if exposition is None:
            raise web.HTTPNotFound(text="no metrics here\n")
        return web.Response(body=exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]
