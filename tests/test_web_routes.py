"""The web view's routes with aiohttp's test client over a real socket, on a real SQLite
archive filled through the archive API as the pipeline fills it (tests/webkit.py)."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from webkit import API_TOKEN, PASSWORD, SECRET, kit, newsroom, origin, sign_in, with_client

from crawler.archive import Archive
from scheduler.web.auth import SESSION_COOKIE

PAGES = ["/", "/sources", "/search?q=patriot", "/stories/1", "/articles/1", "/rules",
         "/rules/air-defence", "/alerts"]  # fmt: skip


def test_healthz_and_metrics_answer_as_before_with_and_without_web(tmp_path: Path) -> None:
    k = kit(tmp_path)

    async def body(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/healthz")
        assert answer.status == 200
        assert answer.content_type == "application/json"
        assert (await answer.json()) == {"status": "ok", "scheduler": "running"}
        answer = await client.get("/metrics")
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        assert "newswatch_articles_total" in await answer.text()
        assert (await client.head("/healthz")).status == 200
        assert (await client.post("/healthz", headers={"Origin": origin(client)})).status == 405

    with_client(k.site(), body, signed=False)
    with_client(k.site(options=None), body, signed=False)

    async def unhealthy(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/healthz")
        assert answer.status == 503
        assert (await answer.json())["status"] == "unhealthy"
        assert (await client.get("/login")).status == 404  # no [web]: no web view

    with_client(k.site(options=None, health=lambda: (False, {})), unhealthy, signed=False)


def test_every_page_needs_the_session_and_shows_no_data_without_it(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        for path in PAGES:
            answer = await client.get(path, allow_redirects=False)
            assert answer.status == 303, path
            assert answer.headers["Location"].startswith("/login?next=")
            assert "Patriot" not in await answer.text()
        forged = {SESSION_COOKIE: "web.AAAAAA.forged"}
        answer = await client.get("/", cookies=forged, allow_redirects=False)
        assert answer.status == 303

    with_client(k.site(), body, signed=False)


def test_sign_in_right_and_wrong_and_out(tmp_path: Path) -> None:
    k = kit(tmp_path)

    async def body(client: TestClient[Any, Any]) -> None:
        assert await sign_in(client, "wrong") == 401
        assert (await client.get("/", allow_redirects=False)).status == 303
        answer = await client.post(
            "/login",
            data={"password": PASSWORD, "next": "/sources"},
            headers={"Origin": origin(client)},
            allow_redirects=False,
        )
        assert answer.status == 303
        assert answer.headers["Location"] == "/sources"
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
        assert PASSWORD not in cookie and SECRET not in cookie
        assert (await client.get("/", allow_redirects=False)).status == 200
        # never an open redirect
        answer = await client.post(
            "/login",
            data={"password": PASSWORD, "next": "//evil.example/x"},
            headers={"Origin": origin(client)},
            allow_redirects=False,
        )
        assert answer.headers["Location"] == "/"
        for target in ("https://evil.example/", "/\\evil.example", "/x\r\nSet-Cookie: a=b"):
            answer = await client.post(
                "/login",
                data={"password": PASSWORD, "next": target},
                headers={"Origin": origin(client)},
                allow_redirects=False,
            )
            assert answer.headers["Location"] == "/", target
        out = await client.post(
            "/logout", headers={"Origin": origin(client)}, allow_redirects=False
        )
        assert out.status == 303 and out.headers["Location"] == "/login"
        assert (await client.get("/", allow_redirects=False)).status == 303

    with_client(k.site(), body, signed=False)


def test_sign_in_is_rate_limited_even_for_the_right_password(tmp_path: Path) -> None:
    k = kit(tmp_path)
    clock = [1000.0]
    site = k.site(monotonic=lambda: clock[0])

    async def body(client: TestClient[Any, Any]) -> None:
        for _ in range(5):
            assert await sign_in(client, "guess") == 401
        answer = await client.post(
            "/login", data={"password": PASSWORD}, headers={"Origin": origin(client)},
            allow_redirects=False,
        )  # fmt: skip
        assert answer.status == 429
        assert int(answer.headers["Retry-After"]) > 0
        clock[0] += 15 * 60 + 1  # the window passed
        assert await sign_in(client) == 303

    with_client(site, body, signed=False)


def test_a_post_without_this_sites_origin_is_refused(tmp_path: Path) -> None:
    k = kit(tmp_path)

    async def body(client: TestClient[Any, Any]) -> None:
        for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}):
            answer = await client.post(
                "/login", data={"password": PASSWORD}, headers=headers, allow_redirects=False
            )
            assert answer.status == 403, headers
            assert "Set-Cookie" not in answer.headers
        answer = await client.post("/logout", allow_redirects=False)
        assert answer.status == 403

    with_client(k.site(), body, signed=False)


def test_pages_send_a_content_security_policy_and_never_show_a_secret(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        for path in [*PAGES, "/login", "/search?q=(((", "/rules/air-defence?q=NEAR("]:
            answer = await client.get(path)
            assert answer.status in (200, 400), path
            csp = answer.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
            text = await answer.text()
            for secret in (PASSWORD, SECRET, API_TOKEN):
                assert secret not in text, (path, secret)

    with_client(k.site(), body)


def test_overview_shows_sources_needing_attention_alerts_and_newest_stories(
    tmp_path: Path,
) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        text = await (await client.get("/")).text()
        attention = text.split("Sources needing attention")[1].split("<h2>")[0]
        assert "wire-b" in attention and "failing" in attention
        assert "HTTP 503 Service Unavailable" in attention
        assert "since 2026-12-05 11:10 UTC" in attention  # the first failed run of the streak
        assert "wire-a" not in attention
        assert "2 deliveries" in text  # the navy alert is two days old
        newest = text.split("Newest stories")[1]
        # one line for the wire story (its newest article), one for the navy story
        assert newest.count('class="story"') == 2
        assert "Patriot batteries for the east" in newest
        assert "+2 outlets: wire-a, wire-b" in newest

    with_client(k.site(), body)


def test_sources_page_shows_status_since_when_and_counts(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        text = await (await client.get("/sources")).text()
        rows = {m[0]: m[1] for m in re.findall(r'<tr id="source-([\w-]+)">(.*?)</tr>', text, re.S)}
        assert set(rows) == {"wire-a", "wire-b", "wire-c", "quiet"}
        assert ">ok<" in rows["wire-a"] and ">failing<" in rows["wire-b"]
        assert ">never run<" in rows["quiet"]
        assert "since 2026-12-05 11:10 UTC" in rows["wire-b"]
        assert "sitemap" in rows["quiet"] and "feed" in rows["wire-a"]
        nums = re.findall(r'<td class="num">(\d+)</td>', rows["wire-a"])
        assert nums == ["1", "2"]  # 24 h, 7 d
        assert "2026-12-05 11:15 UTC" in rows["wire-a"]  # next due

    with_client(k.site(), body)


def test_search_groups_by_story_marks_terms_and_reports_a_bad_query(tmp_path: Path) -> None:
    k = kit(tmp_path)
    ids = newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/search", params={"q": "patriot OR sonar"})
        assert answer.status == 200
        text = await answer.text()
        assert text.count('class="story"') == 2  # the wire story once, the navy story once
        assert f'href="/stories/{ids["story"]}">+2 outlets: wire-a, wire-b' in text
        assert "<mark>patriot</mark>" in text
        narrowed = await (await client.get("/search?q=patriot&source=wire-a")).text()
        assert narrowed.count('class="story"') == 1
        answer = await client.get("/search", params={"q": "patriot AND (air"})
        assert answer.status == 400
        text = await answer.text()
        assert "at column 13" in text and "Bad query" in text
        answer = await client.get("/search", params={"q": "patriot", "since": "soon"})
        assert answer.status == 400 and "since" in await answer.text()

    with_client(k.site(), body)


def test_story_and_article_pages(tmp_path: Path) -> None:
    k = kit(tmp_path)
    ids = newsroom(k)

    async def body(client: TestClient[Any, Any]) -> None:
        text = await (await client.get(f"/stories/{ids['story']}")).text()
        order = [text.index(t) for t in ("Allies add", "More air defence", "Patriot batteries for")]
        assert order == sorted(order)  # time order
        assert "3 articles from 3 outlets" in text
        assert 'href="https://c.example/1"' in text
        assert (await client.get("/stories/999")).status == 404
        text = await (await client.get(f"/articles/{ids['c']}?q=Brussels")).text()
        assert "<mark>Brussels</mark>" in text and "<mark>Patriot</mark>" in text
        assert 'href="/rules/air-defence">air-defence</a>' in text
        assert "navy" not in text.split("Rules it matched")[1].split("</section>")[0]
        assert "https://c.example/1" in text.split("Its URLs")[1]
        assert (await client.get("/articles/999")).status == 404

    with_client(k.site(), body)


def test_alerts_page_lists_deliveries(tmp_path: Path) -> None:
    k = kit(tmp_path)
    newsroom(k)
    row = k.archive.deliveries()[0]
    k.archive.mark_attempt_failed(row.id, k.now, "HTTP 404 Not Found", None)

    async def body(client: TestClient[Any, Any]) -> None:
        text = await (await client.get("/alerts")).text()
        assert text.count("<tr>") == 1 + 3
        assert "HTTP 404 Not Found" in text and "air-defence" in text and "hook" in text
        failed = await (await client.get("/alerts?status=failed")).text()
        assert failed.count("<tr>") == 1 + 1

    with_client(k.site(), body)


def test_with_a_reader_pages_read_in_their_own_thread(tmp_path: Path) -> None:
    """As `run` serves it: a second connection, opened and used in the web view's thread."""
    k = kit(tmp_path)
    ids = newsroom(k)
    opened: list[int] = []

    def reader() -> Archive:
        opened.append(threading.get_ident())
        return Archive(k.config.archive_path)

    site = k.site(reader=reader)

    async def body(client: TestClient[Any, Any]) -> None:
        text = await (await client.get("/search?q=patriot")).text()
        assert text.count('class="story"') == 1 and "+2 outlets: wire-a, wire-b" in text
        assert (await client.get(f"/stories/{ids['story']}")).status == 200
        assert (await client.get("/rules/air-defence")).status == 200
        await site.close()

    with_client(site, body)
    assert len(opened) == 1 and opened[0] != threading.get_ident()
