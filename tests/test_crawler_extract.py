"""Article page -> fields: crawler.parse.extract (fixture pages in tests/fixtures/pages/)."""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest
import trafilatura

from crawler.parse.extract import MAX_PAGE_BYTES, PageFields, extract_page, utc_iso

PAGES = Path(__file__).parent / "fixtures" / "pages"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (PAGES / "expected.json").read_text(encoding="utf-8")
)

BODY = (
    "<p>Defence ministers of the allies agreed on Monday to a joint plan that closes gaps in "
    "air and missile defence along the eastern flank, officials said after the meeting.</p>"
    "<p>The plan pools orders for launchers and interceptors, so that allies with small "
    "budgets pay the price the larger members pay, and sets a timetable for deliveries.</p>"
    "<p>The agreement still needs the approval of national parliaments in four member states "
    "before the first contracts can be signed in the autumn.</p>"
)


def page(head: str = "", body: str = BODY, html_attrs: str = 'lang="en"') -> str:
    return (
        f"<!DOCTYPE html><html {html_attrs}><head><meta charset='utf-8'>{head}</head>"
        f"<body><article>{body}</article></body></html>"
    )


# --------------------------------------------------------------------------- fixture pages


def test_every_fixture_page_has_an_expectation() -> None:
    files = {p.name for p in PAGES.iterdir() if p.name not in ("expected.json", "README.md")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_page_fields(name: str) -> None:
    case = EXPECTED[name]
    fields = extract_page((PAGES / name).read_bytes(), case["url"])
    assert dataclasses.asdict(fields) == case["fields"]


def test_text_input_gives_the_same_fields_as_bytes() -> None:
    case = EXPECTED["german.html"]
    html = (PAGES / "german.html").read_text(encoding="utf-8")
    assert dataclasses.asdict(extract_page(html, case["url"])) == case["fields"]


def test_extraction_is_a_pure_function() -> None:
    case = EXPECTED["article.html"]
    html = (PAGES / "article.html").read_bytes()
    assert extract_page(html, case["url"]) == extract_page(html, case["url"])


# --------------------------------------------------------------------------- fields


def test_offset_is_converted_to_utc() -> None:
    head = '<meta property="article:published_time" content="2025-06-09T12:30:00+02:00">'
    assert extract_page(page(head), "https://a.example/x").published == "2025-06-09T10:30:00Z"


def test_json_ld_date_wins_over_the_live_blog_update_time() -> None:
    head = (
        '<meta property="article:published_time" content="2025-06-10T18:00:00Z">'
        '<script type="application/ld+json">{"@context": "https://schema.org", '
        '"@type": "LiveBlogPosting", "headline": "Live: the summit", '
        '"datePublished": "2025-06-09T08:00:00+01:00"}</script>'
    )
    assert extract_page(page(head), "https://a.example/x").published == "2025-06-09T07:00:00Z"


def test_site_name_suffix_is_dropped_from_the_title() -> None:
    head = (
        "<title>Allies agree plan - Harbour Times</title>"
        '<meta property="og:site_name" content="Harbour Times">'
    )
    assert extract_page(page(head), "https://a.example/x").title == "Allies agree plan"


def test_headline_wins_over_title_with_section_and_date() -> None:
    head = '<meta property="og:title" content="Allies agree a plan | Europe | DW | 28.04.2023">'
    body = "<h1>Allies agree a plan</h1>" + BODY
    fields = extract_page(page(head, body), "https://www.dw.example/x")
    assert fields.title == "Allies agree a plan"
    assert fields.text and not fields.text.startswith("Allies agree a plan")


def test_byline_people_come_before_the_publisher_as_author() -> None:
    head = (
        '<meta property="og:site_name" content="Harbour Times">'
        '<meta name="author" content="Harbour Times">'
    )
    body = '<p class="author">By <a href="/staff/jk" rel="author">Jane Kowalski</a></p>'
    fields = extract_page(page(head, body + BODY), "https://harbourtimes.example/x")
    assert fields.author == "Jane Kowalski, Harbour Times"


def test_author_slug_becomes_a_name() -> None:
    head = '<meta name="author" content="chuck-ross">'
    assert extract_page(page(head), "https://a.example/x").author == "Chuck Ross"


def test_amp_url_without_amp_attribute_is_amp() -> None:
    head = '<link rel="canonical" href="https://a.example/news/story.amp.html">'
    fields = extract_page(page(head), "https://a.example/news/story.amp.html")
    assert fields.amp is True
    assert fields.canonical == "https://a.example/news/story.html"


def test_canonical_is_none_when_the_page_names_none() -> None:
    assert extract_page(page(), "https://a.example/x?utm_source=rss").canonical is None


def test_unusable_canonical_falls_back_to_og_url() -> None:
    head = (
        '<link rel="canonical" href="javascript:void(0)">'
        '<meta property="og:url" content="https://a.example/story?utm_medium=x">'
    )
    assert extract_page(page(head), "https://a.example/y").canonical == "https://a.example/story"


def test_http_charset_decides_for_bytes_without_a_declaration() -> None:
    html = page("<title>Défense aérienne</title>").replace("<meta charset='utf-8'>", "")
    fields = extract_page(html.encode("cp1252"), "https://a.example/x", encoding="cp1252")
    assert fields.title == "Défense aérienne"


def test_valid_utf8_wins_over_a_wrong_declaration() -> None:
    html = page("<title>Défense aérienne</title>").replace("utf-8", "iso-8859-1")
    fields = extract_page(html.encode("utf-8"), "https://a.example/x", encoding="iso-8859-1")
    assert fields.title == "Défense aérienne"


def test_short_text_classifies_language_from_title_and_description() -> None:
    head = (
        "<title>Die Bundeswehr erhält neue Flugabwehrsysteme für den Norden</title>"
        '<meta name="description" content="Der Haushaltsausschuss hat die Beschaffung von sechs '
        'weiteren Systemen am Mittwoch in Berlin beschlossen.">'
    )
    fields = extract_page(page(head, "<p>Kurz.</p>"), "https://a.example/x")
    assert fields.error == "no article text found"
    assert fields.text is None
    assert fields.language == "de"


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("", "empty page"),
        (b"", "empty page"),
        ("  \n\t ", "empty page"),
        (bytes(random.Random(7).randrange(256) for _ in range(2000)), "not an HTML page"),
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "not an HTML page"),
        ('{"headline": "not a page"}', "not an HTML page"),
        ("Plain text, no markup. " * 40, "not an HTML page"),
        ("<html><body><p>" + "x" * (MAX_PAGE_BYTES + 1), "page too large"),
        ("<html><head><title>T</ti<body><div><p>unclosed", "no article text found"),
        ("<html><body>" + "<div>" * 50_000 + "<p>deep</p></body></html>", "no article text found"),
    ],
    ids=[
        "empty",
        "empty-bytes",
        "blank",
        "random",
        "png",
        "json",
        "text",
        "huge",
        "broken",
        "deep",
    ],
)
def test_unusable_input_sets_error_and_never_raises(html: str | bytes, error: str) -> None:
    fields = extract_page(html, "https://a.example/x")
    assert isinstance(fields, PageFields)
    assert fields.error is not None and fields.error.startswith(error)
    assert fields.text is None


def test_library_failure_is_returned_as_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(trafilatura, "bare_extraction", broken)
    fields = extract_page(page(), "https://a.example/x")
    assert fields.error == "extraction failed: RuntimeError: boom"


def test_malformed_json_ld_and_odd_values_are_ignored() -> None:
    head = (
        '<script type="application/ld+json">{"@type": [1, {"x": 2}], "author": {"name": 5}, '
        '"headline": ["a"], "datePublished": 123}</script>'
        '<script type="application/ld+json">{not json</script>'
        '<link rel="canonical" href="http://[::1">'
        '<meta property="article:published_time" content="yesterday">'
    )
    fields = extract_page(page(head), "https://a.example/x")
    assert fields.error is None
    assert (fields.author, fields.published, fields.canonical) == (None, None, None)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-03T17:47:42+02:00", "2024-05-03T15:47:42Z"),
        ("2024-05-03T15:47:42.389Z", "2024-05-03T15:47:42Z"),
        ("2024-05-03T15:47:42.389+0000", "2024-05-03T15:47:42Z"),
        ("2024-05-03 10:15", "2024-05-03T10:15:00Z"),
        ("2023-04-25T06:00:00-04:00", "2023-04-25T10:00:00Z"),
        ("2025-01-01T01:00:00+09:00", "2024-12-31T16:00:00Z"),
        ("2024-05-03", "2024-05-03T00:00:00Z"),
        ("2024/05/03", "2024-05-03T00:00:00Z"),
        ("20240503", "2024-05-03T00:00:00Z"),
        ("Mon, 09 Jun 2025 10:00:00 +0200", "2025-06-09T08:00:00Z"),
        ("2024-05-03T12:00:00 GMT", "2024-05-03T12:00:00Z"),
        ("2024-13-03", None),
        ("2024-05-03T25:00:00", None),
        ("1850-01-01", None),
        ("yesterday", None),
        ("", None),
    ],
)
def test_utc_iso(value: str, expected: str | None) -> None:
    assert utc_iso(value) == expected
