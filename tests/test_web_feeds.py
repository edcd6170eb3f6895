"""Per-rule Atom and JSON feeds (scheduler/web/feeds.py) read by feedparser, as a feed reader
would: no session, a token per rule, one entry a story with an id that stays."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import feedparser
from aiohttp.test_utils import TestClient
from webkit import OTHER, SECRET, WIRE, Kit, edited, halves, kit, newsroom, with_client

from scheduler.web.auth import feed_token


def url(rule: str, kind: str, token: str | None = None) -> str:
    return f"/feeds/{rule}.{kind}?token={token or feed_token(SECRET, rule)}"


async def fetch(client: TestClient[Any, Any], rule: str, kind: str) -> Any:
    answer = await client.get(url(rule, kind))
    assert answer.status == 200
    assert answer.headers["Referrer-Policy"] == "no-referrer"
    assert answer.headers["X-Robots-Tag"] == "noindex"
    body = await answer.read()
    if kind == "json":
        assert answer.headers["Content-Type"].startswith("application/feed+json")
        return json.loads(body)
    assert answer.headers["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(io.BytesIO(body))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    return parsed


def test_atom_and_json_feeds_hold_one_entry_a_story_without_a_session(tmp_path: Path) -> None:
    k = kit(tmp_path)
    ids = newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        atom = await fetch(client, "air-defence", "atom")
        assert len(atom.entries) == 1  # three outlets, one story
        entry = atom.entries[0]
        assert entry.id == f"urn:newswatch:rule:air-defence:story:{ids['story']}"
        assert entry.title == "Allies add Patriot batteries"  # the story's first article
        assert entry.link == "https://a.example/1"
        assert "Patriot batteries" in entry.summary  # feedparser drops the <mark> it sanitises
        raw = await (await client.get(url("air-defence", "atom"))).text()
        assert "&lt;mark&gt;Patriot&lt;/mark&gt;" in raw  # the snippet marks the matched terms
        assert {t.term for t in entry.tags} == {"wire-a", "wire-b", "wire-c"}
        assert entry.updated == "2026-12-05T09:00:00Z"  # the newest matching article
        document = await fetch(client, "air-defence", "json")
        assert document["version"] == "https://jsonfeed.org/version/1.1"
        assert [i["id"] for i in document["items"]] == [entry.id]
        assert document["items"][0]["url"] == "https://a.example/1"
        assert "<mark>Patriot</mark>" in document["items"][0]["content_html"]
        navy = await fetch(client, "navy", "atom")
        assert [e.title for e in navy.entries] == ["Baltic drills begin"]
        # the same ids on every fetch
        again = await fetch(client, "air-defence", "atom")
        assert [e.id for e in again.entries] == [entry.id]

    with_client(k.site(), body, signed=False)


def test_a_wrong_missing_or_other_rules_token_answers_404_like_no_rule(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        wrong = [
            "/feeds/air-defence.atom",
            "/feeds/air-defence.atom?token=",
            url("air-defence", "atom", "x" * 24),
            url("air-defence", "json", feed_token(SECRET, "navy")),
            url("air-defence", "atom", feed_token("another-secret-0123456789", "air-defence")),
            url("no-such-rule", "atom"),
            url("air-defence", "rss", feed_token(SECRET, "air-defence")),
        ]
        bodies = set()
        for path in wrong:
            answer = await client.get(path)
            assert answer.status == 404, path
            assert answer.headers["Referrer-Policy"] == "no-referrer"
            bodies.add(await answer.text())
        assert len(bodies) == 1  # nothing tells a wrong token from a missing rule

    with_client(k.site(), body, signed=False)


def test_entry_ids_stay_when_a_later_copy_merges_two_stories(tmp_path: Path) -> None:
    k: Kit = kit(tmp_path)
    first, second = halves(WIRE)
    k.store("https://a.example/1", "wire-a", "First half", first, k.now - timedelta(hours=3))
    k.store("https://b.example/1", "wire-b", "Second half", edited(second),
            k.now - timedelta(hours=2))  # fmt: skip
    k.store("https://a.example/9", "wire-a", "Elsewhere", OTHER, k.now - timedelta(hours=9))
    seen: list[list[str]] = []

    async def read(client: TestClient[Any, Any]) -> None:
        atom = await fetch(client, "only-b", "atom")  # 'alliance': every article
        document = await fetch(client, "only-b", "json")
        assert [e.id for e in atom.entries] == [i["id"] for i in document["items"]]
        seen.append([e.id for e in atom.entries])

    with_client(k.site(), read, signed=False)
    assert len(seen[0]) == 1  # only-b reads wire-b and wire-c only
    with_client(k.site(), read, signed=False)
    k.store("https://c.example/1", "wire-c", "Original", WIRE, k.now - timedelta(hours=1))
    with_client(k.site(), read, signed=False)
    assert seen[0] == seen[1]
    # the original joined the two halves into the older story: its id was already known
    assert len(seen[2]) == 1
    before = {int(i.rsplit(":", 1)[1]) for i in seen[0]}
    assert int(seen[2][0].rsplit(":", 1)[1]) <= min(before)

    merged: list[list[str]] = []

    async def every_rule(client: TestClient[Any, Any]) -> None:
        merged.append([e.id for e in (await fetch(client, "air-defence", "atom")).entries])

    with_client(k.site(), every_rule, signed=False)
    assert merged[0] == ["urn:newswatch:rule:air-defence:story:1"]


def test_hostile_titles_and_texts_are_escaped_in_feeds(tmp_path: Path) -> None:
    k = kit(tmp_path)
    k.store("https://a.example/x", "wire-a", '<script>alert("t")</script> Patriot & co',
            '<img src=x onerror=alert(1)> Patriot ' + WIRE)  # fmt: skip

    async def body(client: TestClient[Any, Any]) -> None:
        raw = await (await client.get(url("air-defence", "atom"))).text()
        assert "<script>" not in raw and "<img" not in raw
        assert "&lt;script&gt;" in raw
        parsed = await fetch(client, "air-defence", "atom")
        assert parsed.entries[0].title == '<script>alert("t")</script> Patriot & co'
        document = await fetch(client, "air-defence", "json")
        assert "<img" not in document["items"][0]["content_html"]
        assert "&lt;img" in document["items"][0]["content_html"]

    with_client(k.site(), body, signed=False)
