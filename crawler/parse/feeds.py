"""Feed bytes -> entries (pure: no network, no clock).

feedparser does the parsing; it always gets the bytes in a BytesIO (a string that looks like a
URL or a path would be fetched or opened). Its ``bozo`` flag is a warning, not a failure: a
malformed feed keeps its usable entries. A response with no entries that is not a feed at all
(an HTML page at a feed URL, binary content) is an error of the source.
"""

from __future__ import annotations

import calendar
import io
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import feedparser
from w3lib.html import remove_tags, replace_entities

_SPACES = re.compile(r"\s+")
# Tags that end a line or a block: removed as a space, so "NATO</p><p>Air" stays two words.
_BREAKING_TAGS = re.compile(
    r"<\s*/?\s*(?:br|p|div|li|ul|ol|dl|dt|dd|h[1-6]|tr|td|th|table|thead|tbody|blockquote"
    r"|pre|hr|section|article|header|footer|aside|figure|figcaption|address)\b[^>]*>",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entry:
    """One feed item, as plain text fields."""

    link: str | None
    guid: str | None  # the raw GUID as the feed wrote it
    title: str | None
    author: str | None
    published: str | None  # UTC ISO 8601 with Z
    summary: str | None


@dataclass(frozen=True)
class FeedResult:
    entries: list[Entry] = field(default_factory=list)
    warning: str | None = None  # the feed was malformed but usable
    error: str | None = None  # nothing usable: not a feed
    error_class: str | None = None


def html_to_text(value: str | None) -> str | None:
    """Feed HTML (summary, title) to one line of plain text."""
    if not value:
        return None
    text = replace_entities(remove_tags(_BREAKING_TAGS.sub(" ", value)))
    text = _SPACES.sub(" ", text).strip()
    return text or None


def _time(parsed: time.struct_time | None) -> str | None:
    if not parsed:
        return None
    try:
        stamp = calendar.timegm(parsed)
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, TypeError):
        return None


def _updated(raw: Any) -> time.struct_time | None:
    # `in` first: feedparser's get("updated_parsed") falls back to published_parsed with a
    # DeprecationWarning when only an unparseable published date is there.
    return raw.get("updated_parsed") if "updated_parsed" in raw else None


def _is_http(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://"))


def _entry(raw: Any) -> Entry:
    summary = raw.get("summary")
    if not summary and raw.get("content"):
        summary = raw["content"][0].get("value")
    link = raw.get("link") or None
    if link and raw.get("guidislink") and not _is_http(link):
        link = None  # feedparser copied an opaque guid ("12345", "tag:...") into the link
    if not link:
        for candidate in raw.get("links", []):
            if candidate.get("href"):
                link = candidate["href"]
                break
    return Entry(
        link=link.strip() if link else None,
        guid=(raw.get("id") or None),
        title=html_to_text(raw.get("title")),
        author=html_to_text(raw.get("author")),
        published=_time(raw.get("published_parsed") or _updated(raw)),
        summary=html_to_text(summary),
    )


def parse_feed(body: bytes, content_type: str | None = None) -> FeedResult:
    """Parse feed bytes. Never raises for bad input: the problem is in the result."""
    if not body.strip():
        return FeedResult(error="the feed URL returned an empty body", error_class="EmptyFeed")
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = feedparser.parse(io.BytesIO(body), response_headers=headers)
    except Exception as exc:  # feedparser is robust, but a parser bug must not stop the pass
        return FeedResult(error=f"the feed could not be parsed: {exc}", error_class="ParseError")
    entries = [_entry(raw) for raw in parsed.entries]
    entries = [e for e in entries if e.link or e.guid]
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not entries:
        if not parsed.get("version"):
            looks_html = b"<html" in body[:2048].lower() or (
                content_type is not None and "html" in content_type
            )
            what = "an HTML page" if looks_html else "something that is not RSS or Atom"
            return FeedResult(
                error=f"not a feed: the URL returned {what}; check the source's feed URL",
                error_class="NotAFeed",
            )
        if problem is not None:
            return FeedResult(
                error=f"malformed feed with no usable entries: {problem}",
                error_class="MalformedFeed",
            )
        return FeedResult()
    warning = f"malformed feed, usable entries kept: {problem}" if problem is not None else None
    return FeedResult(entries=entries, warning=warning)
