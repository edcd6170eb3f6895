"""Feed bytes -> entries (crawler/parse/feeds.py).

Every file in tests/fixtures/feeds/ carries its expectation in an `expect: {json}` comment (see
the README there); the real malformed feeds of ../shared/testdata are parsed when present.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from nw import db_rows, newswatch, write_config
from servers import FixtureSite

from crawler.parse.feeds import Entry, FeedResult, html_to_text, parse_feed

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
REAL_MALFORMED = Path(__file__).resolve().parents[2] / "shared/testdata/real-feeds/malformed"
ENTRY_FIELDS = {"link", "guid", "title", "author", "published", "summary"}
# Files that cannot hold a comment: their expectation is in the README.
NO_COMMENT = {"random.bin": {"warning": False, "error_class": "NotAFeed", "entries": []}}
CONTENT_TYPES = [None, "application/xml", "application/rss+xml; charset=utf-8", "text/html"]


def expectation(path: Path) -> dict[str, Any]:
    if path.name in NO_COMMENT:
        return NO_COMMENT[path.name]
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("latin-1")
    found = re.search(r"expect:\s*(\{.*?\})\s*-->", text, re.DOTALL)
    assert found, f"{path.name} has no `expect:` comment"
    return json.loads(found[1])


def fixture_files() -> list[Path]:
    return sorted(p for p in FEEDS.iterdir() if p.name != "README.md")


def check(result: FeedResult, expected: dict[str, Any]) -> None:
    assert (result.warning is not None) is expected["warning"], result.warning
    assert result.error_class == expected["error_class"], result.error
    assert (result.error is not None) is (expected["error_class"] is not None)
    got = [asdict(entry) for entry in result.entries]
    want = expected["entries"]
    assert len(got) == len(want), got
    for entry, fields in zip(got, want, strict=True):
        assert set(fields) <= ENTRY_FIELDS, f"unknown fields in the expectation: {fields}"
        assert {key: entry[key] for key in fields} == fields


def test_every_fixture_has_an_expectation() -> None:
    files = fixture_files()
    assert len(files) >= 11
    for path in files:
        assert expectation(path)["entries"] is not None


@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixture_feed(path: Path) -> None:
    expected = expectation(path)
    check(parse_feed(path.read_bytes()), expected)


@pytest.mark.parametrize("content_type", CONTENT_TYPES[1:])
@pytest.mark.parametrize("path", fixture_files(), ids=lambda p: p.name)
def test_fixture_feed_entries_do_not_depend_on_the_content_type(
    path: Path, content_type: str
) -> None:
    """A wrong or missing charset in the header may add a warning; the entries stay the same."""
    expected = expectation(path)
    result = parse_feed(path.read_bytes(), content_type)
    assert result.error_class == expected["error_class"]
    assert result.entries == parse_feed(path.read_bytes()).entries


def test_published_is_utc_with_z() -> None:
    for path in fixture_files():
        for entry in parse_feed(path.read_bytes()).entries:
            if entry.published is not None:
                assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry.published)


def test_every_entry_has_a_link_or_a_guid_and_links_are_http() -> None:
    for path in fixture_files():
        for entry in parse_feed(path.read_bytes()).entries:
            assert entry.link or entry.guid
            if entry.link is not None:
                assert entry.link.startswith(("http://", "https://")), entry


def test_guid_without_link_is_not_taken_as_the_link() -> None:
    result = parse_feed((FEEDS / "guid-no-link.xml").read_bytes())
    by_title = {entry.title: entry for entry in result.entries}
    opaque = by_title["Opaque guid"]
    assert (opaque.link, opaque.guid) == (None, "urn:guid-only:1")
    assert by_title["Numeric guid without isPermaLink"].link is None
    assert "Neither link nor guid" not in by_title


def test_relative_guids_are_returned_raw() -> None:
    """feedparser resolves relative ids against a base (Content-Location, xml:base); the archive
    keys `(source, guid)` on the GUID as written, so it must not depend on where it was served."""
    result = parse_feed((FEEDS / "guid-no-link.xml").read_bytes(), "application/rss+xml")
    assert [entry.guid for entry in result.entries] == [
        "urn:guid-only:1",
        "12345",
        "stories/777",
        "https://guids.example.org/4",
        "5",
    ]


def test_truncated_feed_keeps_entries_and_warns() -> None:
    result = parse_feed((FEEDS / "truncated.xml").read_bytes())
    assert result.error is None
    assert result.warning is not None and result.warning.startswith("malformed feed")
    assert [entry.guid for entry in result.entries] == ["cut-1", "cut-2"]


def test_html_page_is_not_a_feed() -> None:
    result = parse_feed((FEEDS / "html-page.html").read_bytes(), "text/html; charset=utf-8")
    assert result.entries == []
    assert result.error_class == "NotAFeed"
    assert result.error is not None and "HTML page" in result.error


@pytest.mark.parametrize("body", [b"", b"   ", b"\n\t \r\n"])
def test_empty_body(body: bytes) -> None:
    result = parse_feed(body, "application/xml")
    assert (result.entries, result.error_class) == ([], "EmptyFeed")
    assert result.error is not None and "empty" in result.error


@pytest.mark.parametrize("seed", range(20))
def test_random_bytes_are_not_a_feed(seed: int) -> None:
    body = random.Random(seed).randbytes(random.Random(seed).randint(1, 4096))
    result = parse_feed(body, "application/octet-stream")
    assert result.entries == []
    assert result.error_class in ("NotAFeed", "EmptyFeed", "MalformedFeed")
    assert result.error


@pytest.mark.parametrize(
    "body",
    [
        b"<?xml version='1.0'?>",
        b"<?xml version='1.0'?><catalog><book/></catalog>",
        b'{"version": "https://jsonfeed.org/version/1", "items": []}',
        b"\x00" * 64,
        b"\xef\xbb\xbf",
    ],
)
def test_other_documents_are_not_feeds(body: bytes) -> None:
    result = parse_feed(body)
    assert result.entries == []
    assert result.error_class in ("NotAFeed", "EmptyFeed")


def test_a_valid_feed_without_items_is_no_error() -> None:
    body = (
        b'<rss version="2.0"><channel><title>t</title><link>https://e.org/</link></channel></rss>'
    )
    assert parse_feed(body) == FeedResult()


HTML_TO_TEXT = [
    (None, None),
    ("", None),
    ("   \n\t", None),
    ("<img src='x.jpg' alt=''>", None),
    ("plain text", "plain text"),
    ("  a \n\t b  ", "a b"),
    ("<p>Hello <b>world</b></p>", "Hello world"),
    ("Br<b>\u00fc</b>ssel", "Br\u00fcssel"),
    ("<p>NATO</p><p>Air defence</p>", "NATO Air defence"),
    ("first line.<br/>Second line", "first line. Second line"),
    ("<ul><li>one</li><li>two</li></ul>", "one two"),
    ("<h2>Head</h2><div>body</div>tail", "Head body tail"),
    ("Fish &amp; chips", "Fish & chips"),
    ("&lt;b&gt;shown as text&lt;/b&gt;", "<b>shown as text</b>"),
    ("caf&eacute; &pound;5 &#8217;&#x201C;", "caf\u00e9 \u00a35 \u2019\u201c"),
    ("a&nbsp;b", "a b"),
    ("1 < 2 and 3 > 2", "1 < 2 and 3 > 2"),
    ("a<!-- comment -->b", "ab"),
]


@pytest.mark.parametrize(("html", "text"), HTML_TO_TEXT)
def test_html_to_text(html: str | None, text: str | None) -> None:
    assert html_to_text(html) == text


def real_malformed() -> list[Path]:
    return sorted(REAL_MALFORMED.iterdir()) if REAL_MALFORMED.is_dir() else []


@pytest.mark.skipif(not REAL_MALFORMED.is_dir(), reason="../shared/testdata is not here")
@pytest.mark.parametrize("path", real_malformed(), ids=lambda p: p.name)
def test_real_malformed_feeds_parse_without_exceptions(path: Path) -> None:
    result = parse_feed(path.read_bytes())
    assert isinstance(result, FeedResult)
    if result.entries:
        assert result.error is None
        assert result.warning is not None  # every file there is bozo
        assert all(isinstance(e, Entry) and (e.link or e.guid) for e in result.entries)
    else:
        assert result.error and result.error_class
    index = REAL_MALFORMED.parent / "index.json"
    if index.is_file():
        known = json.loads(index.read_text(encoding="utf-8")).get(f"malformed/{path.name}")
        if known is not None:
            assert len(result.entries) <= known["entries"]
            assert bool(result.entries) == bool(known["entries"])


RELATIVE_GUIDS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
  <channel>
    <title>Relative guids</title>
    <link>{{SITE}}/news/</link>
    <description>guids that a base URL would rewrite</description>
    <item>
      <title>NATO tests new air defense radar</title>
      <link>{{SITE}}/news/2025/06/radar.html</link>
      <guid>story-77</guid>
    </item>
    <item>
      <title>Fish and chips</title>
      <link>{{SITE}}/news/2025/06/fish-chips.html</link>
      <guid isPermaLink="false">78</guid>
    </item>
  </channel>
</rss>
"""


def test_a_crawl_stores_guids_as_written_whatever_the_content_location(
    tmp_path: Path, site: FixtureSite
) -> None:
    """End to end: a server's Content-Location must not turn `story-77` into a URL."""
    site.set(
        "/feeds/relative.xml",
        RELATIVE_GUIDS,
        headers={"Content-Location": f"{site.url}/moved/elsewhere/"},
    )
    config = write_config(
        tmp_path,
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "rel"\nfeed = "{site.url}/feeds/relative.xml"\n',
    )
    result = newswatch(config, "crawl")
    assert result.returncode == 0, result.stderr
    guids = db_rows(tmp_path / "nw.db", "SELECT source, guid FROM article_guids ORDER BY guid")
    assert guids == [{"source": "rel", "guid": "78"}, {"source": "rel", "guid": "story-77"}]
    urls = {r["url"] for r in db_rows(tmp_path / "nw.db", "SELECT url FROM articles")}
    assert urls == {
        f"{site.url}/news/2025/06/radar.html",
        f"{site.url}/news/2025/06/fish-chips.html",
    }


LAUGHS = (
    b"""<?xml version="1.0"?>
<!DOCTYPE rss [
<!ENTITY lol "lol">
"""
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"""]>
<rss version="2.0"><channel><title>t</title>
<item><title>&lol9;</title><link>http://127.0.0.1/a</link></item>
<item><title>Fine</title><link>http://127.0.0.1/b</link></item>
</channel></rss>"""
)


def test_billion_laughs_in_a_feed_is_never_expanded() -> None:
    result = parse_feed(LAUGHS)
    assert result.error is None
    titles = [e.title or "" for e in result.entries]
    assert "Fine" in titles
    assert all(len(t) < 1000 for t in titles)  # 10^9 "lol"s would be 3 GB


def test_an_external_entity_in_a_feed_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><title>t</title><item><title>A &xxe; B</title>'
        "<link>http://127.0.0.1/a</link><description>x &xxe; y</description></item>"
        "</channel></rss>"
    ).encode()
    result = parse_feed(body)
    text = " ".join(f"{e.title} {e.summary}" for e in result.entries)
    assert result.entries and "TOP-SECRET-CONTENT" not in text
