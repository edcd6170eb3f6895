"""The HTML pages: sign-in and out, overview, sources, search, stories, articles, the rule
bench, alerts. Each handler reads the archive through the storage interface, builds plain
values (`reports`, `bench`, `chart`) and renders a Jinja2 template with autoescape: whatever
came from the web (titles, texts, feed names, queries) is escaped wherever it is shown."""

from __future__ import annotations

import html
import itertools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web
from markupsafe import Markup

from crawler.archive.interface import Storage
from crawler.query import Document, Query, QueryError
from crawler.query.search import search
from scheduler.config.durations import parse_duration
from scheduler.delivery.render import mark_terms
from scheduler.web import auth, chart
from scheduler.web.bench import Bench, run_bench
from scheduler.web.reports import SourceView, StoryLine, source_view, story_lines, within
from scheduler.web.rows import get, shown, when
from scheduler.web.site import Site, client_of, query_param, signed_in, site_of

SEARCH_ARTICLES = 200  # articles read for one search page (then grouped by story, 50 shown)
PAGE_STORIES = 50
RULE_DAYS_DEFAULT = "30d"  # as `rules test`

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _time(value: Any) -> str:
    return shown(when({"t": value}, "t"))


def _mark(text: str | None, terms: list[str]) -> Markup:
    """`text` escaped, the matched terms in `<mark>`."""
    return Markup(mark_terms(text or "", terms, "<mark>", "</mark>", html.escape))


def _href(url: Any) -> str:
    """A link target from the web: http(s) only (never `javascript:` or `data:`)."""
    text = str(url or "").strip()
    return text if text.lower().startswith(("http://", "https://")) else "#"


_env.filters["time"] = _time
_env.filters["href"] = _href
_env.filters["mark"] = _mark
_env.filters["urlq"] = lambda value: quote(str(value), safe="")


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    site = site_of(request)
    body = _env.get_template(template).render(
        signed_in=signed_in(request),
        path=request.path,
        style=request.app.router["static"].url_for(filename="style.css"),
        rules=site.rules,
        **values,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


# ------------------------------------------------------------------------------ sessions


def page(handler: Handler) -> Handler:
    """A page that needs the session: without it, 303 to /login (and no data)."""

    async def gated(request: web.Request) -> web.StreamResponse:
        if not signed_in(request):
            raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        return response

    return gated


def _local(target: str | None) -> str:
    """Only a path of this site (no `//host`, no scheme): never an open redirect."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(char) < 32 for char in target)
    ):
        return "/"
    return target


async def login_page(request: web.Request) -> web.StreamResponse:
    if signed_in(request):
        raise web.HTTPSeeOther(_local(request.query.get("next")))
    return render(request, "login.html", next=_local(request.query.get("next")), error=None)


async def login(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    assert site.options is not None
    client = client_of(request)
    form = await request.post()
    target = _local(str(form.get("next") or ""))
    wait = site.limiter.wait(client, site.monotonic())
    if wait is not None:
        response = render(
            request,
            "login.html",
            status=429,
            next=target,
            error=f"Too many failed sign-ins; try again in {wait:.0f} seconds.",
        )
        response.headers["Retry-After"] = str(int(wait))
        return response
    if not auth.password_ok(site.options, str(form.get("password") or "")):
        site.limiter.failed(client, site.monotonic())
        return render(request, "login.html", status=401, next=target, error="Wrong password.")
    site.limiter.succeeded(client)
    response = web.HTTPSeeOther(target)
    response.set_cookie(
        auth.SESSION_COOKIE,
        auth.new_session(site.options),
        max_age=auth.SESSION_SECONDS,
        httponly=True,
        samesite="Strict",
        secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https",
        path="/",
    )
    raise response


async def logout(request: web.Request) -> web.StreamResponse:
    response = web.HTTPSeeOther("/login")
    response.del_cookie(auth.SESSION_COOKIE, path="/")
    raise response


# ------------------------------------------------------------------------------ helpers


def _since(text: str | None, now: datetime) -> tuple[datetime | None, str | None]:
    """(the time DUR ago, an error to show)."""
    if not text:
        return None, None
    try:
        return now - timedelta(seconds=parse_duration(text)), None
    except ValueError as exc:
        return None, f"since {text!r}: {exc}"


def _parse(site: Site, text: str) -> tuple[Query | None, QueryError | None]:
    try:
        return site.parse(text), None
    except QueryError as exc:
        return None, exc


def source_views(site: Site, archive: Storage, now: datetime) -> list[SourceView]:
    states = archive.source_states()
    day = archive.articles_since(now - timedelta(hours=24))
    week = archive.articles_since(now - timedelta(days=7))
    views = []
    for source in site.sources:
        state = states.get(source.name)
        failures = int(get(state, "consecutive_failures", 0) or 0) if state else 0
        failing_runs = archive.runs(source.name, limit=failures) if failures else []
        views.append(
            source_view(
                source,
                state,
                failing_runs,
                archive.recent_first_seen(source.name) if state else [],
                (day.get(source.name, 0), week.get(source.name, 0)),
                site.health_failures,
                now,
            )
        )
    return views


# ------------------------------------------------------------------------------ pages


@page
async def overview(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    now = site.clock()

    def gather(archive: Storage) -> dict[str, Any]:
        attention = [v for v in source_views(site, archive, now) if v.attention]
        alerts = within(archive.deliveries(limit=500), "created", now - timedelta(hours=24))
        newest = archive.search_candidates(None)
        try:
            rows = list(itertools.islice(newest, 200))
        finally:
            close = getattr(newest, "close", None)
            if close is not None:
                close()
        lines = story_lines([(r, []) for r in rows], archive.also_reported_by, limit=20)
        return {"attention": attention, "alerts": alerts, "lines": lines}

    return render(request, "overview.html", **await site.read(gather))


@page
async def sources_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    now = site.clock()
    return render(
        request,
        "sources.html",
        sources=await site.read(lambda archive: source_views(site, archive, now)),
    )


@page
async def search_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    text = query_param(request, "q")
    source = query_param(request, "source")
    since_text = query_param(request, "since")
    since, since_error = _since(since_text, site.clock())
    error: QueryError | None = None
    lines = []
    status = 200
    if text is not None and since_error is None:
        query, error = _parse(site, text)
        if query is not None:

            def gather(archive: Storage) -> list[StoryLine]:
                found = search(archive, query, since, source, SEARCH_ARTICLES)
                return story_lines(found, archive.also_reported_by, limit=PAGE_STORIES)

            lines = await site.read(gather)
    if error is not None or since_error is not None:
        status = 400
    return render(
        request,
        "search.html",
        status=status,
        q=text or "",
        since=since_text or "",
        source=source or "",
        sources=site.sources,
        error=error,
        since_error=since_error,
        lines=lines,
        searched=text is not None,
    )


def _article_time(row: Any) -> tuple[datetime, int]:
    moment = when(row, "published") or when(row, "first_seen")
    return (moment or datetime.min.replace(tzinfo=UTC), int(get(row, "id")))


@page
async def story_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    story_id = int(request.match_info["id"])
    articles = await site.read(lambda archive: archive.story_articles(story_id))
    if not articles:
        raise web.HTTPNotFound(text=f"no story {story_id} in the archive\n")
    articles = sorted(articles, key=_article_time)
    return render(request, "story.html", story_id=story_id, articles=articles)


@page
async def article_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    article_id = int(request.match_info["id"])
    row = await site.read(lambda archive: archive.article(article_id))
    if row is None:
        raise web.HTTPNotFound(text=f"no article {article_id} in the archive\n")
    doc = Document.from_fields(get(row, "title"), get(row, "summary"), get(row, "text"))
    matched_rules: list[tuple[Any, list[str]]] = []
    for rule in site.rules:
        if rule.applies_to(get(row, "source")):
            rule_terms = rule.query.matches(doc)
            if rule_terms is not None:
                matched_rules.append((rule, rule_terms))
    terms: list[str] = [t for _, ts in matched_rules for t in ts]
    text = query_param(request, "q")
    if text is not None:
        query, _ = _parse(site, text)
        if query is not None:
            terms += query.matches(doc) or []
    story = get(row, "story_id")
    others = (
        await site.read(lambda archive: archive.also_reported_by(story, article_id))
        if story is not None
        else []
    )
    return render(
        request,
        "article.html",
        article=row,
        terms=sorted(set(terms)),
        matched_rules=matched_rules,
        others=others,
        urls=list(get(row, "urls") or []),
    )


@page
async def rules_page(request: web.Request) -> web.StreamResponse:
    return render(request, "rules.html")


def feed_urls(request: web.Request, site: Site, rule: str) -> dict[str, str]:
    assert site.options is not None
    token = auth.feed_token(site.options.secret, rule)
    base = f"{request.scheme}://{request.host}/feeds/{quote(rule, safe='')}"
    return {"atom": f"{base}.atom?token={token}", "json": f"{base}.json?token={token}"}


@page
async def rule_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    name = request.match_info["name"]
    rule = site.rule(name)
    if rule is None:
        raise web.HTTPNotFound(text="no rule of that name in the config\n")
    now = site.clock()
    since_text = query_param(request, "since") or RULE_DAYS_DEFAULT
    since, since_error = _since(since_text, now)
    text = request.query.get("q")

    def gather(archive: Storage) -> tuple[Bench, list[StoryLine]]:
        bench = run_bench(archive, rule, text, since, site.parse)
        lines = []
        if bench.error is None:
            lines = story_lines(bench.found, archive.also_reported_by, limit=PAGE_STORIES)
        return bench, lines

    bench: Bench | None = None
    lines: list[StoryLine] = []
    if since_error is None:
        bench, lines = await site.read(gather)
    days: list[tuple[Any, int]] = []
    if bench is not None and bench.error is None:
        first = (since or now - timedelta(days=30)).date()
        times = [t for row, _ in bench.found if (t := when(row, "first_seen")) is not None]
        if since is None and times:
            first = min(times).date()
        days = chart.per_day(times, first, now.date())
    failed = since_error is not None or (bench is not None and bench.error is not None)
    return render(
        request,
        "rule.html",
        status=400 if failed else 200,
        rule=rule,
        bench=bench,
        since=since_text,
        since_error=since_error,
        chart=Markup(chart.svg(days, f"{rule.name}: matches per day")) if days else None,
        lines=lines,
        feeds=feed_urls(request, site, rule.name),
    )


@page
async def alerts_page(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    wanted = query_param(request, "status")
    rows = await site.read(lambda archive: archive.deliveries(status=wanted, limit=500))
    return render(request, "alerts.html", alerts=rows, status_filter=wanted or "")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/login", login_page),
        web.post("/login", login),
        web.post("/logout", logout),
        web.get("/", overview),
        web.get("/sources", sources_page),
        web.get("/search", search_page),
        web.get(r"/stories/{id:\d{1,18}}", story_page),
        web.get(r"/articles/{id:\d{1,18}}", article_page),
        web.get("/rules", rules_page),
        web.get("/rules/{name}", rule_page),
        web.get("/alerts", alerts_page),
    ]
