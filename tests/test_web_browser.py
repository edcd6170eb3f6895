"""The web view in a real browser: Playwright for Python driving Debian's chromium
(/usr/bin/chromium; never `playwright install`). Sign-in right and wrong, every page (a PNG of
each goes to docs/screenshots/), a story shown once with its outlets, terms marked, the rule
bench with a broken query showing its column, hostile input inert, a phone's width, dark mode."""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from servers import free_port
from webkit import PASSWORD, WIRE, Kit, kit, newsroom

from crawler.archive import Archive
from scheduler.web.app import WebServer

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# docs/screenshots/ is refreshed with NEWSWATCH_SCREENSHOTS=1; other runs photograph into a
# temporary folder (the pages still render and are photographed; the repository stays as it is)
SCREENSHOTS = (
    Path(__file__).resolve().parent.parent / "docs" / "screenshots"
    if os.environ.get("NEWSWATCH_SCREENSHOTS")
    else Path(tempfile.mkdtemp(prefix="newswatch-screenshots-"))
)
HOSTILE = '<img src=x onerror="window.__pwned=1"> Patriot <script>window.__pwned=2</script>'

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"
)
sync_api = pytest.importorskip("playwright.sync_api")


class ServedSite:
    """The web view on a free local port, on its own loop in a thread (the archive opened
    there: one connection per thread)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.listen = f"127.0.0.1:{free_port()}"
        self.url = f"http://{self.listen}"
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        archive = Archive(self.config.archive_path)
        k = Kit(self.config, archive)
        server = WebServer(self.listen, k.site())
        self.loop.run_until_complete(server.start())
        self.ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(server.close())
        archive.close()

    def __enter__(self) -> ServedSite:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServedSite, dict[str, Any]]]:
    k = kit(tmp_path_factory.mktemp("web"))
    ids = newsroom(k)
    k.archive.close()
    with ServedSite(k.config) as site:
        yield site, ids


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def signed_in_page(browser: Any, url: str, **context: Any) -> Any:
    page = browser.new_context(**context).new_page()
    page.goto(url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


def test_sign_in_wrong_then_right(browser: Any, served: Any) -> None:
    site, _ = served
    page = browser.new_context().new_page()
    page.goto(site.url + "/sources")
    assert page.url.startswith(site.url + "/login")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert page.locator("p.error").inner_text() == "Wrong password."
    page.screenshot(path=str(SCREENSHOTS / "login.png"))
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/sources")  # back where it was going
    assert page.locator("h1").inner_text() == "Sources"
    page.click("text=Sign out")
    page.wait_for_url(site.url + "/login")
    page.goto(site.url + "/")
    assert page.url.startswith(site.url + "/login")
    page.context.close()


def test_every_page_renders_and_is_photographed(browser: Any, served: Any) -> None:
    site, ids = served
    page = signed_in_page(browser, site.url, viewport={"width": 1100, "height": 800})
    shots = {
        "overview": "/",
        "sources": "/sources",
        "search": "/search?q=Patriot+OR+sonar",
        "story": f"/stories/{ids['story']}",
        "article": f"/articles/{ids['c']}?q=Brussels",
        "rules": "/rules",
        "rule": "/rules/air-defence?since=7d",
        "alerts": "/alerts",
    }
    for name, path in shots.items():
        answer = page.goto(site.url + path)
        assert answer is not None and answer.status == 200, path
        assert page.locator("h1").count() == 1
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    page.context.close()


def test_a_story_is_shown_once_with_its_outlets_and_terms_marked(browser: Any, served: Any) -> None:
    site, _ = served
    page = signed_in_page(browser, site.url)
    page.goto(site.url + "/search?q=Patriot")
    lines = page.locator("li.story")
    assert lines.count() == 1  # the wire story of 3 outlets, once
    wire = lines.filter(has_text="Patriot batteries for the east")
    assert wire.locator("a.outlets").inner_text() == "+2 outlets: wire-a, wire-b"
    assert wire.locator("mark").all_inner_texts() == ["patriot"]
    wire.locator("a.outlets").click()
    assert page.locator("ol.stories > li").count() == 3
    page.locator("a.title").first.click()
    marks = {m.lower() for m in page.locator(".text mark").all_inner_texts()}
    assert "patriot" in marks
    page.context.close()


def test_the_rule_bench_shows_a_broken_querys_column(browser: Any, served: Any) -> None:
    site, _ = served
    page = signed_in_page(browser, site.url)
    page.goto(site.url + "/rules/air-defence?since=7d")
    assert page.locator("svg.chart rect.bar").count() == 8
    page.fill("textarea[name=q]", "Patriot AND (air")
    page.click("text=Run over the archive")
    error = page.locator("div.error")
    assert "at column" in error.inner_text()
    assert page.locator("pre.pointer").inner_text().splitlines()[1].endswith("^")
    page.screenshot(path=str(SCREENSHOTS / "rule-broken-query.png"), full_page=True)
    page.fill("textarea[name=q]", "Patriot OR Baltic")
    page.click("text=Run over the archive")
    assert "[[rules]]" in page.locator("textarea.toml").input_value()
    page.context.close()


def test_hostile_input_stays_text(browser: Any, served: Any) -> None:
    site, ids = served
    # stored now (another connection to the same archive), after the screenshots were taken
    k = Kit(site.config, Archive(site.config.archive_path))
    ids["hostile"] = k.store(
        "https://d.example/x", "wire-c", HOSTILE, f"{HOSTILE} {WIRE[:200]}",
        k.now - timedelta(hours=30),
    ).article_id  # fmt: skip
    k.archive.close()
    page = signed_in_page(browser, site.url)
    dialogs: list[str] = []

    def dismiss(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    for path in (f"/articles/{ids['hostile']}", "/search?q=Patriot",
                 "/search?q=<script>window.__pwned=3</script>", "/"):  # fmt: skip
        page.goto(site.url + path)
        assert page.evaluate("window.__pwned") is None, path
        assert page.locator("img[src=x]").count() == 0
    page.goto(site.url + f"/articles/{ids['hostile']}")
    assert "<script>" in page.locator("h1").inner_text()  # shown as text
    assert not dialogs
    page.context.close()


def test_a_phones_width_and_dark_mode(browser: Any, served: Any) -> None:
    site, ids = served
    page = signed_in_page(
        browser, site.url, viewport={"width": 390, "height": 844}, color_scheme="dark"
    )
    for path in ("/", "/sources", "/search?q=Patriot", f"/articles/{ids['c']}",
                 "/rules/air-defence", "/alerts"):  # fmt: skip
        page.goto(site.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(17, 20, 24)"  # the dark palette
    page.goto(site.url + "/search?q=Patriot")
    page.screenshot(path=str(SCREENSHOTS / "phone-search-dark.png"), full_page=True)
    page.context.close()
