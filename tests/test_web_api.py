"""The read-only API and OPML (scheduler/web/api.py, opml.py), and the commands beside them:
the API answers what the commands print with --json; `rules feeds`, `sources export
--format opml`, `sources import FILE` run as real processes."""

from __future__ import annotations

import io
import json
import tomllib
from pathlib import Path
from typing import Any

import feedparser
import listparser
from aiohttp.test_utils import TestClient
from nw import json_out, newswatch
from webkit import API_TOKEN, PASSWORD, SECRET, kit, newsroom, with_client

from crawler.clock import utcnow

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def test_the_api_needs_a_token_and_a_wrong_one_answers_like_none(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        for path in ("/api/v1/articles?q=nato", "/api/v1/sources", "/api/v1/alerts",
                     "/api/v1/stories/1", "/sources.opml"):  # fmt: skip
            answers = [
                await client.get(path),
                await client.get(path, headers={"Authorization": "Bearer wrong-token"}),
                await client.get(path, headers={"Authorization": f"Basic {API_TOKEN}"}),
                await client.get(path, headers={"Authorization": f"Bearer {PASSWORD}"}),
            ]
            assert [a.status for a in answers] == [401] * 4, path
            assert len({await a.text() for a in answers}) == 1
            assert answers[0].headers["WWW-Authenticate"].startswith("Bearer")
            assert (await client.get(path, headers=BEARER)).status == 200, path

    with_client(k.site(), body, signed=False)


def test_the_api_answers_what_the_commands_print_with_json(tmp_path: Path) -> None:
    k = kit(tmp_path)
    ids = newsroom(k)
    config = k.config.path
    k.archive.close()
    cli = {
        "/api/v1/articles?q=patriot+OR+baltic": json_out(
            newswatch(config, "search", "patriot OR baltic", "--json")
        ),
        "/api/v1/articles?q=alliance&limit=2": json_out(
            newswatch(config, "search", "alliance", "--limit", "2", "--json")
        ),
        "/api/v1/sources": json_out(newswatch(config, "sources", "--json")),
        "/api/v1/alerts": json_out(newswatch(config, "alerts", "--json")),
    }
    k = kit(tmp_path)

    async def body(client: TestClient[Any, Any]) -> None:
        for path, expected in cli.items():
            answer = await client.get(path, headers=BEARER)
            assert answer.status == 200
            assert await answer.json() == expected, path
        story = await (await client.get(f"/api/v1/stories/{ids['story']}", headers=BEARER)).json()
        assert story["id"] == str(ids["story"])
        assert [a["source"] for a in story["articles"]] == ["wire-a", "wire-b", "wire-c"]
        bad = await client.get("/api/v1/articles?q=(nato", headers=BEARER)
        assert bad.status == 400 and "column" in (await bad.json())["error"]
        assert (await client.get("/api/v1/articles", headers=BEARER)).status == 400
        assert (await client.get("/api/v1/articles?q=x&limit=0", headers=BEARER)).status == 400
        assert (await client.get("/api/v1/stories/999", headers=BEARER)).status == 404

    with_client(k.site(clock=utcnow), body, signed=False)


def test_sources_opml_with_a_session_or_a_token(tmp_path: Path) -> None:
    k = kit(tmp_path)

    async def body(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/sources.opml")
        assert answer.status == 200  # signed in
        parsed = listparser.parse(await answer.read())
        assert not parsed.bozo
        assert [f.url for f in parsed.feeds] == [
            "http://127.0.0.1:9/a.xml",
            "http://127.0.0.1:9/b.xml",
            "http://127.0.0.1:9/c.xml",
        ]
        assert b'version="2.0"' in await answer.read()

    with_client(k.site(), body)


def test_rules_feeds_prints_working_feed_urls(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)
    rows = json_out(newswatch(k.config.path, "rules", "feeds", "--json"))
    assert [r["rule"] for r in rows] == ["air-defence", "navy", "only-b"]
    human = newswatch(k.config.path, "rules", "feeds")
    assert human.returncode == 0 and rows[0]["atom"] in human.stdout
    assert SECRET not in human.stdout
    assert rows[0]["atom"].startswith("http://127.0.0.1:9180/feeds/air-defence.atom?token=")

    async def body(client: TestClient[Any, Any]) -> None:
        for row in rows:
            for kind in ("atom", "json"):
                path = row[kind].removeprefix("http://127.0.0.1:9180")
                answer = await client.get(path)
                assert answer.status == 200, path
        first = await (await client.get(rows[0]["atom"].split("9180")[1])).read()
        assert feedparser.parse(io.BytesIO(first)).entries

    with_client(k.site(), body, signed=False)
    no_web = tmp_path / "plain.toml"
    no_web.write_text('[archive]\npath = "nw.db"\n', encoding="utf-8")
    result = newswatch(no_web, "rules", "feeds")
    assert result.returncode == 2 and "[web]" in result.stderr


HOSTILE_OPML = """<?xml version="1.0"?>
<opml version="1.0"><head><title>Reader</title></head><body>
<outline text="Defence">
  <outline text="Wire A" title="Wire A" type="rss" xmlUrl="http://127.0.0.1:9/a.xml"/>
  <outline text="Evil&#10;[[rules]]&#10;name = &quot;pwn&quot; &lt;script&gt;"
           title="Evil&#10;[[rules]]&#10;name = &quot;pwn&quot; &lt;script&gt;" type="rss"
           xmlUrl="https://evil.example/feed.xml"/>
  <outline text="Wire A" title="Wire A" type="rss" xmlUrl="https://other.example/a.xml"/>
  <outline text="bad" type="rss" xmlUrl="javascript:alert(1)"/>
  <outline text="Éditions" title="Éditions" type="rss" xmlUrl="https://fr.example/rss"/>
</outline></body></opml>""".encode()


def test_sources_export_and_import(tmp_path: Path) -> None:
    k = kit(tmp_path)
    exported = newswatch(k.config.path, "sources", "export", "--format", "opml")
    assert exported.returncode == 0
    parsed = listparser.parse(exported.stdout.encode())
    assert len(parsed.feeds) == 3 and parsed.meta.title == "newswatch sources"
    assert "sitemap.xml" in exported.stdout  # the sitemap as a link outline
    # an OPML of our own sources adds nothing
    own = tmp_path / "own.opml"
    own.write_text(exported.stdout, encoding="utf-8")
    result = newswatch(k.config.path, "sources", "import", str(own))
    assert result.returncode == 0 and result.stdout == "" and "0 feeds" in result.stderr
    hostile = tmp_path / "reader.opml"
    hostile.write_bytes(HOSTILE_OPML)
    result = newswatch(k.config.path, "sources", "import", str(hostile))
    assert result.returncode == 0, result.stderr
    added = tomllib.loads(result.stdout)["sources"]
    assert [(s["name"], s["feed"]) for s in added] == [
        ("evil-rules-name-pwn-script", "https://evil.example/feed.xml"),
        ("wire-a-2", "https://other.example/a.xml"),  # the name wire-a is taken
        ("editions", "https://fr.example/rss"),
    ]
    assert "rules" not in tomllib.loads(result.stdout)  # a title cannot add a table
    # pasted into the config, it loads
    config = k.config.path
    config.write_text(config.read_text(encoding="utf-8") + "\n" + result.stdout, encoding="utf-8")
    assert newswatch(config, "check").returncode == 0
    for bad in (tmp_path / "missing.opml", own.with_suffix(".txt")):
        if bad.suffix == ".txt":
            bad.write_bytes(b"\x00\x01 not xml at all")
        result = newswatch(config, "sources", "import", str(bad))
        assert result.returncode == 2, result
        assert result.stderr.startswith("newswatch: ") and "Traceback" not in result.stderr
    assert json.loads(json.dumps(added))  # plain values
