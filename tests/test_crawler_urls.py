"""Canonical article URLs (crawler/decide/urls.py): one archive key per article
(docs/how-it-decides.md)."""

from __future__ import annotations

import pytest

from crawler.decide.urls import amp_to_canonical_guess, canonical_url, host_of, is_tracking_param

CANONICAL = [
    # tracking parameters dropped, real ids kept
    ("https://example.org/a?utm_source=rss&utm_medium=feed", "https://example.org/a"),
    ("https://example.org/a?UTM_Campaign=x&id=3", "https://example.org/a?id=3"),
    ("https://example.org/a?fbclid=IwAR0abc", "https://example.org/a"),
    ("https://example.org/a?gclid=EAIa&gclsrc=aw.ds", "https://example.org/a"),
    ("https://example.org/a?msclkid=1&mc_cid=2&mc_eid=3&_ga=4", "https://example.org/a"),
    ("https://example.org/a?pk_campaign=x&mtm_source=y&hsa_cam=z", "https://example.org/a"),
    ("https://example.org/a?utm_source", "https://example.org/a"),
    ("https://example.org/a?%75tm_source=x&id=1", "https://example.org/a?id=1"),
    (
        "https://example.org/story?storyid=9981&utm_medium=rss&fbclid=abc&gclid=1",
        "https://example.org/story?storyid=9981",
    ),
    ("https://example.org/news.php?id=3", "https://example.org/news.php?id=3"),
    ("https://blog.example.org/?p=123", "https://blog.example.org/?p=123"),
    ("https://example.org/a?page=2&session=abc", "https://example.org/a?page=2&session=abc"),
    ("https://example.org/a?amp=1&id=2", "https://example.org/a?id=2"),
    # the fragment is dropped
    ("https://example.org/a#comments", "https://example.org/a"),
    ("https://example.org/a?id=3#top", "https://example.org/a?id=3"),
    ("https://example.org/a#", "https://example.org/a"),
    # scheme and host lower-cased; the path keeps its case
    ("HTTPS://News.Example.ORG/World/Story", "https://news.example.org/World/Story"),
    # default ports dropped, other ports kept
    ("http://example.org:80/a", "http://example.org/a"),
    ("https://example.org:443/a", "https://example.org/a"),
    ("https://example.org:80/a", "https://example.org:80/a"),
    ("http://example.org:443/a", "http://example.org:443/a"),
    ("http://127.0.0.1:8080/a", "http://127.0.0.1:8080/a"),
    ("http://[::1]:80/a", "http://[::1]/a"),
    ("http://[2001:DB8::1]:8080/a?utm_source=x", "http://[2001:db8::1]:8080/a"),
    # an empty path is "/"
    ("https://example.org", "https://example.org/"),
    ("https://example.org?id=1", "https://example.org/?id=1"),
    # query order normalised
    ("https://example.org/a?b=2&a=1", "https://example.org/a?a=1&b=2"),
    ("https://example.org/a?a=2&a=1", "https://example.org/a?a=1&a=2"),
    ("https://example.org/a?&&id=1&", "https://example.org/a?id=1"),
    # percent-encoding normalised
    ("https://example.org/%7euser/%41", "https://example.org/~user/A"),
    ("https://example.org/a b", "https://example.org/a%20b"),
    ("https://example.org/caf\u00e9", "https://example.org/caf%C3%A9"),
    ("https://example.org/caf%c3%a9", "https://example.org/caf%C3%A9"),
    ("https://example.org/a?q=%e2%82%ac", "https://example.org/a?q=%E2%82%AC"),
    ("https://example.org/a?q=a%20b", "https://example.org/a?q=a+b"),
    ("https://example.org/a?q=a%2Bb", "https://example.org/a?q=a%2Bb"),
    ("https://example.org/a?q=%26x", "https://example.org/a?q=%26x"),
    ("https://example.org/a/./b/../c", "https://example.org/a/c"),
    # escapes that are not UTF-8 survive as written (two pages, two keys)
    ("https://example.org/a?q=caf%E9", "https://example.org/a?q=caf%E9"),
    ("https://example.org/a?q=caf%E8&utm_source=x", "https://example.org/a?q=caf%E8"),
    # surrounding spaces, international host names
    ("  https://example.org/a \n", "https://example.org/a"),
    ("https://caf\u00e9.example/a", "https://xn--caf-dma.example/a"),
]


@pytest.mark.parametrize(("url", "expected"), CANONICAL)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize("url", [url for url, _ in CANONICAL])
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once


def test_tracking_and_fragment_variants_share_one_key() -> None:
    variants = [
        "https://example.org/news/2025/06/story.html",
        "https://Example.org:443/news/2025/06/story.html#comments",
        "https://example.org/news/2025/06/story.html?utm_source=x&utm_medium=rss",
        "https://example.org/news/2025/06/story.html?fbclid=abc#x",
    ]
    assert {canonical_url(v) for v in variants} == {variants[0]}


def test_different_ids_stay_different() -> None:
    urls = [f"https://example.org/story?storyid={n}" for n in (9981, 9982)]
    urls += ["https://example.org/a?q=caf%E9", "https://example.org/a?q=caf%E8"]
    assert len({canonical_url(u) for u in urls}) == len(urls)


@pytest.mark.parametrize(
    ("name", "tracking"),
    [
        ("utm_source", True),
        ("UTM_TERM", True),
        ("fbclid", True),
        ("gclid", True),
        ("_ga", True),
        ("id", False),
        ("p", False),
        ("storyid", False),
        ("page", False),
        ("q", False),
        ("utm", False),
    ],
)
def test_is_tracking_param(name: str, tracking: bool) -> None:
    assert is_tracking_param(name) is tracking


AMP = [
    ("https://example.org/amp/news/story", "https://example.org/news/story"),
    ("https://example.org/news/amp/story", "https://example.org/news/story"),
    ("https://example.org/news/story.amp.html", "https://example.org/news/story.html"),
    ("https://example.org/news/story.amp.htm", "https://example.org/news/story.htm"),
    ("https://example.org/news/story.amp", "https://example.org/news/story"),
    ("https://example.org/news/story/amp", "https://example.org/news/story"),
    ("https://example.org/news/story/amp/", "https://example.org/news/story"),
    ("https://example.org/news/story/amp?id=3#top", "https://example.org/news/story?id=3"),
    ("https://example.org/news/story?amp", "https://example.org/news/story"),
    ("https://example.org/news/story?amp=1&id=3", "https://example.org/news/story?id=3"),
    ("https://example.org/amp", "https://example.org/"),
    # not AMP pages
    ("https://example.org/news/story", None),
    ("https://example.org/news/story.html", None),
    ("https://example.org/news/campaign/story", None),
    ("https://example.org/news/amplifier/story", None),
    ("https://example.org/news/story-amp", None),
    ("https://example.org/news/example.html?id=3", None),
]


@pytest.mark.parametrize(("url", "expected"), AMP)
def test_amp_to_canonical_guess(url: str, expected: str | None) -> None:
    assert amp_to_canonical_guess(url) == expected


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://News.Example.ORG/a", "news.example.org"),
        ("https://user:pw@example.org:8443/a", "example.org"),
        ("http://127.0.0.2:9000/feed.xml", "127.0.0.2"),
        ("http://[::1]:80/", "::1"),
        ("/relative/path", ""),
        ("", ""),
    ],
)
def test_host_of(url: str, host: str) -> None:
    assert host_of(url) == host
