"""Listings with validators are polled by the light client before the crawl (crawler/fetch/poll.py):
a 304 ends the source's run there, a 200 is handed to the crawl without a second request,
anything else is left to the crawl. Real `newswatch crawl` processes against the local site."""

from __future__ import annotations

import gzip
import itertools
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from nw import json_out, newswatch, write_config
from servers import FixtureSite

from crawler.fetch.poll import proxy_for


def rss(*items: tuple[str, str]) -> str:
    body = "".join(
        f"<item><title>{title}</title><link>{{{{SITE}}}}/news/{slug}.html</link>"
        f"<guid>{{{{SITE}}}}/news/{slug}.html</guid>"
        f"<description>{title}: NATO air defence news.</description></item>"
        for slug, title in items
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'
    )


def config_for(tmp_path: Path, site: FixtureSite, names: list[str], crawl: str = "") -> Path:
    sources = "".join(
        f'[[sources]]\nname = "{n}"\nfeed = "{site.url}/feeds/{n}.xml"\n\n' for n in names
    )
    crawl = crawl or 'delay = "0s"\ntimeout = "10s"\n'
    return write_config(tmp_path, f"[crawl]\n{crawl}fetch_articles = false\n\n{sources}")


def sources_json(config: Path) -> dict[str, Any]:
    return {s["name"]: s for s in json_out(newswatch(config, "sources", "--json"))}


def titles(config: Path) -> set[str]:
    export = newswatch(config, "export", "--format", "jsonl")
    assert export.returncode == 0, export.stderr
    return {json.loads(line)["title"] for line in export.stdout.splitlines() if line.strip()}


def crawl_all(config: Path) -> str:
    done = newswatch(config, "crawl", "--all")
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def test_unchanged_listings_end_at_the_poll(tmp_path: Path, site: FixtureSite) -> None:
    for name in ("a", "b", "c"):
        site.set(f"/feeds/{name}.xml", rss((f"{name}1", f"Story {name}")))
    config = config_for(tmp_path, site, ["a", "b", "c"])
    crawl_all(config)
    site.clear()

    out = crawl_all(config)

    assert out.count("not_modified") == 3
    for name in ("a", "b", "c"):
        [poll] = [r for r in site.requests if r.path == f"/feeds/{name}.xml"]
        assert poll.headers.get("If-None-Match", "").startswith('"')
        assert poll.headers.get("If-Modified-Since")
        assert "newswatch" in poll.headers.get("User-Agent", "")
    # robots.txt read once, by the poll: the crawl (which reads it again) never started
    assert site.hits("/robots.txt") == 1
    assert {s["status"] for s in sources_json(config).values()} == {"not_modified"}


def test_a_changed_listing_is_requested_once(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/feeds/a.xml", rss(("a1", "First story")))
    site.set("/feeds/b.xml", rss(("b1", "Quiet story")))
    config = config_for(tmp_path, site, ["a", "b"])
    crawl_all(config)
    site.set("/feeds/a.xml", rss(("a2", "Second story"), ("a1", "First story")))
    site.clear()

    out = crawl_all(config)

    assert site.hits("/feeds/a.xml") == 1  # the poll's answer went to the crawl
    assert site.hits("/feeds/b.xml") == 1
    assert titles(config) == {"First story", "Second story", "Quiet story"}
    states = sources_json(config)
    assert (states["a"]["status"], states["b"]["status"]) == ("ok", "not_modified")
    assert "not_modified" in out


def test_a_gzipped_changed_listing_is_decoded_by_the_crawl(
    tmp_path: Path, site: FixtureSite
) -> None:
    def gz(text: str) -> bytes:
        return gzip.compress(site.substitute(text.encode()))

    site.set("/feeds/z.xml", gz(rss(("z1", "Packed story"))), headers={"Content-Encoding": "gzip"})
    config = config_for(tmp_path, site, ["z"])
    crawl_all(config)
    site.set(
        "/feeds/z.xml",
        gz(rss(("z2", "Packed again"), ("z1", "Packed story"))),
        headers={"Content-Encoding": "gzip"},
    )
    site.clear()

    crawl_all(config)

    assert site.hits("/feeds/z.xml") == 1
    assert titles(config) == {"Packed story", "Packed again"}


def test_robots_txt_is_obeyed_by_the_poll(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/feeds/a.xml", rss(("a1", "Story")))
    config = config_for(tmp_path, site, ["a"])
    crawl_all(config)
    site.set("/robots.txt", "User-agent: *\nDisallow: /feeds/\n", content_type="text/plain")
    site.clear()

    crawl_all(config)

    assert site.hits("/feeds/a.xml") == 0
    state = sources_json(config)["a"]
    assert state["status"] == "error"
    assert "robots.txt" in (state["last_error"] or "")


def test_a_long_robots_txt_is_read_to_its_end(tmp_path: Path, site: FixtureSite) -> None:
    """The rule that forbids the feed comes after 300 kB of comments: the poll must not stop
    at the first chunk it receives."""
    site.set("/feeds/a.xml", rss(("a1", "Story")))
    config = config_for(tmp_path, site, ["a"])
    crawl_all(config)
    comments = "".join(f"# line {i} of a long robots.txt\n" for i in range(10_000))
    robots = f"{comments}User-agent: *\nDisallow: /feeds/\n"
    site.set("/robots.txt", robots, content_type="text/plain")
    site.clear()

    crawl_all(config)

    assert site.hits("/feeds/a.xml") == 0
    assert sources_json(config)["a"]["status"] == "error"


def test_an_error_answer_is_recorded_by_the_crawl(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/feeds/a.xml", rss(("a1", "Story")))
    config = config_for(tmp_path, site, ["a"])
    crawl_all(config)
    site.set("/feeds/a.xml", "down for maintenance", status=500, content_type="text/plain")
    site.clear()

    crawl_all(config)

    # the poll's answer is the crawl's: one request, recorded as the crawl's own would be
    assert site.hits("/feeds/a.xml") == 1
    state = sources_json(config)["a"]
    assert state["status"] == "error"
    assert state["last_error_class"] == "HTTP500"


def test_a_redirect_answer_is_followed_by_the_crawl(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/feeds/a.xml", rss(("a1", "Story")))
    config = config_for(tmp_path, site, ["a"])
    crawl_all(config)
    site.set("/feeds/moved.xml", rss(("a2", "Moved story"), ("a1", "Story")))
    site.set("/feeds/a.xml", status=301, headers={"Location": f"{site.url}/feeds/moved.xml"})
    site.clear()

    crawl_all(config)

    assert (site.hits("/feeds/a.xml"), site.hits("/feeds/moved.xml")) == (1, 1)
    assert titles(config) == {"Story", "Moved story"}


def test_a_listing_that_does_not_answer_in_time_is_asked_once(
    tmp_path: Path, site: FixtureSite
) -> None:
    site.set("/feeds/a.xml", rss(("a1", "Story")))
    config = config_for(tmp_path, site, ["a"], crawl='delay = "0s"\ntimeout = "1s"\n')
    crawl_all(config)
    site.set("/feeds/a.xml", rss(("a1", "Story"), ("a2", "Later story")), delay=3)
    site.clear()

    crawl_all(config)

    # no answer within the timeout: recorded as the crawl records it, and not asked again
    assert site.hits("/feeds/a.xml") == 1
    state = sources_json(config)["a"]
    assert state["status"] == "error"
    assert state["last_error_class"] == "DownloadTimeoutError", state
    assert "did not answer in time" in state["last_error"], state

    # the server is back: the next run reads the whole listing (no validators after an error)
    site.set("/feeds/a.xml", rss(("a1", "Story"), ("a2", "Later story")))
    crawl_all(config)
    assert sources_json(config)["a"]["status"] == "ok"
    assert titles(config) == {"Story", "Later story"}


def test_the_poll_keeps_the_per_host_delay(tmp_path: Path, site: FixtureSite) -> None:
    names = ["a", "b", "c", "d"]
    for name in names:
        site.set(f"/feeds/{name}.xml", rss((f"{name}1", f"Story {name}")))
    config = config_for(tmp_path, site, names, crawl='delay = "0.4s"\ntimeout = "10s"\n')
    crawl_all(config)
    site.clear()

    crawl_all(config)

    times = sorted(r.time for r in site.requests if r.path.startswith("/feeds/"))
    assert len(times) == 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.35, gaps


def test_proxy_for_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.9:3128")
    monkeypatch.setenv("no_proxy", "127.0.0.2,feeds.example")
    monkeypatch.delenv("https_proxy", raising=False)
    proxies = urllib.request.getproxies()
    assert proxy_for("http://127.0.0.3/feed.xml", proxies) == "http://127.0.0.9:3128"
    assert proxy_for("http://127.0.0.2/feed.xml", proxies) is None
    assert proxy_for("http://feeds.example/rss", proxies) is None
    assert proxy_for("https://127.0.0.3/feed.xml", proxies) is None  # no https_proxy


def test_polls_and_crawls_go_through_the_environments_proxy(tmp_path: Path) -> None:
    """The source's host (127.0.0.3) has no server: only the proxy on 127.0.0.2 answers."""
    with FixtureSite(host="127.0.0.2") as proxy:
        proxy.set("/feeds/a.xml", rss(("a1", "Story")))
        config = write_config(
            tmp_path,
            '[crawl]\ndelay = "0s"\ntimeout = "5s"\nfetch_articles = false\n\n'
            '[[sources]]\nname = "a"\nfeed = "http://127.0.0.3:9/feeds/a.xml"\n',
        )
        env = {"http_proxy": proxy.url, "no_proxy": ""}
        first = newswatch(config, "crawl", "--all", env=env)
        assert first.returncode == 0, first.stderr
        proxy.clear()

        second = newswatch(config, "crawl", "--all", env=env)

        assert second.returncode == 0, second.stderr
        assert "not_modified" in second.stdout
        [poll] = [r for r in proxy.requests if "/feeds/a.xml" in r.path]
        assert poll.path == "http://127.0.0.3:9/feeds/a.xml"  # absolute form: a proxy request
        assert poll.headers.get("If-None-Match")
