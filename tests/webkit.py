"""The web view's test kit: a real SQLite archive filled through the archive API the way the
pipeline fills it (fingerprint, near-duplicate sketch, title key, alerts from the rule index),
a config file loaded by the real loader, and the aiohttp test client signed in or not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from test_cli_stories import OTHER, WIRE, edited, halves

from crawler.archive import Archive
from crawler.decide import neardup
from crawler.decide.fingerprint import text_fingerprint
from crawler.fetch.pipelines import alerts_for
from crawler.query import Document
from crawler.query.matcher import RuleIndex
from crawler.records import ArticleIn, RunRecord, Stored
from scheduler.config import Config, load
from scheduler.web.app import make_app
from scheduler.web.site import Site

PASSWORD = "correct horse battery staple"
SECRET = "s3cret-signing-key-0123456789abcdef"
API_TOKEN = "api-token-0123456789abcdef"
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

CONFIG = f"""
[archive]
path = "nw.db"

[service]
listen = "127.0.0.1:9180"

[web]
password = "{PASSWORD}"
secret = "{SECRET}"
api_tokens = ["{API_TOKEN}"]

[[sources]]
name = "wire-a"
feed = "http://127.0.0.1:9/a.xml"

[[sources]]
name = "wire-b"
feed = "http://127.0.0.1:9/b.xml"

[[sources]]
name = "wire-c"
feed = "http://127.0.0.1:9/c.xml"

[[sources]]
name = "quiet"
sitemap = "http://127.0.0.1:9/sitemap.xml"

[[rules]]
name = "air-defence"
query = '"air defence" OR Patriot'
notify = ["hook"]

[[rules]]
name = "navy"
query = 'Baltic AND (ships OR sonar)'
notify = ["hook"]

[[rules]]
name = "only-b"
query = 'alliance'
sources = ["wire-b", "wire-c"]

[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def write_config(tmp: Path, text: str = CONFIG) -> Config:
    path = tmp / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ={})


@dataclass
class Kit:
    config: Config
    archive: Archive
    now: datetime = NOW
    index: RuleIndex = field(init=False)

    def __post_init__(self) -> None:
        self.index = RuleIndex([r for r in self.config.rules if r.notify])

    def store(
        self,
        url: str,
        source: str,
        title: str,
        text: str,
        at: datetime | None = None,
        summary: str | None = None,
    ) -> Stored:
        """One article as the pipeline stores it (page read), with its alerts queued."""
        article = ArticleIn(
            url=url,
            source=source,
            guid=url,
            title=title,
            author=None,
            published=None,
            language="en",
            summary=summary,
            text=text,
            fingerprint=text_fingerprint(text),
            urls=(url,),
            origin="page",
            sketch=neardup.sketch(text),
            title_key=neardup.title_key(title),
        )
        doc = Document.from_fields(title, summary, text)
        return self.archive.store_article(
            article, at or self.now, lambda *_: alerts_for(self.index, source, doc)
        )

    def run(self, source: str, ok: bool, at: datetime, error: str = "HTTP 503") -> None:
        record = RunRecord(source=source, started=at, finished=at + timedelta(seconds=1))
        if not ok:
            record.fail("HttpError", error)
        self.archive.record_run(record, at + timedelta(minutes=15))

    def site(self, **changes: Any) -> Site:
        values: dict[str, Any] = {
            "archive": self.archive,
            "sources": self.config.sources,
            "rules": self.config.rules,
            "options": self.config.web,
            "health_failures": self.config.health_failures,
            "parse": self.config.parse_query,
            "clock": lambda: self.now,
            "health": lambda: (True, {"scheduler": "running"}),
            "metrics": lambda: b"newswatch_articles_total 0\n",
        }
        values.update(changes)
        return Site(**values)


def kit(tmp: Path, text: str = CONFIG) -> Kit:
    config = write_config(tmp, text)
    return Kit(config, Archive(config.archive_path))


def newsroom(k: Kit) -> dict[str, Any]:
    """The archive most tests read: one wire story told by three outlets (the halves first,
    two stories, then the original joins them into one), another story, a failing source,
    a source never run, and the alerts the rules queued."""
    first, second = halves(WIRE)
    ids: dict[str, Any] = {}
    ids["a"] = k.store(
        "https://a.example/1",
        "wire-a",
        "Allies add Patriot batteries",
        first,
        k.now - timedelta(hours=5),
    ).article_id
    ids["b"] = k.store(
        "https://b.example/1",
        "wire-b",
        "More air defence for Poland",
        edited(second),
        k.now - timedelta(hours=4),
    ).article_id
    ids["c"] = k.store(
        "https://c.example/1",
        "wire-c",
        "Patriot batteries for the east",
        WIRE,
        k.now - timedelta(hours=3),
    ).article_id
    ids["navy"] = k.store(
        "https://a.example/2", "wire-a", "Baltic drills begin", OTHER, k.now - timedelta(days=2)
    ).article_id
    for source in ("wire-a", "wire-b", "wire-c"):
        k.run(source, True, k.now - timedelta(hours=1))
    k.run("wire-b", False, k.now - timedelta(minutes=50), "HTTP 503 Service Unavailable")
    k.run("wire-b", False, k.now - timedelta(minutes=30), "HTTP 503 Service Unavailable")
    k.run("wire-b", False, k.now - timedelta(minutes=10), "HTTP 503 Service Unavailable")
    ids["story"] = k.archive.article_story(ids["c"])
    return ids


Body = Callable[[TestClient[Any, Any]], Awaitable[None]]


def origin(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("")).rstrip("/")


async def sign_in(client: TestClient[Any, Any], password: str = PASSWORD) -> int:
    answer = await client.post(
        "/login",
        data={"password": password, "next": "/"},
        headers={"Origin": origin(client)},
        allow_redirects=False,
    )
    return answer.status


def with_client(site: Site, body: Body, signed: bool = True) -> None:
    """Run `body` against the app on a real local socket (aiohttp's test server)."""

    async def main() -> None:
        async with TestClient(TestServer(make_app(site))) as client:
            if signed:
                assert await sign_in(client) == 303
            await body(client)

    asyncio.run(main())
