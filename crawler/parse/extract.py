"""Article page -> fields (pure: no network, database, clock or environment).

``extract_page(html, url)`` parses the page once (lxml, via trafilatura's loader), reads the
publisher's own metadata from the tree (``<link rel=canonical>``, Open Graph and article meta
tags, JSON-LD, ``<h1>``), and lets trafilatura find the article body. trafilatura's and
htmldate's metadata heuristics run only for what the page's metadata lacks. It never raises:
an unusable page gives a `PageFields` whose ``error`` says why ("empty page", "not an HTML
page", "no article text found", ...), with ``text`` None and whatever else could be read.

Which source wins, as measured with ``bench/extraction.py DATA_DIR --direct``:

title      JSON-LD headline, og:title, ``<title>``, ``<h1>``; a " | Site" / " - Site" suffix
           naming the site is dropped, and a shorter candidate the title starts with wins
           ("Headline | Section | Date" -> "Headline")
author     JSON-LD article authors (people and organisations), else author meta tags; when
           these name only the publisher, the byline's people come first; "A, B"
published  JSON-LD datePublished (live blogs put their last update in article:published_time),
           then published-time meta tags, ``itemprop=datePublished``, then what the article
           shows (`crawler.parse.dates`: a "Published ..." label, ``<time>``, the URL's date, the
           byline or dateline by the headline; never update dates, teasers or body text),
           then htmldate without free-text search on the page with its teasers, related
           blocks, sidebars, comments and footers removed (on the whole page it took dates
           from teaser links); UTC ``YYYY-MM-DDTHH:MM:SSZ``
text       trafilatura's fast pass, and its full pass (readability/jusText fallback) when the
           fast one found under 1500 characters or mostly link texts; the headline line is
           dropped; paragraphs joined by "\n"
canonical  ``<link rel=canonical>``, else og:url; absolute, cleaned by `canonical_url`; an AMP
           page's canonical is its non-AMP page
language   py3langid on the text (with title and description when the text is short)
"""

from __future__ import annotations

import html
import json
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

from lxml.html import HtmlElement
from w3lib.encoding import html_to_unicode

from crawler.decide.urls import amp_to_canonical_guess, canonical_url

__all__ = ["MAX_PAGE_BYTES", "MIN_TEXT_CHARS", "PageFields", "extract_page", "utc_iso"]

LOGGER = logging.getLogger(__name__)

# Larger pages are refused (the crawler's default max_page_bytes); lxml and trafilatura would
# take seconds and hundreds of MB on them.
MAX_PAGE_BYTES = 10_000_000
# A body shorter than this is no article (a section front, an error page, a paywall stub).
MIN_TEXT_CHARS = 200
# Below this many characters of body, the language is guessed from title + description too.
_LANG_MIN_CHARS = 200
_LANG_SAMPLE_CHARS = 2000

# htmldate's latest plausible date: a fixed bound instead of its default "today", so that
# extraction stays a pure function.
_MAX_DATE = "2100-01-01"
# trafilatura's fast pass (no readability/jusText fallback) is 40% quicker and as good on most
# pages; when it finds less text than this, the full extraction runs too (about 1 page in 9).
_SECOND_PASS_CHARS = 1500
# A "body" that is mostly the texts of links is a teaser list, not an article.
_MAX_LINKS = 0.5


@dataclass(frozen=True)
class PageFields:
    """What an article page says about itself. Every field may be None."""

    title: str | None
    author: str | None  # "A, B" for several
    published: str | None  # UTC "YYYY-MM-DDTHH:MM:SSZ" (midnight when the page gives a date only)
    description: str | None
    site_name: str | None
    text: str | None  # the article body, paragraphs separated by "\n"
    language: str | None  # ISO 639-1
    canonical: str | None  # the page's canonical URL, cleaned; None if the page names none
    amp: bool  # the page is an AMP page
    error: str | None = None  # why nothing usable came out; other fields may still be set


def extract_page(html: bytes | str, url: str, *, encoding: str | None = None) -> PageFields:
    """The fields of the article page ``html`` fetched from ``url``. Never raises.

    ``encoding``: the charset of the HTTP ``Content-Type``, if any; it decides for bytes that
    are not valid UTF-8 (before ``<meta charset>``).
    """
    try:
        return _extract(html, url, encoding)
    except Exception as err:  # a bug or a library failure on hostile input: report, go on
        LOGGER.warning("extraction failed for %s: %r", url, err)
        return _failed(f"extraction failed: {type(err).__name__}: {err}")


def _failed(error: str) -> PageFields:
    return PageFields(None, None, None, None, None, None, None, None, False, error)


# --------------------------------------------------------------------------- decoding, parsing

_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\ufffd]")
_HTML_SIGN = re.compile(r"<(?:!doctype|html|head|body|meta|title|div|p|article|main)\b", re.I)


def _decode(html: bytes | str, encoding: str | None = None) -> str:
    """Bytes as text: a BOM, else valid UTF-8, else the HTTP charset, else ``<meta charset>``.

    Valid UTF-8 wins over declarations: pages re-encoded by a proxy or an archive keep their
    old ``<meta charset>``, while text in another charset is practically never valid UTF-8.
    """
    if isinstance(html, str):
        return html
    if not html.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return html.decode("utf-8")
        except UnicodeDecodeError:
            pass
    header = f"text/html; charset={encoding}" if encoding else None
    _, text = html_to_unicode(header, html)
    return text


def _not_html(text: str) -> str | None:
    head = text[:4096]
    if not head.strip():
        return "empty page"
    if len(_CONTROL.findall(head)) > max(8, len(head) // 50):
        return "not an HTML page (binary data)"
    if not _HTML_SIGN.search(text[:200_000]):
        return "not an HTML page"
    return None


def _parse(text: str) -> HtmlElement | None:
    from trafilatura import load_html  # imported here: trafilatura takes ~0.3 s to import

    tree = load_html(text)
    return tree if isinstance(tree, HtmlElement) else None


# --------------------------------------------------------------------------- the page's metadata


@dataclass
class _Meta:
    """Raw candidates read from the tree, before choosing."""

    meta: dict[str, list[str]]
    canonical_href: str | None
    base_href: str | None
    html_amp: bool
    title_tag: str | None
    h1: str | None
    ld: list[dict[str, Any]]
    time_published: str | None


_WS = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")  # soft hyphen, zero widths


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if "&" in value:  # JSON-LD strings often carry HTML entities (&quot;, &#8217;)
        value = html.unescape(value)
    value = _WS.sub(" ", _INVISIBLE.sub("", value)).strip()
    return value or None


def _read_meta(tree: HtmlElement) -> _Meta:
    meta: dict[str, list[str]] = {}
    canonical_href = base_href = title_tag = h1 = time_published = None
    ld: list[dict[str, Any]] = []
    for el in tree.iter("meta", "link", "base", "title", "script", "h1", "time"):
        tag = el.tag
        if tag == "meta":
            content = el.get("content")
            if content is None:
                continue
            for attr in ("property", "name", "itemprop", "http-equiv"):
                key = el.get(attr)
                if key:
                    meta.setdefault(key.strip().lower(), []).append(content)
        elif tag == "link":
            rel = (el.get("rel") or "").lower().split()
            if "canonical" in rel and canonical_href is None and el.get("href"):
                canonical_href = el.get("href", "").strip() or None
        elif tag == "base":
            if base_href is None and el.get("href"):
                base_href = el.get("href", "").strip() or None
        elif tag == "title":
            if title_tag is None:
                title_tag = _clean(el.text_content())
        elif tag == "script":
            if "ld+json" in (el.get("type") or "").lower():
                ld.extend(_json_ld_objects(el.text_content()))
        elif tag == "h1":
            if h1 is None:
                h1 = _clean(el.text_content())
        elif (
            tag == "time"
            and time_published is None
            and (el.get("itemprop") or "").lower() == "datepublished"
        ):
            time_published = el.get("datetime") or _clean(el.text_content())
    if time_published is None:
        for el in tree.xpath('//*[@itemprop="datePublished"][not(self::meta)][@content]'):
            time_published = el.get("content")
            break
    attrs = tree.attrib
    html_amp = tree.tag == "html" and ("amp" in attrs or "⚡" in attrs)
    return _Meta(meta, canonical_href, base_href, html_amp, title_tag, h1, ld, time_published)


def _json_ld_objects(source: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in a JSON-LD script, flattened through lists and @graph."""
    source = source.strip().removeprefix("<!--").removesuffix("-->").strip().rstrip(";")
    if not source:
        return
    try:
        data = json.loads(source, strict=False)
    except ValueError:
        return
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            yield item
            graph = item.get("@graph")
            if graph is not None:
                stack.append(graph)
            main = item.get("mainEntity")
            if isinstance(main, dict | list):
                stack.append(main)


_ARTICLE_TYPES = re.compile(r"article|posting|report|webpage|newsarticle|liveblog", re.I)


def _types(obj: dict[str, Any]) -> list[str]:
    value = obj.get("@type")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _ld_articles(ld: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON-LD objects that describe the article (articles before web pages)."""
    articles = [o for o in ld if any(_ARTICLE_TYPES.search(t) for t in _types(o))]
    return sorted(articles, key=lambda o: any("webpage" in t.lower() for t in _types(o)))


def _first(meta: dict[str, list[str]], *keys: str) -> str | None:
    for key in keys:
        for value in meta.get(key, ()):
            cleaned = _clean(value)
            if cleaned:
                return cleaned
    return None


# --------------------------------------------------------------------------- choosing fields

# "Headline | Site": separators between a headline and a site name (or section, or date)
_SEPARATORS = (" | ", " - ", " – ", " — ", " :: ", " · ", " • ", " // ", " » ", " * ", " / ")
_TIGHT_SEPARATORS = ("｜", "：", "ㅣ", "|", "--", "-")
_SITE_TAIL_EXTRA = 15  # "MDR.DE", "Politics News | Metro News": a little more than the name


def _norm_key(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def _strip_site(title: str, names: set[str]) -> str:
    """``Headline - Site`` -> ``Headline`` when the suffix names the site (``names``: keys)."""
    for sep in _SEPARATORS + _TIGHT_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if not found or not head.strip():
            continue
        key = _norm_key(tail).replace(" ", "")
        if any(name in key and len(key) <= len(name) + _SITE_TAIL_EXTRA for name in names):
            return _strip_site(head.strip(), names)
    for sep in _SEPARATORS:  # "Site | Headline"
        head, found, tail = title.partition(sep)
        if found and tail.strip() and _norm_key(head).replace(" ", "") in names:
            return tail.strip()
    return title


def _site_names(m: _Meta, ld: list[dict[str, Any]], site: str | None, host: str) -> set[str]:
    names = [site, _first(m.meta, "application-name", "al:ios:app_name", "twitter:site")]
    for obj in ld:
        publisher = obj.get("publisher")
        if isinstance(publisher, dict):
            names.append(_clean(publisher.get("name")))
        if any(t.lower() in ("organization", "newsmediaorganization") for t in _types(obj)):
            names.append(_clean(obj.get("name")))
    if host:
        labels = host.removeprefix("www.").split(".")
        names.append(max(labels[:-1] or labels, key=len))
    keys = {_norm_key(n.lstrip("@")).replace(" ", "") for n in names if n}
    return {k for k in keys if len(k) >= 3}


_MAX_TITLE = 400  # longer is no title but a markup accident (an unclosed <title>)


def _choose_title(m: _Meta, ld_articles: list[dict[str, Any]], names: set[str]) -> str | None:
    headline = None
    for obj in ld_articles:
        headline = _clean(obj.get("headline")) or _clean(obj.get("name"))
        if headline:
            break
    og = _first(m.meta, "og:title", "twitter:title", "dc.title")
    candidates = [c for c in (headline, og, m.title_tag, m.h1) if c and len(c) <= _MAX_TITLE]
    if not candidates:
        return None
    title = _strip_site(candidates[0], names)
    # "Headline | Section | Date": another candidate is the headline alone
    key = _norm_key(title)
    for other in (m.h1, headline, og):
        if other and len(other) >= 10:
            other_key = _norm_key(other)
            if len(other_key) < len(key) and key.startswith(other_key):
                rest = key[len(other_key) :]
                if rest[:3].strip() in {"|", "-", "–", "—", "·", "•", "*", "/", ":", "｜", "："}:
                    return other
    return title


_ORG_TYPES = ("organization", "newsmediaorganization", "corporation", "organisation")


def _ld_authors(value: Any) -> Iterator[tuple[str, bool]]:
    """(name, is an organisation) for each author in a JSON-LD ``author`` value."""
    if isinstance(value, str):
        yield value, False
    elif isinstance(value, list):
        for item in value:
            yield from _ld_authors(item)
    elif isinstance(value, dict):
        is_org = any(t.lower() in _ORG_TYPES for t in _types(value))
        name = value.get("name")
        if isinstance(name, list):
            name = " ".join(n for n in name if isinstance(n, str))
        if not isinstance(name, str):
            given, family = value.get("givenName"), value.get("familyName")
            name = " ".join(p for p in (given, family) if isinstance(p, str))
        if name:
            yield name, is_org


_AUTHOR_SPLIT = re.compile(r"\s*(?:;|,|\band\b|\bund\b|\bet\b|\by\b|&|\|)\s*")
_BY = re.compile(
    r"^(?:(?:written|posted|reported)\s+by|by|von|par|por|di|door|av|af|autor(?:in)?|author|"
    r"text|texto|redakteur(?:in)?)\b[\s:]*",
    re.I,
)
_SLUG = re.compile(r"^[a-z]+(?:-[a-z]+)+$")


def _author_list(values: Iterable[str]) -> list[str]:
    """Clean, split and de-duplicate author names; URLs, e-mails and numbers are no names."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values:
        value = _clean(value) or ""
        if not value or value.lower().startswith(("http://", "https://", "www.")) or "@" in value:
            continue
        for part in _AUTHOR_SPLIT.split(value) if len(value) > 40 or ";" in value else [value]:
            name = _BY.sub("", _clean(part) or "").strip(" ,.:;|-")
            if not name or len(name) > 80 or not any(c.isalpha() for c in name):
                continue
            key = _norm_key(name)
            if key not in seen:
                seen.add(key)
                out.append(name)
    return out


_AUTHOR_META = ("author", "article:author", "parsely-author", "sailthru.author", "dc.creator")


def _choose_author(
    m: _Meta, ld_articles: list[dict[str, Any]], names: set[str], byline: Callable[[], str | None]
) -> str | None:
    """JSON-LD authors, else author meta tags; when these name only the publisher (or nothing),
    the people of the byline come first."""

    def sitey(name: str) -> bool:
        key = _norm_key(name).replace(" ", "")
        return any(n in key or key in n for n in names)

    authors: list[str] = []
    for obj in ld_articles:
        authors = _author_list(n for n, _ in _ld_authors(obj.get("author")))
        if authors:
            break
    if not authors:
        authors = _author_list(v for key in _AUTHOR_META for v in m.meta.get(key, ()))
    # "chuck-ross", a URL slug, unless it is the site's name ("t-online")
    authors = [
        n.replace("-", " ").title() if _SLUG.match(n) and not sitey(n) else n for n in authors
    ]
    if all(sitey(n) for n in authors):
        people = [n for n in _author_list((byline() or "").split(";")) if not sitey(n)]
        authors = people + authors
    return ", ".join(authors) or None


_PUBLISHED_KEYS = (
    "article:published_time",
    "og:article:published_time",
    "article:published",
    "datepublished",
    "og:published_time",
    "published_time",
    "publishdate",
    "publish-date",
    "publish_date",
    "pubdate",
    "parsely-pub-date",
    "sailthru.date",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date.created",
    "dcterms.created",
    "dc.date",
    "date",
    "cxenseparse:recs:publishtime",
    "article.published",
)


def _choose_published(m: _Meta, ld_articles: list[dict[str, Any]]) -> str | None:
    # JSON-LD first: live blogs put their last update in article:published_time
    candidates: list[Any] = [o.get("datePublished") for o in ld_articles]
    candidates += [v for key in _PUBLISHED_KEYS for v in m.meta.get(key, ())]
    candidates += [m.time_published, *(o.get("dateCreated") for o in ld_articles)]
    for value in candidates:
        if isinstance(value, str):
            parsed = utc_iso(value)
            if parsed:
                return parsed
    return None


_ISO = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[T\s]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?\s*$",
    re.I,
)
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T?(\d{2})(\d{2})(\d{2})?)?(Z)?$")


def utc_iso(value: str) -> str | None:
    """A date or date-time as UTC ``YYYY-MM-DDTHH:MM:SSZ``; None when it is no plausible date.

    Offsets are converted, naive times taken as UTC, a bare date becomes midnight.

    >>> utc_iso("2024-05-03T17:47:42+02:00")
    '2024-05-03T15:47:42Z'
    >>> utc_iso("2024-05-03")
    '2024-05-03T00:00:00Z'
    """
    value = value.strip()
    match = _ISO.match(value) or _COMPACT.match(value)
    try:
        if match:
            year, month, day, hour, minute, second, zone = match.groups()
            when = datetime(
                int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
            )
            when = when.replace(tzinfo=_zone(zone))
        else:
            when = parsedate_to_datetime(value)  # RFC 2822, as in feeds and HTTP headers
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    if not 1990 <= when.year <= 2099:
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _zone(zone: str | None) -> timezone:
    if not zone or zone.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 14 or minutes > 59:
        raise ValueError(zone)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _choose_canonical(m: _Meta, url: str, amp: bool) -> str | None:
    base = urljoin(url, m.base_href) if m.base_href else url
    for href in (m.canonical_href, _first(m.meta, "og:url")):
        if not href:
            continue
        try:
            absolute = urljoin(base, href)
            parts = urlsplit(absolute)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                continue
            if amp:  # an AMP page whose canonical is still an AMP URL: take the non-AMP guess
                absolute = amp_to_canonical_guess(absolute) or absolute
            return canonical_url(absolute)
        except ValueError:  # "http://[::1/": not a URL
            continue
    return None


def _is_amp_url(url: str) -> bool:
    if amp_to_canonical_guess(url) is not None:
        return True
    query = urlsplit(url).query.lower()
    return any(p.split("=")[0] in ("amp", "outputtype") and "amp" in p for p in query.split("&"))


def _language(text: str | None, title: str | None, description: str | None) -> str | None:
    sample = (text or "")[:_LANG_SAMPLE_CHARS]
    if len(sample) < _LANG_MIN_CHARS:
        sample = " ".join(s for s in (title, description, sample) if s)
    if not sample.strip() or not any(c.isalpha() for c in sample):
        return None
    import py3langid

    lang, _ = py3langid.classify(sample)
    # ISO 639-1 only: not "zxx" (no linguistic content) nor the few 3-letter codes
    return str(lang) if lang and len(lang) == 2 else None


# --------------------------------------------------------------------------- the whole


def _extract(html: bytes | str, url: str, encoding: str | None) -> PageFields:
    if html is None or len(html) == 0:
        return _failed("empty page")
    if len(html) > MAX_PAGE_BYTES:
        return _failed(f"page too large ({len(html)} bytes, at most {MAX_PAGE_BYTES})")
    text_html = _decode(html, encoding)
    problem = _not_html(text_html)
    if problem:
        return _failed(problem)
    tree = _parse(text_html)
    if tree is None:
        return _failed("not an HTML page")

    m = _read_meta(tree)
    amp = m.html_amp or _is_amp_url(url)
    canonical = _choose_canonical(m, url, amp)

    anchors = _anchor_texts(tree)
    body = _body_text(tree, url, anchors)
    host = (urlsplit(canonical or url).hostname or "").lower()
    ld_articles = _ld_articles(m.ld)
    site = _first(m.meta, "og:site_name", "application-name") or _ld_publisher(m.ld)
    names = _site_names(m, m.ld, site, host)
    title = _choose_title(m, ld_articles, names) or _fallback(_traf_title, tree)
    author = _choose_author(m, ld_articles, names, lambda: _fallback(_traf_author, tree))
    published = (
        _choose_published(m, ld_articles)
        or _fallback(_shown_date, tree, url)
        or _fallback(_traf_date, tree, url)
    )
    description = _first(m.meta, "og:description", "description", "twitter:description")
    text = _drop_headline(body, title)
    language = _language(text, title, description)
    error = None
    if not text or len(text) < MIN_TEXT_CHARS or _link_share(text, anchors) > _MAX_LINKS:
        # a section front, an error or paywall page: its bits of text are no article body
        error, text = "no article text found", None
    return PageFields(
        title=title,
        author=author,
        published=published,
        description=description,
        site_name=site,
        text=text,
        language=language,
        canonical=canonical,
        amp=amp,
        error=error,
    )


def _body_text(tree: HtmlElement, url: str, anchors: set[str]) -> str | None:
    """trafilatura's main text: its fast pass, and the full one when that found little text
    or mostly link texts (a teaser list instead of the article)."""
    import trafilatura

    text = None
    for fast in (True, False):
        doc = trafilatura.bare_extraction(
            tree, url=url, fast=fast, include_comments=False, include_tables=True
        )
        if doc is not None and not isinstance(doc, dict) and doc.text:
            text = _body(doc.text)
        if text and len(text) >= _SECOND_PASS_CHARS and _link_share(text, anchors) <= _MAX_LINKS:
            break
    return text


def _anchor_texts(tree: HtmlElement) -> set[str]:
    return {_norm_key(a.text_content()) for a in tree.iter("a")}


def _link_share(text: str, anchors: set[str]) -> float:
    """The share of the text in lines that are the whole text of a link."""
    lines = text.split("\n")
    linked = sum(len(line) for line in lines if _norm_key(line) in anchors)
    return linked / max(1, sum(len(line) for line in lines))


def _drop_headline(text: str | None, title: str | None) -> str | None:
    """The body without its first line when that is the headline (trafilatura keeps the h1)."""
    if not text or not title:
        return text
    first, _, rest = text.partition("\n")
    return rest or None if _norm_key(first) == _norm_key(title) else text


def _fallback(func: Callable[..., str | None], *args: Any) -> str | None:
    """trafilatura's and htmldate's own heuristics, asked only for what the page's meta lacks."""
    try:
        return func(*args)
    except Exception as err:  # a library bug on odd markup must not lose the other fields
        LOGGER.debug("fallback %s failed: %r", func.__name__, err)
        return None


def _traf_title(tree: HtmlElement) -> str | None:
    from trafilatura.metadata import extract_title

    title = _clean(extract_title(tree))
    return title if title and len(title) <= _MAX_TITLE else None


def _traf_author(tree: HtmlElement) -> str | None:
    from trafilatura.metadata import extract_author

    return extract_author(tree)


def _shown_date(tree: HtmlElement, url: str) -> str | None:
    from crawler.parse.dates import find_published

    found = find_published(tree, url)
    return utc_iso(found) if found else None


def _traf_date(tree: HtmlElement, url: str) -> str | None:
    from htmldate import find_date

    from crawler.parse.dates import pruned

    found = find_date(
        pruned(tree),
        url=url,
        extensive_search=False,
        original_date=True,
        outputformat="%Y-%m-%dT%H:%M:%S%z",
        max_date=_MAX_DATE,
    )
    return utc_iso(found) if found else None


def _ld_publisher(ld: list[dict[str, Any]]) -> str | None:
    for obj in ld:
        publisher = obj.get("publisher")
        if isinstance(publisher, dict) and _clean(publisher.get("name")):
            return _clean(publisher.get("name"))
    return None


def _body(text: str | None) -> str | None:
    if not text:
        return None
    lines = (_WS.sub(" ", line).strip() for line in text.split("\n"))
    joined = "\n".join(line for line in lines if line)
    return joined or None
