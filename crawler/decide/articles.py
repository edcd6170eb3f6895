"""From what a listing and a page say to one archive record (pure).

Which field wins: a feed's title (clean, chosen by the editor) over the page's; the page's own
published time over the feed's (feedparser misreads some zones) or the sitemap's; the page's
author over the feed's; the feed's summary over the page's description; the page's text.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from crawler.decide import neardup
from crawler.decide.fingerprint import text_fingerprint
from crawler.decide.urls import amp_to_canonical_guess, canonical_url
from crawler.parse.extract import PageFields
from crawler.parse.feeds import Entry
from crawler.records import ArticleIn


def entry_link(entry: Entry) -> str | None:
    if entry.link:
        return entry.link
    if entry.guid and entry.guid.startswith(("http://", "https://")):
        return entry.guid
    return None


def canonical_for_link(link: str) -> str:
    canonical = canonical_url(link)
    amp = amp_to_canonical_guess(canonical)
    return canonical_url(amp) if amp is not None else canonical


def article_from_entry(source: str, entry: Entry) -> ArticleIn | None:
    """A feed entry as an archive record (its summary is the text); None without a URL."""
    link = entry_link(entry)
    if not link:
        return None
    canonical = canonical_for_link(link)
    return ArticleIn(
        url=canonical,
        source=source,
        guid=entry.guid,
        title=entry.title,
        author=entry.author,
        published=entry.published,
        language=None,
        summary=entry.summary,
        text=entry.summary,
        fingerprint=text_fingerprint(entry.summary),
        urls=(canonical, link),
        sketch=neardup.sketch(entry.summary or ""),
        title_key=neardup.title_key(entry.title),
    )


def entry_info(entry: Entry) -> dict[str, Any]:
    """What a page request carries about the feed entry it came from (JSON-safe)."""
    return {"origin": "feed", "entry": asdict(entry)}


def info_entry(info: dict[str, Any]) -> Entry | None:
    return Entry(**info["entry"]) if info.get("origin") == "feed" else None


def article_from_page(
    source: str,
    info: dict[str, Any],
    page: PageFields,
    request_url: str,
    final_url: str,
) -> ArticleIn:
    """The record for a fetched article page and what its listing said about it."""
    entry = info_entry(info)
    canonical = page.canonical or canonical_for_link(final_url)
    links = [request_url, final_url]
    if entry is not None and entry_link(entry):
        links.append(entry_link(entry) or "")
    urls = tuple(dict.fromkeys([canonical, *(canonical_url(u) for u in links), *links]))
    if entry is not None:
        title = entry.title or page.title
        author = page.author or entry.author
        published = page.published or entry.published
        summary = entry.summary or page.description
        language = page.language
    else:
        title = page.title or info.get("title")
        author = page.author
        published = page.published or info.get("published")
        summary = page.description
        language = page.language or info.get("language")
    text = page.text or summary
    return ArticleIn(
        url=canonical,
        source=source,
        guid=entry.guid if entry is not None else None,
        title=title,
        author=author,
        published=published,
        language=language,
        summary=summary,
        text=text,
        fingerprint=text_fingerprint(text),
        urls=urls,
        origin="page",
        description=page.description,
        site_name=page.site_name,
        sketch=neardup.sketch(text or ""),
        title_key=neardup.title_key(title),
    )
