"""Published dates on pages without date metadata: crawler.parse.dates through extract_page.

The pages of tests/fixtures/dates/ carry no date meta tags, JSON-LD or itemprop; their only
date is in a byline, a ``<time>``, a "Published ..." label, a dateline or the URL, beside
decoy dates (teasers, related blocks, sidebars, comments, footers, the site's date of the
day, events in the body). expected.json gives each page's URL and its expected day, or null
when the page shows no publication date (then any date is wrong). Pages marked "heldout"
were written before the code and never used to tune it (bench/dates.py scores both parts).
Then the steps of ``explain`` on small pages, and a real ``newswatch crawl`` of a news sitemap
whose pages carry no date metadata.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from lxml.html import HtmlElement, fromstring

from crawler.parse.dates import MAX_DATE, explain, find_published, pruned, text_dates, url_date
from crawler.parse.extract import extract_page

DATES = Path(__file__).parent / "fixtures" / "dates"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (DATES / "expected.json").read_text(encoding="utf-8")
)


def test_the_fixture_set_is_what_the_docs_say() -> None:
    assert len(EXPECTED) >= 115
    assert sum(e["part"] == "heldout" for e in EXPECTED.values()) >= 20
    assert sum(e["published"] is None for e in EXPECTED.values()) >= 18
    assert len({e["lang"] for e in EXPECTED.values()}) >= 23
    for name in EXPECTED:
        html = (DATES / name).read_text(encoding="utf-8").lower()
        for metadata in ("ld+json", "itemprop", "published_time", 'name="date"', "pubdate"):
            assert metadata not in html, f"{name} has date metadata ({metadata})"
    assert sorted(p.name for p in DATES.glob("*.html")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_published_date_of_each_fixture(name: str) -> None:
    expected = EXPECTED[name]
    html = (DATES / name).read_bytes()
    got = extract_page(html, expected["url"]).published
    assert (got[:10] if got else None) == expected["published"]


@pytest.mark.parametrize(
    ("text", "lang", "region", "day"),
    [
        ("5 December 2026", "en", None, "2026-12-05"),
        ("December 5, 2026", "en", None, "2026-12-05"),
        ("Dec. 5th, 2026", "en", "US", "2026-12-05"),
        ("05.12.2026", "de", None, "2026-12-05"),
        ("5. Dezember 2026", "de", None, "2026-12-05"),
        ("le 5 décembre 2026", "fr", None, "2026-12-05"),
        ("1er mars 2026", "fr", None, "2026-03-01"),
        ("5 de diciembre de 2026", "es", None, "2026-12-05"),
        ("5 dicembre 2026", "it", None, "2026-12-05"),
        ("5 december 2026", "nl", None, "2026-12-05"),
        ("5 grudnia 2026", "pl", None, "2026-12-05"),
        ("5 de dezembro de 2026", "pt", None, "2026-12-05"),
        ("5 decembrie 2026", "ro", None, "2026-12-05"),
        ("5. prosince 2026", "cs", None, "2026-12-05"),
        ("12. 5. 2026 8:00", "cs", None, "2026-05-12"),
        ("5 грудня 2026 р.", "uk", None, "2026-12-05"),
        ("5 декабря 2026 г.", "ru", None, "2026-12-05"),
        ("5 Aralık 2026 Cumartesi", "tr", None, "2026-12-05"),
        ("5 ARALIK 2026", "tr", None, "2026-12-05"),
        ("2026. december 5.", "hu", None, "2026-12-05"),
        ("2026-12-05T10:31", None, None, "2026-12-05"),
        ("5/12/2026", "fr", None, "2026-12-05"),
        ("5/12/2026", "en", "GB", "2026-12-05"),
        ("12/5/2026", "en", "US", "2026-12-05"),
        ("25/12/2026", "en", None, "2026-12-25"),
        ("12/25/2026", "en", None, "2026-12-25"),
        ("05-Dec-2026", "en", "GB", "2026-12-05"),
        ("Objavljeno 6. oktobra 2026", "sl", None, "2026-10-06"),
        ("2026 m. spalio 7 d.", "lt", None, "2026-10-07"),
        ("2026. gada 7. oktobris", "lv", None, "2026-10-07"),
        ("2025年1月14日 01時28分", "ja", None, "2025-01-14"),
        ("17 dhjetor 2026", "sq", None, "2026-12-17"),
        ("Veröffentlicht am 27.04.24 um 07:39 Uhr", "de", None, "2024-04-27"),
    ],
)
def test_date_expressions(text: str, lang: str | None, region: str | None, day: str) -> None:
    found = text_dates(text, lang, region)
    assert [f.day.isoformat() for f in found] == [day]


def test_ambiguous_slashed_date_on_a_page_of_unknown_region_is_no_date() -> None:
    assert text_dates("Posted 03/02/2026", "en", None) == []
    assert text_dates("am 27.04.24 um 07:39 Uhr, Version 1.2.24", "de") == []  # unlabelled yy
    assert text_dates("not a date: 2026 in 5 words, 31.02.2026, 12/12/1850", "en", None) == []
    assert text_dates(f"{MAX_DATE.day}.{MAX_DATE.month}.{MAX_DATE.year}", "de") == []


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("Publié le 12 octobre 2026, mis à jour le 13 octobre 2026", ["published", "updated"]),
        ("Aktualisiert am 06.12.2026 | Veröffentlicht am 05.12.2026", ["updated", "published"]),
        ("Zaktualizowano: 6 grudnia 2026 Opublikowano: 5 grudnia 2026", ["updated", "published"]),
        ("Обновлено 05.04.2026; Опубликовано 04.04.2026", ["updated", "published"]),
        ("Yayınlanma: 5 Aralık 2026 · Güncelleme: 5 Aralık 2026", ["published", "updated"]),
        ("By Jane Doe, 5 December 2026", [None]),
    ],
)
def test_labels(text: str, labels: list[str | None]) -> None:
    assert [f.label for f in text_dates(text)] == labels


@pytest.mark.parametrize(
    ("url", "day"),
    [
        ("https://example.com/news/2026/12/05/slug/", date(2026, 12, 5)),
        ("https://example.com/es/2026-12-05/slug.html", date(2026, 12, 5)),
        ("https://example.com/news/20261205/slug", date(2026, 12, 5)),
        ("https://example.com/2026/12/slug/", None),  # no day
        ("https://example.com/a/20261399/slug", None),  # an id, not a date
        ("https://example.com/news/slug?d=2026-12-05", None),  # the query is no path
        ("https://2026-12-05.example.com/news", None),
    ],
)
def test_url_dates(url: str, day: date | None) -> None:
    assert url_date(url) == day


def test_a_teaser_date_is_never_the_published_date() -> None:
    html = (
        "<html lang='en'><body><article><h1>Headline of the article</h1>"
        "<p>By A. Writer</p><p>" + "Body text of the article, long enough. " * 8 + "</p>"
        "<p>The treaty was signed on 12 March 2024 in Rome.</p>"
        "<ul><li><a href='/x'>Another story</a> 3 December 2026</li>"
        "<li><a href='/y'>A third story</a> 1 December 2026</li></ul></article>"
        "<aside><time datetime='2026-12-04'>4 December</time></aside></body></html>"
    )
    assert find_published(fromstring(html), "https://example.com/news/headline") is None
    dated = html.replace("By A. Writer", "By A. Writer, 5 December 2026")
    assert find_published(fromstring(dated), "https://example.com/news/headline") == "2026-12-05"


# --------------------------------------------------------------------------- through `crawl`

NEWS_SITEMAP = """<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">{urls}
</urlset>
"""
NEWS_URL = """
  <url><loc>{site}{path}</loc><news:news><news:publication><news:name>Local</news:name>
    <news:language>{lang}</news:language></news:publication>
    <news:publication_date>2026-12-01T08:00:00Z</news:publication_date>
    <news:title>{name}</news:title></news:news></url>"""


def test_crawl_archives_the_date_the_page_shows_and_never_a_teasers(tmp_path: Path) -> None:
    """A real `newswatch crawl` of a news sitemap whose pages carry no date metadata: the
    archive keeps the byline's date, the URL's date, and for a page that shows none (only
    comment, teaser and body dates) the sitemap's publication date."""
    from nw import newswatch, write_config
    from servers import FixtureSite

    pages = {  # fixture -> where it is served
        "n02_de_aside_time_text.html": "/kaernten/lienz/19852382/nur-ein-drittel-der-kinder",
        "n12_nl_relative_today_url_date.html": "/binnenland/2026/02/02/verlinden-ruilt/",
        "n11_ro_wordpress_comments_only_dates.html": "/local/parcul-central-renovat",
        "n13_en_us_magazine_slashed.html": "/news/city-council-approves-budget",
    }
    with FixtureSite(None) as site:
        urls = "".join(
            NEWS_URL.format(site=site.url, path=path, lang=EXPECTED[name]["lang"], name=name)
            for name, path in pages.items()
        )
        site.set("/sitemap.xml", NEWS_SITEMAP.format(urls=urls), content_type="application/xml")
        for name, path in pages.items():
            site.set(path, (DATES / name).read_bytes(), content_type="text/html; charset=utf-8")
        config = write_config(
            tmp_path, f'[[sources]]\nname = "local"\nsitemap = "{site.url}/sitemap.xml"\n'
        )
        result = newswatch(config, "crawl")
        assert result.returncode == 0, result.stderr
        exported = newswatch(config, "export")
        assert exported.returncode == 0, exported.stderr
    records = {json.loads(line)["url"]: json.loads(line) for line in exported.stdout.splitlines()}
    published = {name: records[site.url + path]["published"] for name, path in pages.items()}
    assert published == {
        "n02_de_aside_time_text.html": "2025-06-30T00:00:00Z",  # the metadata column's <time>
        "n12_nl_relative_today_url_date.html": "2026-02-02T00:00:00Z",  # "Vandaag", the URL
        "n11_ro_wordpress_comments_only_dates.html": "2026-12-01T08:00:00Z",  # the sitemap's
        "n13_en_us_magazine_slashed.html": "2026-12-05T00:00:00Z",  # "Published 12/05/2026"
    }


# --------------------------------------------------------------------------- page structures


def page(body: str, lang: str = "en", title: str = "Harbour wall repairs begin") -> HtmlElement:
    return fromstring(
        f"<html lang='{lang}'><head><title>{title} | Gazette</title></head><body>{body}</body>"
        "</html>"
    )


BODY = "<div class='body'>" + "<p>The works will take two years and cost a lot.</p>" * 3 + "</div>"
URL = "https://example.com/news/harbour-wall"


def test_explain_names_the_step() -> None:
    labelled = page(f"<article><h1>Harbour wall repairs begin</h1><p>Published 5 May 2026</p>"
                    f"{BODY}</article>")  # fmt: skip
    assert explain(labelled, URL) == ("2026-05-05", "labelled")
    assert explain(labelled, URL.replace("news/", "news/2026/05/04/")) == ("2026-05-05", "labelled")
    bare = page(f"<article><h1>Harbour wall repairs begin</h1>{BODY}</article>")
    assert explain(bare, URL) == (None, "none")
    assert explain(bare, URL.replace("news/", "news/2026/05/04/")) == ("2026-05-04", "url")


def test_the_headline_behind_a_breadcrumb_and_a_label() -> None:
    crumb = (
        "<nav class='crumbs'><a href='/'>Home</a><h1>Harbour wall repairs: council votes</h1></nav>"
        "<article><h2 class='headline'>Harbour wall repairs begin at last</h2>"
        f"<div class='line'>9 May 2026</div>{BODY}</article>"
    )
    assert explain(page(crumb), URL) == ("2026-05-09", "header")
    label = crumb.replace("<nav class='crumbs'><a href='/'>Home</a><h1>", "<h1>").replace(
        "council votes</h1></nav>", "</h1>"
    )
    label = label.replace("<h1>Harbour wall repairs: </h1>", "<h1>Article detail</h1>")
    assert explain(page(label), URL) == ("2026-05-09", "header")


def test_class_words_label_dates_and_a_lead_is_no_byline() -> None:
    spans = (
        "<article><h1>Harbour wall repairs begin</h1><p class='meta'>"
        "<span class='date-modified'>12 May 2026</span> "
        f"<span class='date-published'>11 May 2026</span></p>{BODY}</article>"
    )
    assert explain(page(spans), URL) == ("2026-05-11", "labelled")
    only_update = spans.replace("<span class='date-published'>11 May 2026</span>", "")
    assert explain(page(only_update), URL) == (None, "none")
    lead = (
        "<article><h1>Harbour wall repairs begin</h1><p class='lead'>The council agreed "
        f"the plan. It voted on 12 May 2024.</p>{BODY}</article>"
    )
    assert explain(page(lead), URL) == (None, "none")


def test_datelines_need_a_place_and_a_dash() -> None:
    def first_paragraph(text: str) -> tuple[str | None, str]:
        html = f"<article><h1>Harbour wall repairs begin</h1><div class='body'><p>{text}</p>"
        return explain(page(html + BODY[18:] + "</article>"), URL)

    assert first_paragraph("LISBONNE, le 3 mars 2026 (AFP) – Le parti est arrivé en tête.") == (
        "2026-03-03",
        "dateline",
    )
    assert first_paragraph("PORTSMOUTH, 14 November 2026 — Ferries resumed on Saturday.")[0] == (
        "2026-11-14"
    )
    assert first_paragraph("Het werk werd op 14 maart 1999 voor het laatst getoond.") == (
        None,
        "none",
    )


def test_slashed_dates_in_the_order_the_page_shows() -> None:
    html = (
        "<article><h1>Harbour wall repairs begin</h1><p>Posted 03/02/2026</p>"
        f"{BODY}<p class='note'>Meeting held 25/01/2026.</p></article>"
    )
    assert find_published(page(html), URL) == "2026-02-03"  # 25/01 says day first
    assert find_published(page(html.replace("25/01/2026", "01/25/2026")), URL) == "2026-03-02"


def test_wordpress_permalinked_entry_date() -> None:
    html = (
        "<article><h1>Harbour wall repairs begin</h1><div class='entry-meta'><span "
        "class='posted-on'><a href='/p/1' rel='bookmark'><time class='entry-date updated'>"
        "5 May 2026</time></a></span> by <a href='/a/sam'>Sam</a></div>"
        f"{BODY}</article><ul class='related'><li><a href='/x'>Other</a> 4 May 2026</li></ul>"
    )
    assert explain(page(html), URL) == ("2026-05-05", "labelled")  # "posted-on"
    html = html.replace(" class='posted-on'", "")
    assert explain(page(html), URL) == ("2026-05-05", "time")


def test_a_time_near_the_headline_outside_the_article_region() -> None:
    html = (
        "<div class='top'><h1>Harbour wall repairs begin</h1></div>"
        "<div class='meta-col'><time>7 May 2026</time></div>"
        "<div class='body'>" + "<p>The works will take two years and cost a lot.</p>" * 3 + "</div>"
        "<aside><time>6 May 2026</time></aside>"
    )
    assert explain(page(html), URL)[0] == "2026-05-07"
    assert explain(page(html.replace("<time>7 May 2026</time>", "")), URL) == (None, "none")


def test_the_page_pruned_for_htmldate_keeps_no_teasers_nor_resource_links() -> None:
    html = (
        "<html><head><link rel='preload' href='/static/2025-09-08T18:44:48-ab/main.css'>"
        "<link rel='canonical' href='https://example.com/news/2026/05/04/harbour'></head><body>"
        f"<article><h1>Harbour wall repairs begin</h1>{BODY}</article>"
        "<ul class='related'><li><a href='/x'>Other story</a> 3 May 2026</li></ul></body></html>"
    )
    html = html.replace("</ul>", "</ul><link rel='stylesheet' class='ads' href='/w.css'>")
    kept = pruned(fromstring(html))  # a resource link that is a decoy too: dropped once
    assert [link.get("rel") for link in kept.iter("link")] == ["canonical"]
    assert "Other story" not in kept.text_content()
    assert "Harbour wall repairs begin" in kept.text_content()
