"""The rule bench (/rules, /rules/NAME): the same answers as `newswatch rules test`, a chart of
matches per day, an edited query never saved, its error with the column, "copy as TOML"."""

from __future__ import annotations

import html
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from nw import json_out, newswatch
from webkit import OTHER, kit, newsroom, with_client

from crawler.clock import utcnow


def count_line(text: str) -> tuple[int, int]:
    found = re.search(r"(\d+) articles? in (\d+) stor", text)
    assert found, text
    return int(found[1]), int(found[2])


def test_the_bench_answers_as_rules_test(tmp_path: Path) -> None:
    k = kit(tmp_path)
    k.now = utcnow()
    newsroom(k)
    k.store("https://b.example/old", "wire-b", "Old alliance news", OTHER + " more",
            k.now - timedelta(days=40))  # fmt: skip
    path = k.config.path
    k.archive.close()
    expected = {
        name: json_out(newswatch(path, "rules", "test", name, "--json"))
        for name in ("air-defence", "navy", "only-b")
    }
    assert [len(v) for v in expected.values()] == [3, 1, 2]  # only-b: wire-b and wire-c
    k = kit(tmp_path)
    k.now = utcnow()

    async def body(client: TestClient[Any, Any]) -> None:
        listing = await (await client.get("/rules")).text()
        for name in expected:
            assert f'href="/rules/{name}"' in listing
        for name, articles in expected.items():
            text = await (await client.get(f"/rules/{name}")).text()
            stories = {k.archive.article_story(a["id"]) for a in articles}
            assert count_line(text) == (len(articles), len(stories)), name
            for story in stories:
                assert text.count(f'href="/articles/{story}') <= 1  # a story shown once
        text = await (await client.get("/rules/air-defence")).text()
        bars = re.findall(r"<title>(\d{4}-\d\d-\d\d): (\d+)</title>", text)
        assert len(bars) == 31  # 30 days back and today
        assert dict(bars)[k.now.date().isoformat()] == "3"
        assert sum(int(n) for _, n in bars) == 3
        assert 'role="img"' in text
        longer = await (await client.get("/rules/only-b?since=60d")).text()
        assert count_line(longer)[0] == 3  # the 40-day-old article too
        assert (await client.get("/rules/no-such-rule")).status == 404

    with_client(k.site(clock=utcnow), body)


def test_an_edited_query_runs_unsaved_with_its_toml_and_errors(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        edit = 'Baltic OR "air defence" OR "it\'\'\'s" OR Patriot\\x'
        answer = await client.get("/rules/navy", params={"q": edit, "since": "7d"})
        assert answer.status == 200
        text = await answer.text()
        assert "with the edited query" in text
        assert count_line(text) == (4, 2)  # the wire story (3 outlets) and the navy story
        toml = html.unescape(re.search(r'<textarea class="toml"[^>]*>(.*?)</textarea>', text,
                                       re.S)[1])  # fmt: skip
        rule = tomllib.loads(toml)["rules"][0]
        assert rule == {"name": "navy", "query": edit, "notify": ["hook"]}
        assert k.config.rule("navy").query_text == "Baltic AND (ships OR sonar)"  # unsaved
        # the unedited rule shows no TOML
        plain = await (await client.get("/rules/navy")).text()
        assert 'class="toml"' not in plain
        broken = await client.get("/rules/navy", params={"q": "Baltic AND (ships OR"})
        assert broken.status == 400
        text = await broken.text()
        assert "at column" in text and "Bad query" in text
        pointer = re.search(r'<pre class="pointer">(.*?)</pre>', text, re.S)[1]  # type: ignore[index]
        query_line, caret = html.unescape(pointer).split("\n")
        assert query_line == "Baltic AND (ships OR" and caret.endswith("^")
        column = int(re.search(r"at column (\d+)", text)[1])  # type: ignore[index]
        assert len(caret) == column

    with_client(k.site(), body)
