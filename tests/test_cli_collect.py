"""Collection end to end: article pages for feed items, sitemap and site sources, the topic
filter, politeness. Real `newswatch crawl` subprocesses against the local fixture site."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nw import db_rows, json_out, newswatch, write_config
from servers import FixtureSite

NATO_PAGE = "/news/2025/06/nato-air-defence.html"
NATO_TITLE = "NATO allies agree to boost air defence on eastern flank"
NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
{urls}
</urlset>
"""
NEWS_URL = """  <url><loc>{{{{SITE}}}}{path}</loc>
    <news:news><news:publication><news:name>Example</news:name>
      <news:language>en</news:language></news:publication>
      <news:publication_date>2025-06-09T12:00:00+02:00</news:publication_date>
      <news:title>{title}</news:title></news:news></url>"""


def sitemap(*pages: tuple[str, str]) -> str:
    return NEWS_SITEMAP.format(urls="\n".join(NEWS_URL.format(path=p, title=t) for p, t in pages))


def source(kind: str, name: str, url: str, extra: str = "") -> str:
    return f'[[sources]]\nname = "{name}"\n{kind} = "{url}"\nevery = "1h"\n{extra}\n'


def export(config: Path) -> dict[str, dict]:
    result = newswatch(config, "export")
    assert result.returncode == 0, result.stderr
    import json

    records = [json.loads(line) for line in result.stdout.splitlines()]
    return {r["url"]: r for r in records}


def test_feed_items_get_their_page_once(tmp_path: Path, site: FixtureSite) -> None:
    config = write_config(tmp_path, source("feed", "daily", f"{site.url}/feeds/defence.xml"))
    first = newswatch(config, "crawl")
    assert first.returncode == 0, first.stderr
    records = export(config)
    nato = records[site.url + NATO_PAGE]
    assert nato["title"] == NATO_TITLE  # the feed's title
    assert nato["author"] == "Jane Kowalski"  # from the page
    assert nato["language"] == "en"
    assert "Poland, Lithuania and Slovakia" in nato["text"]  # the page's body, not the summary
    assert nato["summary"].startswith("NATO")  # the feed's summary
    assert nato["published"] == "2025-06-09T10:00:00Z"
    assert site.hits(NATO_PAGE) == 1

    # a second pass: the listing changed, but no known page is fetched again
    site.set(
        "/feeds/defence.xml",
        (Path(__file__).parent / "fixtures/site/feeds/defence-utm.xml")
        .read_text()
        .replace("{{SITE}}", site.url),
    )
    second = newswatch(config, "crawl", "--all")
    assert second.returncode == 0, second.stderr
    assert site.hits(NATO_PAGE) == 1
    assert site.hits("/news/2025/06/library-reopens.html") == 1  # the one new item
    [run] = db_rows(tmp_path / "nw.db", "SELECT * FROM runs ORDER BY id DESC LIMIT 1")
    assert (run["fetched"], run["new"], run["pages"]) == (5, 1, 1)


def test_a_failing_page_keeps_the_feed_fields_and_is_retried(
    tmp_path: Path, site: FixtureSite
) -> None:
    site.set(NATO_PAGE, body="down for maintenance", status=500)
    config = write_config(tmp_path, source("feed", "daily", f"{site.url}/feeds/defence.xml"))
    assert newswatch(config, "crawl").returncode == 0
    nato = export(config)[site.url + NATO_PAGE]
    assert nato["title"] == NATO_TITLE and nato["author"] is None  # the feed's fields
    pending = db_rows(tmp_path / "nw.db", "SELECT url, attempts, last_error FROM pending_pages")
    assert [(p["attempts"], "500" in p["last_error"]) for p in pending] == [(1, True)]

    site.remove(NATO_PAGE)
    site.restore(NATO_PAGE)
    assert newswatch(config, "crawl", "--all").returncode == 0
    nato = export(config)[site.url + NATO_PAGE]
    assert nato["author"] == "Jane Kowalski"  # the page came in on the retry
    assert db_rows(tmp_path / "nw.db", "SELECT * FROM pending_pages") == []


def test_news_sitemap_source(tmp_path: Path, site: FixtureSite) -> None:
    site.set(
        "/sitemap-news.xml",
        sitemap((NATO_PAGE, "NATO boosts air defence"), ("/news/2025/06/radar.html", "Radar")),
        content_type="application/xml",
    )
    config = write_config(tmp_path, source("sitemap", "wire", f"{site.url}/sitemap-news.xml"))
    first = newswatch(config, "crawl")
    assert first.returncode == 0, first.stderr
    records = export(config)
    assert set(records) == {site.url + NATO_PAGE, site.url + "/news/2025/06/radar.html"}
    nato = records[site.url + NATO_PAGE]
    assert nato["title"] == NATO_TITLE  # the page's own headline
    assert nato["published"] == "2025-06-09T10:00:00Z"  # the page's own time wins
    assert nato["author"] == "Jane Kowalski"

    # unchanged: a conditional GET answered 304, nothing fetched
    site.clear()
    assert newswatch(config, "crawl", "--all").returncode == 0
    [poll] = [r for r in site.requests if r.path == "/sitemap-news.xml"]
    assert poll.headers.get("If-None-Match")
    assert not any(r.path.startswith("/news/") for r in site.requests)

    # one entry more: only it is fetched
    site.set(
        "/sitemap-news.xml",
        sitemap(
            (NATO_PAGE, "NATO boosts air defence"),
            ("/news/2025/06/radar.html", "Radar"),
            ("/news/2025/06/shares-climb.html", "Shares"),
        ),
        content_type="application/xml",
    )
    site.clear()
    assert newswatch(config, "crawl", "--all").returncode == 0
    assert [r.path for r in site.requests if r.path.startswith("/news/")] == [
        "/news/2025/06/shares-climb.html"
    ]


def test_sitemap_index_and_gzip(tmp_path: Path, site: FixtureSite) -> None:
    import gzip

    child = sitemap((NATO_PAGE, "NATO")).replace("{{SITE}}", site.url).encode()
    site.set("/sitemaps/news-1.xml.gz", body=gzip.compress(child), content_type="application/gzip")
    site.set(
        "/sitemap-index.xml",
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>{{SITE}}/sitemaps/news-1.xml.gz</loc>"
        "<lastmod>2025-06-09</lastmod></sitemap></sitemapindex>",
        content_type="application/xml",
    )
    config = write_config(tmp_path, source("sitemap", "wire", f"{site.url}/sitemap-index.xml"))
    result = newswatch(config, "crawl")
    assert result.returncode == 0, result.stderr
    assert list(export(config)) == [site.url + NATO_PAGE]


def test_site_section_source(tmp_path: Path, site: FixtureSite) -> None:
    config = write_config(
        tmp_path,
        source("site", "section", f"{site.url}/news/", "follow = ['/news/\\d{4}/']"),
    )
    first = newswatch(config, "crawl")
    assert first.returncode == 0, first.stderr
    records = export(config)
    assert len(records) == 8
    assert records[site.url + NATO_PAGE]["title"] == NATO_TITLE
    # the second pass fetches the section page only
    site.clear()
    assert newswatch(config, "crawl", "--all").returncode == 0
    assert [r.path for r in site.requests if r.path != "/robots.txt"] == ["/news/"]


def test_off_topic_pages_are_remembered_and_never_fetched_again(
    tmp_path: Path, site: FixtureSite
) -> None:
    body = "[topic]\nquery = 'NATO'\n\n" + source("site", "section", f"{site.url}/news/")
    config = write_config(tmp_path, body)
    assert newswatch(config, "crawl").returncode == 0
    titles = {r["title"] for r in export(config).values()}
    assert titles == {NATO_TITLE, "NATO tests new air defense radar"}
    [run] = db_rows(tmp_path / "nw.db", "SELECT * FROM runs")
    assert (run["new"], run["off_topic"]) == (2, 6)
    site.clear()
    site.set(
        "/news/",
        (Path(__file__).parent / "fixtures/site/news/index.html")
        .read_text()
        .replace("</ul>", "</ul><!-- changed -->"),
    )
    assert newswatch(config, "crawl", "--all").returncode == 0
    assert [r.path for r in site.requests if r.path.startswith("/news/2025")] == []


def test_retry_after_short_wait_is_honoured_within_the_pass(
    tmp_path: Path, site: FixtureSite
) -> None:
    site.set_sequence(
        "/feeds/busy.xml",
        [
            {"status": 429, "body": "slow down", "headers": {"Retry-After": "2"}},
            {
                "status": 200,
                "body": (Path(__file__).parent / "fixtures/site/feeds/defence.xml").read_text(),
                "content_type": "application/xml",
            },
        ],
    )
    config = write_config(tmp_path, source("feed", "busy", f"{site.url}/feeds/busy.xml"))
    result = newswatch(config, "crawl")
    assert result.returncode == 0, result.stderr
    polls = [r for r in site.requests if r.path == "/feeds/busy.xml"]
    assert len(polls) == 2
    assert polls[1].time - polls[0].time >= 1.9
    assert len(export(config)) == 4


def test_retry_after_long_wait_defers_the_source(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/feeds/busy.xml", "busy", status=503, headers={"Retry-After": "7200"})
    config = write_config(
        tmp_path,
        source("feed", "busy", f"{site.url}/feeds/busy.xml").replace('"1h"', '"10m"'),
    )
    result = newswatch(config, "crawl")
    assert result.returncode == 1  # the only source failed
    [state] = json_out(newswatch(config, "sources", "--json"))
    assert "503" in state["last_error"] and "7200" in state["last_error"]
    due = datetime.fromisoformat(state["next_due"].replace("Z", "+00:00"))
    assert due - datetime.now(UTC) > timedelta(minutes=110)  # not after 10 minutes
    assert len([r for r in site.requests if r.path == "/feeds/busy.xml"]) == 1


def test_one_delay_per_host_across_sources(tmp_path: Path, site: FixtureSite) -> None:
    body = (
        '[crawl]\ndelay = "1s"\nfetch_articles = false\n\n'
        + source("feed", "a", f"{site.url}/feeds/defence.xml")
        + source("feed", "b", f"{site.url}/feeds/other-outlet.xml")
        + source("feed", "c", f"{site.url}/feeds/malformed.xml")
    )
    config = write_config(tmp_path, body)
    started = time.monotonic()
    assert newswatch(config, "crawl").returncode == 0
    assert time.monotonic() - started >= 2.0
    times = sorted(r.time for r in site.requests)  # robots.txt + 3 feeds, one host
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.9, gaps
