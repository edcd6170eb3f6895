"""Links from feeds, pages and redirects into loopback or private networks are not followed
unless `[crawl] allow_private = true` (SSRF); a source's own URL and host always are. Real
crawls against local servers: 127.0.0.1 is the publisher, 127.0.0.2 plays the crawler's
internal network (loopback, so refused like a private address)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from nw import fake_dns_pass, json_out, newswatch, write_config
from servers import FixtureSite

from crawler.decide.urls import ip_literal, non_public_address

BODY = "<p>" + "Allied ministers met to discuss air defence along the eastern flank. " * 8 + "</p>"


def page(title: str) -> str:
    head = f"<html><head><title>{title}</title></head>"
    return f"{head}<body><article><h1>{title}</h1><p>{title}.</p>{BODY}</article></body></html>"


def rss(*links: tuple[str, str]) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid></item>"
        for link, title in links
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    return f"{head}{items}</channel></rss>"


@pytest.fixture
def internal() -> Iterator[FixtureSite]:
    with FixtureSite(host="127.0.0.2") as site:
        site.set("/secret.html", page("Internal admin page"))
        yield site


def config(tmp_path: Path, site: FixtureSite, allow: bool = False) -> Path:
    allow_line = "allow_private = true\n" if allow else ""
    return write_config(
        tmp_path,
        f'[crawl]\ndelay = "0s"\ntimeout = "10s"\n{allow_line}\n'
        f'[[sources]]\nname = "outlet"\nfeed = "{site.url}/feeds/news.xml"\n',
    )


def titles(config_path: Path) -> set[str]:
    out = newswatch(config_path, "export", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    return {json.loads(line)["title"] for line in out.stdout.splitlines() if line.strip()}


def serve_feed(site: FixtureSite, internal: FixtureSite) -> None:
    site.set("/news/public.html", page("Public story"))
    site.set(
        "/feeds/news.xml",
        rss(
            (f"{site.url}/news/public.html", "Public story"),
            (internal.url + "/secret.html", "Internal admin page"),
        ),
    )


def test_a_link_into_a_private_network_is_not_fetched(
    tmp_path: Path, site: FixtureSite, internal: FixtureSite
) -> None:
    serve_feed(site, internal)
    cfg = config(tmp_path, site)

    done = newswatch(cfg, "crawl", "--all")

    assert done.returncode == 0, done.stderr
    assert internal.requests == []  # not even robots.txt
    assert site.hits("/robots.txt") == 1  # while the publisher's own robots.txt is read
    assert titles(cfg) == {"Public story"}
    [state] = json_out(newswatch(cfg, "sources", "--json"))
    assert state["status"] == "warning"
    assert "allow_private" in state["last_warning"] and "127.0.0.2" in state["last_warning"]


def test_allow_private_follows_them(
    tmp_path: Path, site: FixtureSite, internal: FixtureSite
) -> None:
    serve_feed(site, internal)
    cfg = config(tmp_path, site, allow=True)

    assert newswatch(cfg, "crawl", "--all").returncode == 0

    assert internal.hits("/secret.html") == 1
    assert titles(cfg) == {"Public story", "Internal admin page"}


def test_a_redirect_into_a_private_network_is_not_followed(
    tmp_path: Path, site: FixtureSite, internal: FixtureSite
) -> None:
    site.set("/news/moved.html", status=302, headers={"Location": internal.url + "/secret.html"})
    site.set("/feeds/news.xml", rss((f"{site.url}/news/moved.html", "Moved")))
    cfg = config(tmp_path, site)

    assert newswatch(cfg, "crawl", "--all").returncode == 0

    assert site.hits("/news/moved.html") == 1
    assert internal.requests == []


def test_the_sources_own_url_is_the_operators_choice(tmp_path: Path, internal: FixtureSite) -> None:
    internal.set("/feeds/news.xml", rss((internal.url + "/secret.html", "Internal admin page")))
    cfg = config(tmp_path, internal)  # the source itself is on the "internal" host

    assert newswatch(cfg, "crawl", "--all").returncode == 0

    assert internal.hits("/feeds/news.xml") == 1 and internal.hits("/secret.html") == 1
    assert titles(cfg) == {"Internal admin page"}


def test_a_name_resolving_to_a_private_address_is_refused(
    tmp_path: Path, site: FixtureSite
) -> None:
    """internal.test resolves to 127.0.0.1 through the tests' fake resolver: no real lookup."""
    port = site.url.rsplit(":", 1)[1]
    site.set("/secret.html", page("Internal admin page"))
    site.set("/feeds/news.xml", rss((f"http://internal.test:{port}/secret.html", "X")))
    cfg = config(tmp_path, site)
    result = fake_dns_pass(cfg)["outlet"]
    assert site.hits("/secret.html") == 0
    assert result["status"] == "warning" and "127.0.0.1" in result["warning"], result


@pytest.mark.parametrize(
    ("address", "private"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.9", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # the cloud metadata service
        ("100.64.0.1", True),  # shared address space
        ("0.0.0.0", True),
        ("224.0.0.1", True),
        ("::1", True),
        ("fd00:ec2::254", True),
        ("fe80::1%eth0", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("::ffff:8.8.4.4", False),
    ],
)
def test_non_public_address(address: str, private: bool) -> None:
    assert non_public_address(address) is private


def test_ip_literal() -> None:
    assert ip_literal("127.0.0.2") == "127.0.0.2"
    assert ip_literal("[::1]") == "::1"
    assert ip_literal("news.example") is None
