"""Hostile and broken input: each is recorded as its source's error (or a page's), never a
crash, and never stops the other sources. Real crawls against real local servers."""

from __future__ import annotations

from pathlib import Path

from conftest import FIXTURE_SITE
from hostile import (
    CHARSET_TITLE,
    HugeServer,
    SlowServer,
    TLSServer,
    add_binary,
    add_gone,
    add_redirect_loop,
    add_wrong_charset,
)
from nw import db_rows, fake_dns_pass, json_out, newswatch, write_config
from servers import FixtureSite


def feed(name: str, url: str) -> str:
    return f'[[sources]]\nname = "{name}"\nfeed = "{url}"\n\n'


def test_hostile_sources_are_errors_and_the_good_one_still_works(
    tmp_path: Path, site: FixtureSite
) -> None:
    defence = (FIXTURE_SITE / "feeds/defence.xml").read_bytes()
    with (
        TLSServer({"/feed.xml": defence}) as tls,
        SlowServer(bytes_per_second=16) as slow,
        SlowServer(mode="silent") as silent,
        HugeServer(3_000_000) as huge,
        HugeServer(3_000_000, content_length=False) as huge_unknown,
    ):
        body = (
            '[crawl]\ndelay = "0s"\ntimeout = "3s"\nmax_page_bytes = 1_000_000\n\n'
            + feed("good", f"{site.url}/feeds/defence.xml")
            + feed("tls", f"{tls.url}/feed.xml")
            + feed("slow", f"{slow.url}/feed.xml")
            + feed("silent", f"{silent.url}/feed.xml")
            + feed("huge", f"{huge.url}/feed.xml")
            + feed("huge-unknown", f"{huge_unknown.url}/feed.xml")
            + feed("loop", add_redirect_loop(site))
            + feed("binary", add_binary(site))
            + feed("gone", add_gone(site))
            + feed("html", f"{site.url}/feeds/not-a-feed.xml")
        )
        config = write_config(tmp_path, body)
        result = newswatch(config, "crawl", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    sources = {s["name"]: s for s in json_out(newswatch(config, "sources", "--json"))}
    assert sources["good"]["status"] == "ok" and sources["good"]["articles_24h"] == 4
    expected = {
        "tls": "certificate",
        "slow": "did not answer in time",
        "silent": "did not answer in time",
        "huge": "max_page_bytes",
        "huge-unknown": "max_page_bytes",
        "loop": "redirect",
        "binary": "not a feed",
        "gone": "410",
        "html": "not a feed",
    }
    for name, words in expected.items():
        state = sources[name]
        assert state["status"] == "error", (name, state)
        assert words in state["last_error"], (name, state["last_error"])
        assert state["consecutive_failures"] == 1


def test_wrong_charsets_still_read_right(tmp_path: Path, site: FixtureSite) -> None:
    body = (
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        + feed("latin1-as-utf8", add_wrong_charset(site))
        + feed("utf8-as-latin1", add_wrong_charset(site, "/hostile/u.rss", reverse=True))
    )
    config = write_config(tmp_path, body)
    assert newswatch(config, "crawl").returncode == 0
    titles = [r["title"] for r in db_rows(tmp_path / "nw.db", "SELECT title FROM articles")]
    assert titles.count(CHARSET_TITLE) >= 1, titles
    assert all("\ufffd" not in t for t in titles), titles


def test_a_broken_article_page_is_the_page_error_not_the_source(
    tmp_path: Path, site: FixtureSite
) -> None:
    nato = "/news/2025/06/nato-air-defence.html"
    site.set(nato, body=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, content_type="image/png")
    site.set(
        "/news/2025/06/radar.html", status=302, headers={"Location": "/news/2025/06/radar.html"}
    )
    config = write_config(tmp_path, feed("daily", f"{site.url}/feeds/defence.xml"))
    result = newswatch(config, "crawl")
    assert result.returncode == 0, result.stderr
    [run] = db_rows(tmp_path / "nw.db", "SELECT * FROM runs")
    assert run["status"] == "ok" and run["new"] == 4 and run["errors"] == 1
    [pending] = db_rows(tmp_path / "nw.db", "SELECT url, last_error FROM pending_pages")
    assert pending["url"].endswith(nato) and "not an HTML page" in pending["last_error"]


def test_a_name_that_does_not_resolve(tmp_path: Path, site: FixtureSite) -> None:
    """Through Scrapy's resolver hook: the fake resolver answers, no DNS query leaves."""
    config = write_config(
        tmp_path,
        feed("nowhere", "http://news.nowhere.invalid/feed.xml")
        + feed("good", f"{site.url}/feeds/defence.xml"),
    )
    results = fake_dns_pass(config)
    assert results["nowhere"]["status"] == "error"
    assert "does not resolve" in results["nowhere"]["error"]
    assert results["good"]["status"] == "ok" and results["good"]["new"] == 4


def test_real_malformed_feeds_from_the_wild(tmp_path: Path, site: FixtureSite) -> None:
    """../shared/testdata/real-feeds/malformed, when present: no crash, each recorded."""
    folder = Path(__file__).resolve().parents[2] / "shared/testdata/real-feeds/malformed"
    files = sorted(folder.glob("*")) if folder.is_dir() else []
    if not files:
        import pytest

        pytest.skip("shared/testdata/real-feeds/malformed is not here")
    body = '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
    for i, path in enumerate(files):
        site.set(f"/wild/{i}", body=path.read_bytes(), content_type="application/xml")
        body += feed(f"wild-{i}", f"{site.url}/wild/{i}")
    config = write_config(tmp_path, body)
    result = newswatch(config, "crawl")
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    runs = db_rows(tmp_path / "nw.db", "SELECT source, status FROM runs")
    assert len(runs) == len(files)
    assert all(r["status"] in ("ok", "warning", "error") for r in runs)


def test_gzip_bombs_are_cut_off_whether_polled_or_crawled(
    tmp_path: Path, site: FixtureSite
) -> None:
    """60 MB of XML gzipped to about 175 kB, sent with Content-Encoding: gzip: on a first run
    (the crawl fetches it) and after a good run (the poll receives it and hands it on), it is
    the source's error once it inflates past max_page_bytes, and memory stays bounded."""
    good = (FIXTURE_SITE / "feeds/defence.xml").read_bytes()
    with HugeServer(60_000_000, compress="encoding") as bomb:
        bomb_bytes = bomb.compressed()
        site.set("/feeds/turns.xml", good, content_type="application/rss+xml")
        config = write_config(
            tmp_path,
            '[crawl]\ndelay = "0s"\ntimeout = "10s"\nmax_page_bytes = 1_000_000\n\n'
            + feed("bomb", f"{bomb.url}/feed.xml")
            + feed("turns", f"{site.url}/feeds/turns.xml"),
        )
        first = newswatch(config, "crawl")
        assert first.returncode == 0, first.stderr
        sources = {s["name"]: s for s in json_out(newswatch(config, "sources", "--json"))}
        assert sources["bomb"]["status"] == "error", sources["bomb"]
        assert "max_page_bytes" in sources["bomb"]["last_error"]
        assert sources["turns"]["status"] == "ok"

        site.set(
            "/feeds/turns.xml",
            bomb_bytes,
            headers={"Content-Encoding": "gzip"},
            content_type="application/rss+xml",
        )
        site.clear()
        second = newswatch(config, "crawl", "--all")
    assert second.returncode == 1, second.stderr  # every source attempted failed
    assert "Traceback" not in second.stderr
    assert site.hits("/feeds/turns.xml") == 1  # polled, then handed to the crawl
    sources = {s["name"]: s for s in json_out(newswatch(config, "sources", "--json"))}
    assert sources["turns"]["status"] == "error", sources["turns"]
    assert "max_page_bytes" in sources["turns"]["last_error"], sources["turns"]
    assert sources["turns"]["articles_24h"] == 4  # what the good run archived is kept
