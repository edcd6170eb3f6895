"""crawler.parse.sitemaps: sitemap bytes -> entries, safely, never raising.

Fixture expectations live in tests/fixtures/sitemaps/expected.json (see its README.md).
"""

import gzip
import json
import random
import re
import socket
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from protego import Protego

from crawler.parse.sitemaps import (
    SitemapEntry,
    SitemapResult,
    parse_date,
    parse_sitemap,
    robots_sitemaps,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sitemaps"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
SHARED = Path(__file__).parents[2] / "shared"
TESTDATA = SHARED / "testdata"
ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
ERROR_CLASSES = {"EmptySitemap", "TooLarge", "BadGzip", "NotASitemap", "MalformedSitemap"}


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def check_invariants(result: SitemapResult) -> None:
    """What every result promises, whatever the input."""
    assert isinstance(result, SitemapResult)
    assert result.kind in ("urlset", "index", "")
    if result.error is not None:
        assert result.error_class in ERROR_CLASSES
        assert result.entries == []
        assert result.warning is None
    else:
        assert result.error_class is None
        assert result.kind in ("urlset", "index")
    for entry in result.entries:
        assert isinstance(entry, SitemapEntry)
        assert entry.loc and entry.loc == entry.loc.strip()
        for stamp in (entry.lastmod, entry.news_published):
            assert stamp is None or ISO_Z.fullmatch(stamp), stamp
        if result.kind == "index":
            assert entry.news_title is entry.news_published is None


# ---- the fixtures, each against its expectation


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture(name):
    expected = EXPECTED[name]
    result = parse_sitemap(fixture(name))
    check_invariants(result)
    assert result.kind == expected["kind"]
    assert [asdict(entry) for entry in result.entries] == expected["entries"]
    assert result.error_class == expected["error_class"]
    assert (result.error is not None) == (expected["error_class"] is not None)
    assert bool(result.warning) == expected["warning"], result.warning
    if "warning_contains" in expected:
        assert expected["warning_contains"] in result.warning
    if "error_contains" in expected:
        assert expected["error_contains"] in result.error
    for text in expected.get("absent", []):
        assert text not in repr(result)


def test_every_fixture_has_an_expectation_and_a_readme_row():
    files = {p.name for p in FIXTURES.iterdir() if p.name not in ("README.md", "expected.json")}
    assert files == set(EXPECTED)
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    for name in files:
        assert f"| `{name}` |" in readme, f"{name} has no row in the README table"


def test_news_fields_scrapy_would_drop():
    """Scrapy's SitemapSpider drops the Google News fields; this parser keeps them."""
    from scrapy.utils.sitemap import Sitemap

    scrapy_view = list(Sitemap(fixture("google-news.xml")))
    assert [item.get("news") for item in scrapy_view] == ["", "", ""]
    ours = parse_sitemap(fixture("google-news.xml")).entries
    assert [e.news_published for e in ours] == [
        "2025-06-09T10:00:00Z",  # +02:00 converted
        "2025-06-11T09:00:00Z",  # Z
        "2025-06-10T00:00:00Z",  # date only
    ]


# ---- gzip


def test_gz_fixture_is_plain_xml_gzipped():
    assert gzip.decompress(fixture("plain.xml.gz")) == fixture("plain.xml")


def test_gzip_built_here_and_multi_member_gzip():
    plain = fixture("plain.xml")
    expected = parse_sitemap(plain)
    assert parse_sitemap(gzip.compress(plain, compresslevel=9)) == expected
    half = len(plain) // 2
    two_members = gzip.compress(plain[:half]) + gzip.compress(plain[half:])
    assert parse_sitemap(two_members) == expected
    # padding after the last member (some servers add it) is ignored
    assert parse_sitemap(gzip.compress(plain) + b"\x00" * 64) == expected


def test_gzip_bomb_is_too_large_without_inflating_it():
    bomb = gzip.compress(bytes(60_000_000), compresslevel=9)
    assert len(bomb) < 100_000
    started = time.monotonic()
    result = parse_sitemap(bomb, max_bytes=1_000_000)
    assert time.monotonic() - started < 2
    assert result.error_class == "TooLarge"
    assert result.error == "sitemap larger than 1,000,000 bytes after decompression"
    assert result.entries == [] and result.kind == ""
    # the default limit (the protocol's 50,000,000 bytes) stops it too
    assert parse_sitemap(bomb).error_class == "TooLarge"


def test_max_bytes_is_exact():
    plain = fixture("plain.xml")
    packed = gzip.compress(plain)
    assert parse_sitemap(packed, max_bytes=len(plain)).error is None
    assert parse_sitemap(packed, max_bytes=len(plain) - 1).error_class == "TooLarge"
    assert parse_sitemap(plain, max_bytes=len(plain)).error is None
    too_big = parse_sitemap(plain, max_bytes=len(plain) - 1)
    assert too_big.error_class == "TooLarge"
    assert too_big.error == f"sitemap larger than {len(plain) - 1:,} bytes"


def test_corrupt_gzip_is_an_error():
    for body in (fixture("corrupt.xml.gz"), b"\x1f\x8b", b"\x1f\x8b\x08\x00garbage"):
        result = parse_sitemap(body)
        assert result.error_class == "BadGzip", body
        assert "gzip" in result.error


def test_truncated_gzip_keeps_complete_entries_with_a_warning():
    news = fixture("google-news.xml")
    packed = gzip.compress(news)
    result = parse_sitemap(packed[:-8])  # the CRC and size trailer missing: all data there
    assert result.entries == parse_sitemap(news).entries
    assert "truncated gzip data" in result.warning
    full = set(parse_sitemap(news).entries)
    for cut in range(len(packed)):
        result = parse_sitemap(packed[:cut])
        check_invariants(result)
        assert set(result.entries) <= full, cut


def test_truncation_anywhere_never_gives_a_partial_entry():
    """Recovery keeps the complete <url>s before the cut; the cut-off one is dropped, so a half
    URL or a half date never comes out."""
    for name in ("google-news.xml", "plain.xml", "index.xml", "unnamespaced.xml"):
        data = fixture(name)
        full = set(parse_sitemap(data).entries)
        for cut in range(len(data)):
            result = parse_sitemap(data[:cut])
            check_invariants(result)
            assert set(result.entries) <= full, (name, cut, result.entries)


# ---- hostile XML


def listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.3)
    return server


def assert_no_connection(server: socket.socket) -> None:
    with pytest.raises(TimeoutError):
        conn, _ = server.accept()
        conn.close()


def test_external_entities_and_dtds_are_never_fetched():
    with listener() as server:
        port = server.getsockname()[1]
        body = f"""<?xml version="1.0"?>
<!DOCTYPE urlset SYSTEM "http://127.0.0.1:{port}/sitemap.dtd" [
  <!ENTITY % remote SYSTEM "http://127.0.0.1:{port}/param.dtd">
  %remote;
  <!ENTITY e SYSTEM "http://127.0.0.1:{port}/e.txt">
  <!ENTITY f SYSTEM "file:///etc/passwd">
]>
<urlset><url><loc>http://a.example/&e;</loc></url>
<url><loc>http://b.example/</loc><lastmod>&f;</lastmod></url></urlset>""".encode()
        result = parse_sitemap(body)
        assert [e.loc for e in result.entries] == ["http://b.example/"]
        assert result.entries[0].lastmod is None
        assert "root:" not in repr(result)
        assert_no_connection(server)


def test_entities_are_not_expanded_even_where_the_doctype_cannot_be_removed():
    """UTF-16 is not touched at byte level: lxml's own settings are the defence there."""
    passwd = Path("/etc/passwd")
    text = """<?xml version="1.0" encoding="UTF-16"?>
<!DOCTYPE urlset [<!ENTITY e SYSTEM "file:///etc/passwd"><!ENTITY x "expanded">]>
<urlset><url><loc>http://a.example/&e;</loc></url>
<url><loc>http://b.example/</loc><lastmod>2025-06-09</lastmod></url>
<url><loc>http://c.example/&x;</loc></url></urlset>"""
    result = parse_sitemap(text.encode("utf-16"))
    assert [e.loc for e in result.entries] == ["http://b.example/"]
    assert "expanded" not in repr(result)
    if passwd.exists():
        first_line = passwd.read_text(errors="replace").splitlines()[0]
        assert first_line not in repr(result)


def test_billion_laughs_is_fast():
    started = time.monotonic()
    result = parse_sitemap(fixture("billion-laughs.xml"))
    assert time.monotonic() - started < 1
    assert len(repr(result)) < 2000


def test_not_a_sitemap_messages():
    atom = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>'
    assert "Atom feed" in parse_sitemap(atom).error
    assert parse_sitemap(atom).error_class == "NotASitemap"
    binary = random.Random(7).randbytes(4096)
    assert parse_sitemap(binary).error_class in ("NotASitemap", "BadGzip")
    assert parse_sitemap(b"\x89PNG\r\n\x1a\n" + binary).error_class == "NotASitemap"
    html = b"<html><body><p>Moved</body></html>"
    assert parse_sitemap(html).error == (
        "not a sitemap: the URL returned an HTML page; check the source's sitemap URL"
    )


def test_empty_and_blank_bodies():
    for body in (b"", b"   ", b"\n\r\n\t", gzip.compress(b""), gzip.compress(b"  \n")):
        result = parse_sitemap(body)
        assert result.error_class == "EmptySitemap", body
        assert result.error == "the sitemap URL returned an empty body"


def test_an_empty_urlset_is_valid_and_broken_sitemap_with_nothing_usable_is_an_error():
    empty = parse_sitemap(b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"/>')
    assert empty == SitemapResult(kind="urlset", entries=[])
    broken = parse_sitemap(b"<urlset><url><loc>http://a.example/x")
    assert broken.error_class == "MalformedSitemap"
    assert broken.kind == "urlset"
    assert parse_sitemap(b"<sitemapindex").error_class == "MalformedSitemap"


def test_leading_whitespace_and_bom_need_no_recovery():
    body = b"\n\n  \xef\xbb\xbf" + fixture("unnamespaced.xml")
    result = parse_sitemap(b"\n\n  " + fixture("unnamespaced.xml"))
    assert result.warning is None and len(result.entries) == 2
    assert parse_sitemap(body).entries == result.entries


def test_prefixed_sitemap_namespace_and_index_entries_have_no_news():
    body = b"""<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
      <sm:sitemap><sm:loc> http://a.example/s1.xml </sm:loc></sm:sitemap></sm:sitemapindex>"""
    result = parse_sitemap(body)
    assert result.kind == "index"
    assert result.entries == [SitemapEntry("http://a.example/s1.xml", None, None, None, None, None)]


def test_a_url_from_an_extension_namespace_is_not_an_entry():
    body = b"""<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:x="http://example.org/ext"><url><loc>http://a.example/</loc>
        <x:url><x:loc>http://not-an-entry.example/</x:loc></x:url></url></urlset>"""
    assert [e.loc for e in parse_sitemap(body).entries] == ["http://a.example/"]


def test_never_raises_on_mangled_input():
    rng = random.Random(2025)
    samples = [fixture(name) for name in EXPECTED]
    for _ in range(300):
        data = bytearray(rng.choice(samples))
        for _ in range(rng.randint(1, 8)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        check_invariants(parse_sitemap(bytes(data)))
    check_invariants(parse_sitemap(bytearray(fixture("plain.xml"))))
    check_invariants(parse_sitemap(memoryview(fixture("plain.xml"))))


# ---- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-06-09T12:00:00+02:00", "2025-06-09T10:00:00Z"),
        ("2025-06-09T12:00:00Z", "2025-06-09T12:00:00Z"),
        ("2025-06-09", "2025-06-09T00:00:00Z"),
        ("2025-06-09T10:00Z", "2025-06-09T10:00:00Z"),
        ("2025-06-09T10:00:00.123456-05:30", "2025-06-09T15:30:00Z"),
        ("2025-06-09T01:00:00+0200", "2025-06-08T23:00:00Z"),
        ("2025-06-09 10:00:00", "2025-06-09T10:00:00Z"),
        ("  2025-06-09T10:00:00 UTC ", "2025-06-09T10:00:00Z"),
        ("2025-06", "2025-06-01T00:00:00Z"),
        ("2025", "2025-01-01T00:00:00Z"),
        ("Mon, 09 Jun 2025 12:00:00 +0200", "2025-06-09T10:00:00Z"),
        ("", None),
        (None, None),
        ("yesterday", None),
        ("2025-13-01", None),
        ("2025-06-31", None),
        ("2025-06-09T25:00:00Z", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("1718000000", None),
    ],
)
def test_parse_date(value, expected):
    assert parse_date(value) == expected


# ---- robots.txt


def test_robots_sitemaps():
    robots = (
        "\ufeffUser-agent: *\r\n"
        "Disallow: /private/\r\n"
        "Sitemap: https://a.example/sitemap.xml\r\n"
        "SITEMAP:https://a.example/news.xml   # the news one\r\n"
        "  sitemap :  /relative.xml\r\n"
        "Sitemap: https://a.example/sitemap.xml\r\n"
        "Sitemap:\r\n"
        "# Sitemap: https://a.example/commented.xml\r\n"
        "Disallow: /sitemap-not.xml\r\n"
    )
    assert robots_sitemaps(robots) == [
        "https://a.example/sitemap.xml",
        "https://a.example/news.xml",
        "/relative.xml",
    ]
    assert robots_sitemaps("") == []


ROBOTS = sorted((TESTDATA / "robots-sample").glob("*.robots.txt")) if TESTDATA.is_dir() else []


@pytest.mark.skipif(not ROBOTS, reason="shared/testdata/robots-sample is absent")
@pytest.mark.parametrize("path", ROBOTS, ids=lambda p: p.name)
def test_robots_sitemaps_agree_with_protego(path):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert robots_sitemaps(text) == list(dict.fromkeys(Protego.parse(text).sitemaps))


# ---- third-party sitemaps in shared/testdata, when there are any


def shared_sitemaps() -> list[Path]:
    if not TESTDATA.is_dir():
        return []
    return sorted(
        path
        for path in TESTDATA.rglob("*")
        if path.is_file()
        and "sitemap" in path.name.lower()
        and not path.name.endswith((".md", ".json", ".txt"))
    )


SHARED_SITEMAPS = shared_sitemaps()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared/ folder beside the repository")
@pytest.mark.skipif(not SHARED_SITEMAPS, reason="no sitemaps in shared/testdata")
@pytest.mark.parametrize("path", SHARED_SITEMAPS, ids=lambda p: str(p.relative_to(TESTDATA)))
def test_shared_testdata_sitemaps(path):
    result = parse_sitemap(path.read_bytes())
    check_invariants(result)
    # a sidecar expectation, if the data set has one: {"kind": ..., "count": ..., "locs": [...]}
    sidecar = path.with_name(path.name + ".json")
    if sidecar.is_file():
        expected = json.loads(sidecar.read_text(encoding="utf-8"))
        if "kind" in expected:
            assert result.kind == expected["kind"]
        if "count" in expected:
            assert len(result.entries) == expected["count"]
        if "locs" in expected:
            assert [e.loc for e in result.entries] == expected["locs"]
