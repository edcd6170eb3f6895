"""Sitemap bytes -> entries (pure: no network, no database, no clock).

Scrapy's SitemapSpider drops the Google News fields (``news:title``,
``news:publication_date``), so sitemaps are parsed here with lxml. Handles a ``<urlset>``
(plain or Google News) and a ``<sitemapindex>``, namespaced or not, gzipped or not.

Like ``crawler.parse.feeds``, nothing here raises for bad input: the problem is in the result.

- A broken sitemap keeps its usable entries and carries a ``warning``.
- ``error_class`` names what went wrong when nothing is usable: ``EmptySitemap``, ``TooLarge``
  (over ``max_bytes``, after decompression for gzip), ``BadGzip``, ``NotASitemap`` (an HTML
  page, a feed, other XML or binary data at a sitemap URL), ``MalformedSitemap`` (a sitemap
  broken beyond recovery), ``ParseError`` (a bug: lxml or this module raised).

Safety: entities are never expanded (no XXE, no "billion laughs"): a DOCTYPE is removed before
parsing (sitemaps have no use for one) and lxml runs with ``resolve_entities=False``,
``no_network=True``, ``huge_tree=False``; gzip output is capped at ``max_bytes`` while it is
being decompressed. An entry whose ``<loc>`` holds an entity reference is skipped.

Repairs of the two commonest breakages in the wild, each reported in ``warning``: a bare ``&``
in a URL (``?a=1&b=2``) is read as ``&amp;`` (libxml2's recovery would drop ``&b``), and bytes
that are not UTF-8 in a document declared (or defaulting to) UTF-8 are read as Windows-1252
(libxml2 would turn them into U+FFFD).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from lxml import etree

NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_BYTES = 50_000_000  # the sitemap protocol's own limit, uncompressed

_CHUNK = 1 << 20
_W3C_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[Tt ](?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?)?)?)?"
    r"\s*(?P<tz>[Zz]|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?"
)
# Tokens of a DOCTYPE declaration: quoted strings and comments are skipped whole, so a "]" or
# ">" inside them does not end the declaration.
_DOCTYPE_TOKEN = re.compile(rb'"[^"]*"|\'[^\']*\'|<!--.*?-->|[\[\]>]', re.S)
_ELEMENT_START = re.compile(rb"<[A-Za-z_]")
# A bare "&" (not starting a reference); CDATA sections and comments are matched whole and kept.
_BARE_AMP = re.compile(
    rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->|&(?!(?:[A-Za-z_][\w.\-]*|#[0-9]+|#x[0-9A-Fa-f]+);)", re.S
)
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._\-]+)""")
_NOT_UTF8 = re.compile("[\udc80-\udcff]+")
_SITEMAP_START = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:urlset|sitemapindex)[\s>/]")
_PREMATURE_END = re.compile(r"Premature end of data in tag (\S+)")
_TAG_NOT_FINISHED = 77  # libxml2 XML_ERR_TAG_NOT_FINISHED
_ROOT_END = re.compile(
    rb"</(?:[A-Za-z_][\w.\-]*:)?(?:urlset|sitemapindex)\s*>\s*(?:<!--.*?-->\s*)*$", re.S
)
_FEED_ROOTS = {"rss": "an RSS feed", "feed": "an Atom feed", "rdf": "an RSS 1.0 (RDF) feed"}
_ROBOTS_SITEMAP = re.compile(r"^\s*(?:sitemap|sitemaps|site-map)\s*:\s*(\S.*?)\s*$", re.I)


@dataclass(frozen=True)
class SitemapEntry:
    """One ``<url>`` of a urlset, or one ``<sitemap>`` of an index (news fields then None)."""

    loc: str
    lastmod: str | None  # UTC ISO 8601 with Z
    news_title: str | None  # <news:news><news:title>
    news_published: str | None  # <news:publication_date>, UTC ISO 8601 with Z
    news_language: str | None  # <news:publication><news:language>
    news_name: str | None  # <news:publication><news:name>


@dataclass(frozen=True)
class SitemapResult:
    kind: str  # "urlset" | "index" | "" (unknown)
    entries: list[SitemapEntry] = field(default_factory=list)  # an index: its child sitemaps
    warning: str | None = None  # broken but usable: entries were recovered
    error: str | None = None  # nothing usable
    error_class: str | None = None


class _TooLarge(Exception):
    pass


def _error(message: str, error_class: str, kind: str = "") -> SitemapResult:
    return SitemapResult(kind=kind, entries=[], error=message, error_class=error_class)


def _size(n: int) -> str:
    return f"{n:,} bytes"


def _gunzip(data: bytes, max_bytes: int) -> tuple[bytes, str | None]:
    """Decompress gzip ``data`` (all members), never producing more than ``max_bytes``.

    Returns (output, problem): a truncated or damaged stream after some output keeps that
    output and names the problem. Raises ``_TooLarge`` over the limit, ``zlib.error`` when
    nothing at all could be decompressed.
    """
    out = bytearray()
    problem: str | None = None
    while data:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip container only
        pending = data
        try:
            while pending:
                out += inflater.decompress(pending, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise _TooLarge
                pending = inflater.unconsumed_tail
        except zlib.error as exc:
            if not out:
                raise
            problem = f"damaged gzip data ({exc})"
            break
        if not inflater.eof:
            if not out:
                raise zlib.error("truncated gzip data")
            problem = "truncated gzip data"
            break
        data = inflater.unused_data
        if not data.startswith(GZIP_MAGIC):
            break  # trailing padding or garbage after the last member is ignored
    return bytes(out), problem


def _drop_doctype(body: bytes) -> tuple[bytes, bool]:
    """``body`` without its DOCTYPE declaration; True when that declared entities."""
    start = body.find(b"<!DOCTYPE")
    if start < 0 or _ELEMENT_START.search(body, 0, start):
        return body, False  # none, or not in the prolog
    depth = 0
    for token in _DOCTYPE_TOKEN.finditer(body, start + len(b"<!DOCTYPE")):
        char = token.group()
        if char == b"[":
            depth += 1
        elif char == b"]":
            depth = max(depth - 1, 0)
        elif char == b">" and depth == 0:
            declaration = body[start : token.end()]
            keep_lines = b"\n" * declaration.count(b"\n")  # error messages keep true line numbers
            return body[:start] + keep_lines + body[token.end() :], b"<!ENTITY" in declaration
    return body[:start], b"<!ENTITY" in body[start:]  # never closed: nothing after it is usable


def _ascii_compatible(body: bytes) -> bool:
    """False for UTF-16/32 (a BOM or NUL bytes up front): byte-level repairs would break it."""
    return not body.startswith((b"\xff\xfe", b"\xfe\xff")) and b"\x00" not in body[:4]


def _escape_bare_ampersands(body: bytes) -> tuple[bytes, int]:
    count = 0

    def fix(match: re.Match[bytes]) -> bytes:
        nonlocal count
        if match.group() != b"&":
            return match.group()
        count += 1
        return b"&amp;"

    return _BARE_AMP.sub(fix, body), count


def _repair_utf8(body: bytes) -> tuple[bytes, bool]:
    """Bytes that are not UTF-8, in a document that is UTF-8 by declaration or default, read as
    Windows-1252 (valid UTF-8 around them is kept as it is)."""
    declared = _DECLARED_ENCODING.match(body[:200])
    if declared and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        return body, False
    try:
        body.decode("utf-8")
        return body, False
    except UnicodeDecodeError:
        pass
    text = body.decode("utf-8", "surrogateescape")
    text = _NOT_UTF8.sub(
        lambda m: bytes(ord(c) - 0xDC00 for c in m.group()).decode("cp1252", "replace"), text
    )
    return text.encode("utf-8"), True


def _last_item_open(body: bytes, item: str) -> bool:
    """True when the last ``<url>`` (``<sitemap>``) of a document is never closed: the data
    ended inside it. Checked on the bytes, whatever libxml2 says about the truncation."""
    tail = body[-_CHUNK:]
    if _ROOT_END.search(tail[-4096:]):
        return False
    name = item.encode()
    opened = [m.start() for m in re.finditer(rb"<(?:[A-Za-z_][\w.\-]*:)?" + name + rb"[\s>]", tail)]
    closed = [m.start() for m in re.finditer(rb"</(?:[A-Za-z_][\w.\-]*:)?" + name + rb"\s*>", tail)]
    return bool(opened) and (not closed or opened[-1] > closed[-1])


@lru_cache(maxsize=1024)
def _local(tag: Any) -> str:
    """Local name of an element tag: ``{ns}url``, ``news:title`` (prefix undeclared) -> ``url``,
    ``title``. Comments, processing instructions and entity references give ''."""
    if not isinstance(tag, str):
        return ""
    return tag.rpartition("}")[2].rpartition(":")[2].lower()


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _text(element: Any) -> str:
    """The element's text without expanding anything: entity references are left out."""
    if not len(element):
        return element.text or ""
    parts = [element.text or ""]
    for child in element:
        if isinstance(child.tag, str):
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _has_entity(element: Any) -> bool:
    return any(child.tag is etree.Entity for child in element.iter())


def _child(element: Any, name: str) -> Any | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: Any | None) -> dict[str, Any]:
    """Child elements by local name (the first of each name)."""
    found: dict[str, Any] = {}
    if element is not None:
        for child in element:
            found.setdefault(_local(child.tag), child)
    return found


def _clean(element: Any | None) -> str | None:
    if element is None:
        return None
    text = " ".join(_text(element).split())
    return text or None


@lru_cache(maxsize=4096)  # news sitemaps repeat their dates a lot
def parse_date(value: str | None) -> str | None:
    """A W3C datetime (or an RFC 2822 date, as some sites write) -> ``YYYY-MM-DDTHH:MM:SSZ``.

    Offsets are converted to UTC; a value without an offset is taken as UTC; a date alone is
    midnight UTC. Unreadable values give None.
    """
    if not value:
        return None
    text = value.strip()
    match = _W3C_DATE.fullmatch(text)
    try:
        if match:
            stamp = datetime(
                int(match["y"]),
                int(match["m"] or 1),
                int(match["d"] or 1),
                int(match["H"] or 0),
                int(match["M"] or 0),
                int(match["S"] or 0),
                tzinfo=_zone(match["tz"]),
            )
        else:
            stamp = parsedate_to_datetime(text)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
        return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def _zone(tz: str | None) -> timezone:
    if not tz or tz.upper() in ("Z", "UTC", "GMT"):
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"bad offset {tz}")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _is_news(element: Any) -> bool:
    namespace = _namespace(element.tag)
    return namespace in ("", NEWS_NS) or "sitemap-news" in namespace


def _entry(element: Any) -> SitemapEntry | None:
    children = _children(element)
    loc_element = children.get("loc")
    if loc_element is None or _has_entity(loc_element):
        return None
    loc = _text(loc_element).strip()
    if not loc:
        return None
    news_element = children.get("news")
    news = _children(news_element if news_element is not None and _is_news(news_element) else None)
    publication = _children(news.get("publication"))
    return SitemapEntry(
        loc=loc,
        lastmod=parse_date(_clean(children.get("lastmod"))),
        news_title=_clean(news.get("title")),
        news_published=parse_date(_clean(news.get("publication_date"))),
        news_language=_clean(publication.get("language")),
        news_name=_clean(publication.get("name")),
    )


def _not_a_sitemap(root: Any, body: bytes) -> str:
    name = _local(root.tag) if root is not None else ""
    head = body[:2048].lower()
    if name == "html" or (root is None and (b"<html" in head or b"<!doctype html" in head)):
        what = "an HTML page"
    elif name in _FEED_ROOTS:
        return (
            f"not a sitemap: the URL returned {_FEED_ROOTS[name]}; "
            "configure it as the source's feed instead"
        )
    elif root is not None:
        what = f"XML with root element <{name or root.tag}>"
    else:
        what = "something that is not XML"
    return f"not a sitemap: the URL returned {what}; check the source's sitemap URL"


def parse_sitemap(body: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> SitemapResult:
    """Parse sitemap bytes (gzipped or not). Never raises for bad input: the problem is in the
    result. ``max_bytes`` caps the document, after decompression for gzip."""
    try:
        return _parse(bytes(body), max_bytes)
    except Exception as exc:  # a bug here or in lxml must not stop the pass
        return _error(f"the sitemap could not be parsed: {exc!r}", "ParseError")


def _parse(body: bytes, max_bytes: int) -> SitemapResult:
    problems: list[str] = []
    if body[:2] == GZIP_MAGIC:
        try:
            body, gzip_problem = _gunzip(body, max_bytes)
        except _TooLarge:
            return _error(f"sitemap larger than {_size(max_bytes)} after decompression", "TooLarge")
        except (zlib.error, EOFError) as exc:
            return _error(f"the sitemap is not valid gzip data: {exc}", "BadGzip")
        if gzip_problem:
            problems.append(gzip_problem)
    elif len(body) > max_bytes:
        return _error(f"sitemap larger than {_size(max_bytes)}", "TooLarge")

    body = body.lstrip(b" \t\r\n")  # whitespace before <?xml is a fatal error in XML
    if not body.strip():
        return _error("the sitemap URL returned an empty body", "EmptySitemap")
    body, had_entities = _drop_doctype(body)
    if had_entities:
        problems.append("its DOCTYPE declares entities: ignored, never expanded")
    if _ascii_compatible(body):
        body, amps = _escape_bare_ampersands(body)
        if amps:
            problems.append(f"{amps} unescaped '&' read as '&amp;'")
        body, recoded = _repair_utf8(body)
        if recoded:
            problems.append("bytes that are not UTF-8 read as Windows-1252")

    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        recover=True,
        load_dtd=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError:
        root = None  # nothing recoverable ("Document is empty", binary data)
    errors = [e for e in parser.error_log if e.level >= etree.ErrorLevels.ERROR]
    if errors:
        problems.append(f"{errors[0].message.strip()} (line {errors[0].line})")
    # libxml2 names the innermost element open when the data ended; when that is not the root,
    # the last <url>/<sitemap> is cut off (its <loc> may be half a URL): it is dropped below.
    cut_in: list[str] = []  # names of the elements open when the data ended
    for e in errors:
        if match := _PREMATURE_END.search(e.message):
            cut_in.append(match.group(1))
        elif e.type == _TAG_NOT_FINISHED:
            cut_in.append("")  # another wording: assume the worst

    root_name = _local(root.tag) if root is not None else ""
    if root_name == "urlset":
        kind, item = "urlset", "url"
    elif root_name == "sitemapindex":
        kind, item = "index", "sitemap"
    elif root is None and _SITEMAP_START.search(body[:4096]):
        reason = problems[-1] if problems else "unreadable XML"
        return _error(f"malformed sitemap with no usable entries: {reason}", "MalformedSitemap")
    else:
        return _error(_not_a_sitemap(root, body), "NotASitemap")

    assert root is not None
    root_ns = _namespace(root.tag)
    # iter(), not the direct children: recovery from a missing </url> nests the next <url>.
    if ":" in root.tag and not root_ns:  # an undeclared prefix: match local names in Python
        items = [e for e in root.iter() if _local(e.tag) == item and _namespace(e.tag) == ""]
    else:
        items = list(root.iter(item, f"{{{root_ns}}}{item}" if root_ns else item))
    cut = any(_local(tag) != root_name for tag in cut_in) or _last_item_open(body, item)
    if items and cut:
        items.pop()
        problems.append(f"the data ended inside the last <{item}>: dropped")
    entries: list[SitemapEntry] = []
    skipped = 0
    for element in items:
        entry = _entry(element)
        if entry is not None:
            entries.append(entry)
        elif (loc := _child(element, "loc")) is not None and _has_entity(loc):
            skipped += 1
    if skipped:
        problems.append(f"{skipped} <loc> with an entity reference skipped")

    if not entries and problems:
        return _error(
            f"malformed sitemap with no usable entries: {'; '.join(problems)}",
            "MalformedSitemap",
            kind,
        )
    warning = "malformed sitemap, usable entries kept: " + "; ".join(problems) if problems else None
    return SitemapResult(kind=kind, entries=entries, warning=warning)


def robots_sitemaps(robots_txt: str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt, in order, without duplicates.

    The field name is case-insensitive (``sitemap``, ``SITEMAP``; ``site-map`` and ``sitemaps``
    as Protego accepts them); comments are dropped. Values are returned as written: resolve a
    relative one (``Sitemap: /sitemap.xml``) against the robots.txt URL.
    """
    found: dict[str, None] = {}
    for line in robots_txt.lstrip("\ufeff").splitlines():
        match = _ROBOTS_SITEMAP.match(line.split("#", 1)[0])
        if match:
            found.setdefault(match.group(1), None)
    return list(found)
