"""Hostile input from the web reaches the pages escaped: a script in a query, in an article's
title, text and author, in a feed entry's title (what the archive keeps of a feed), and a
`javascript:` link."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from webkit import WIRE, kit, with_client

SCRIPT = '<script>alert("x")</script>'


def test_scripts_from_the_web_are_escaped_on_every_page(tmp_path: Path) -> None:
    k = kit(tmp_path)
    stored = k.store(
        "javascript:alert(1)//a.example/1",
        "wire-a",
        f"{SCRIPT} Patriot \"quoted\" <b>bold</b> & 'single'",
        f"<img src=x onerror=alert(1)> Patriot {SCRIPT}\n{WIRE}",
        summary=f"<iframe src=//evil.example></iframe> {SCRIPT}",
    )
    article, story = stored.article_id, stored.story_id
    pages = [
        "/",
        "/search?q=Patriot",
        f"/search?q={SCRIPT}",
        f"/search?q=Patriot&source={SCRIPT}",
        f"/stories/{story}",
        f"/articles/{article}",
        f"/articles/{article}?q={SCRIPT}",
        "/rules/air-defence",
        f"/rules/air-defence?q={SCRIPT}",
        f'/rules/air-defence?q=Patriot OR "{SCRIPT}"',
        f"/rules/air-defence?since={SCRIPT}",
        "/alerts",
        f"/login?next={SCRIPT}",
    ]

    async def body(client: TestClient[Any, Any]) -> None:
        for path in pages:
            answer = await client.get(path)
            assert answer.status in (200, 400), path
            text = await answer.text()
            for raw in (
                "<script",
                "<img",
                "<iframe",
                "<b>bold",
                'href="javascript',
            ):
                assert raw not in text, (path, raw)
        text = await (await client.get(f"/articles/{article}")).text()
        assert "&lt;script&gt;" in text and "&lt;img src=x" in text
        assert 'href="#"' in text  # the javascript: link is not a link
        text = await (await client.get(f"/search?q={SCRIPT}")).text()
        assert "&lt;script&gt;" in text  # the query, shown back escaped (it is a bad query)

    with_client(k.site(), body)
