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

WIRE = (
    "Defence ministers of the alliance agreed on Thursday to station two additional Patriot "
    "batteries in eastern Poland, officials said after a closed meeting in Brussels. The "
    "decision follows months of talks about gaps in the integrated air defence network along "
    "the eastern flank, where drones crossed into allied airspace several times this year. "
    "Germany and the Netherlands will provide the launchers while crews from Poland complete "
    "their training at a range near Ustka before the end of the summer. The alliance also "
    "approved funding for new radar sites in Lithuania and Latvia and asked industry to speed "
    "up deliveries of interceptor missiles, which several members said were running low after "
    "transfers to Ukraine. A spokesperson said the batteries would be under national command "
    "but linked to the common air picture of the alliance from the first day of operation."
)
OTHER = (
    "Naval commanders of the alliance opened a two week exercise in the Baltic Sea on Monday "
    "with forty ships and twenty aircraft taking part, the maritime command said in a "
    "statement. The drills focus on clearing sea mines near harbour approaches and on "
    "protecting undersea cables and pipelines after several incidents in recent years. Sweden "
    "and Finland take part for the second time as full members, sending corvettes and a "
    "submarine rescue vessel. Commanders said the exercise would test new procedures for "
    "sharing sonar data between national navies in near real time, and a floating command "
    "post will move between ports in Estonia and Germany during the second week of the drills."
)


def edited(text: str, every: int = 20) -> str:
    words = text.split()
    return " ".join("changed" if i % every == 7 else w for i, w in enumerate(words))


def halves(text: str) -> tuple[str, str]:
    """The first and the last 55% of the words: copies of the story that share too little to
    be one story without the original."""
    words = text.split()
    cut = len(words) // 2
    return " ".join(words[: cut + 5]), " ".join(words[cut - 5 :])


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
