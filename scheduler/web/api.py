"""The read-only API, ``Authorization: Bearer TOKEN`` (one of ``[web] api_tokens``), and
``GET /sources.opml`` (a session or a token). A wrong token answers 401 like a missing one.
Bodies are the JSON the matching command prints with ``--json``:

- ``/api/v1/articles?q=QUERY&since=DUR&limit=N``: ``search QUERY --json`` (limit 20 unless N)
- ``/api/v1/stories/ID``: the story's articles (``{"id", "articles": [...]}``)
- ``/api/v1/sources``: ``sources --json``
- ``/api/v1/alerts?status=S``: ``alerts --json``
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from crawler.archive.interface import Storage
from crawler.query import QueryError
from crawler.query.search import search
from scheduler.config.durations import parse_duration
from scheduler.web.auth import api_token_ok
from scheduler.web.opml import to_opml
from scheduler.web.reports import alert_json, article_json, source_json
from scheduler.web.site import Site, query_param, signed_in, site_of

MAX_LIMIT = 1000
STATUSES = ("pending", "sent", "failed", "held", "digested", "merged")


def _json(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(value, ensure_ascii=False, indent=2) + "\n",
        status=status,
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def _bad(message: str) -> web.Response:
    return _json({"error": message}, 400)


def _authorised(request: web.Request) -> Site:
    site = site_of(request)
    assert site.options is not None
    if not api_token_ok(site.options.api_tokens, request.headers.get("Authorization")):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "a valid API token is needed (Authorization: Bearer)"}),
            content_type="application/json",
            headers={"WWW-Authenticate": 'Bearer realm="newswatch"'},
        )
    return site


async def articles(request: web.Request) -> web.StreamResponse:
    site = _authorised(request)
    text = query_param(request, "q")
    if text is None:
        return _bad("q is missing: give a query in the rule language, e.g. q=nato")
    try:
        query = site.parse(text)
    except QueryError as exc:
        return _bad(f"bad query: {exc}")
    since = None
    if (since_text := query_param(request, "since")) is not None:
        try:
            since = site.clock() - timedelta(seconds=parse_duration(since_text))
        except ValueError as exc:
            return _bad(f"since {since_text!r}: {exc}")
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        return _bad("limit must be a whole number")
    if not 1 <= limit <= MAX_LIMIT:
        return _bad(f"limit must be between 1 and {MAX_LIMIT}")
    source = query_param(request, "source")
    found = await site.read(lambda archive: search(archive, query, since, source, limit))
    return _json([article_json(row, matched) for row, matched in found])


async def story(request: web.Request) -> web.StreamResponse:
    site = _authorised(request)
    story_id = int(request.match_info["id"])
    rows = await site.read(lambda archive: archive.story_articles(story_id))
    if not rows:
        return _json({"error": f"no story {story_id}"}, 404)
    return _json({"id": str(story_id), "articles": [article_json(r) for r in rows]})


async def sources(request: web.Request) -> web.StreamResponse:
    site = _authorised(request)
    now = site.clock()

    def gather(archive: Storage) -> list[dict[str, Any]]:
        states = archive.source_states()
        last_runs = archive.last_runs()
        recent = archive.articles_since(now - timedelta(hours=24))
        return [
            source_json(s, states.get(s.name), last_runs.get(s.name), recent.get(s.name, 0))
            for s in site.sources
        ]

    return _json(await site.read(gather))


async def alerts(request: web.Request) -> web.StreamResponse:
    site = _authorised(request)
    status = query_param(request, "status")
    if status is not None and status not in STATUSES:
        return _bad(f"status must be one of {', '.join(STATUSES)}")
    rows = await site.read(lambda archive: archive.deliveries(status=status))
    return _json([alert_json(r) for r in rows])


async def sources_opml(request: web.Request) -> web.StreamResponse:
    site = site_of(request) if signed_in(request) else _authorised(request)
    return web.Response(
        body=to_opml(site.sources, site.clock()),
        headers={
            "Content-Type": "text/x-opml; charset=utf-8",
            "Content-Disposition": 'attachment; filename="newswatch-sources.opml"',
            "Cache-Control": "no-store",
        },
    )


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/articles", articles),
        web.get(r"/api/v1/stories/{id:\d{1,18}}", story),
        web.get("/api/v1/sources", sources),
        web.get("/api/v1/alerts", alerts),
        web.get("/sources.opml", sources_opml),
    ]
