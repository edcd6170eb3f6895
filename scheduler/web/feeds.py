"""Per-rule feeds for feed readers, without a session: ``GET /feeds/RULE.atom?token=T`` (Atom
1.0, RFC 4287) and ``GET /feeds/RULE.json?token=T`` (JSON Feed 1.1).

A feed holds the rule's last 50 stories, newest first (the same search as ``rules test``), one
entry a story: its id is the story's (``urn:newswatch:rule:RULE:story:ID``), which stays when
a later copy merges another story into it (the oldest story's id survives); its title and link
are the story's first article's; its time the newest matching article's; its text a snippet
with the matched terms marked. T is `auth.feed_token` of the rule; a wrong, missing or other
rule's token answers 404, exactly like a rule that does not exist.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web

from crawler.archive.interface import Storage
from crawler.model import Rule
from crawler.query.search import backtest
from scheduler.delivery.render import mark_terms, snippet
from scheduler.web.auth import feed_token_ok
from scheduler.web.reports import StoryLine, story_lines
from scheduler.web.rows import get, iso_z, when
from scheduler.web.site import site_of

FEED_STORIES = 50
FEED_ARTICLES = 1000  # matching articles read to find the 50 newest stories
ATOM = "http://www.w3.org/2005/Atom"
FEED_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Cache-Control": "private, max-age=60",
}


def _entry(archive: Storage, rule: Rule, line: StoryLine) -> dict[str, Any]:
    """One story as a feed entry (plain values)."""
    story = line.story_id
    members = archive.story_articles(story) if story is not None else []
    first = min(members, key=lambda a: get(a, "id")) if members else line.article
    text = get(line.article, "text") or get(line.article, "summary") or ""
    short = snippet(text, line.matched)
    url = str(get(first, "url") or "")
    if not url.lower().startswith(("http://", "https://")):
        url = ""
    ident = story if story is not None else f"article-{get(line.article, 'id')}"
    moment = when(line.article, "first_seen")
    first_time = when(first, "published") or when(first, "first_seen") or moment
    return {
        "id": f"urn:newswatch:rule:{rule.name}:story:{ident}",
        "title": str(get(first, "title") or "(no title)"),
        "url": url,
        "published": iso_z(first_time),
        "updated": iso_z(moment),
        "snippet": short,
        "snippet_html": mark_terms(short, line.matched, "<mark>", "</mark>", _escape),
        "matched": line.matched,
        "sources": sorted({str(get(line.article, "source")), *line.outlets}),
    }


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def entries(archive: Storage, rule: Rule) -> list[dict[str, Any]]:
    found = backtest(archive, rule.query, None, rule.sources, limit=FEED_ARTICLES)
    lines = story_lines(found, archive.also_reported_by, limit=FEED_STORIES)
    return [_entry(archive, rule, line) for line in lines]


def atom(rule: Rule, items: list[dict[str, Any]], home: str, now: datetime) -> bytes:
    ET.register_namespace("", ATOM)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        if text is not None:
            element.text = text
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    sub(feed, "id", f"urn:newswatch:rule:{rule.name}")
    sub(feed, "title", f"newswatch: {rule.name}")
    sub(feed, "subtitle", rule.query_text)
    sub(feed, "updated", max((i["updated"] for i in items if i["updated"]), default=iso_z(now)))
    sub(feed, "link", rel="alternate", type="text/html", href=home)
    sub(sub(feed, "author"), "name", "newswatch")
    sub(feed, "generator", "newswatch")
    for item in items:
        entry = sub(feed, "entry")
        sub(entry, "id", item["id"])
        sub(entry, "title", item["title"])
        if item["url"]:
            sub(entry, "link", rel="alternate", href=item["url"])
        sub(entry, "published", item["published"] or item["updated"] or iso_z(now))
        sub(entry, "updated", item["updated"] or iso_z(now))
        sub(entry, "summary", item["snippet_html"], type="html")
        for source in item["sources"]:
            sub(entry, "category", term=source)
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def json_feed(rule: Rule, items: list[dict[str, Any]], home: str) -> bytes:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"newswatch: {rule.name}",
        "home_page_url": home,
        "description": rule.query_text,
        "authors": [{"name": "newswatch"}],
        "items": [
            {
                "id": item["id"],
                **({"url": item["url"]} if item["url"] else {}),
                "title": item["title"],
                "content_html": item["snippet_html"],
                "content_text": item["snippet"],
                "date_published": item["published"] or item["updated"],
                "date_modified": item["updated"],
                "tags": item["sources"],
                "_newswatch": {"matched": item["matched"], "sources": item["sources"]},
            }
            for item in items
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()


async def feed(request: web.Request) -> web.StreamResponse:
    site = site_of(request)
    assert site.options is not None
    name, _, kind = request.match_info["file"].rpartition(".")
    # the token is checked first, whatever the name: a missing rule and a wrong token look alike
    token_ok = feed_token_ok(site.options.secret, name, request.query.get("token"))
    rule = site.rule(name)
    if not token_ok or rule is None or kind not in ("atom", "json"):
        raise web.HTTPNotFound(text="no such feed\n", headers=FEED_HEADERS)
    items = await site.read(lambda archive: entries(archive, rule))
    home = f"{request.scheme}://{request.host}/rules/{rule.name}"
    if kind == "atom":
        body = atom(rule, items, home, site.clock())
        content_type = "application/atom+xml"
    else:
        body = json_feed(rule, items, home)
        content_type = "application/feed+json"
    return web.Response(
        body=body, headers={**FEED_HEADERS, "Content-Type": f"{content_type}; charset=utf-8"}
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/feeds/{file}", feed)]
