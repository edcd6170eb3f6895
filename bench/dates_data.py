"""Real pages with their date metadata stripped, for ``bench/dates.py``.

``strip_date_metadata(html, keep_time=...)`` removes what a page says about its dates outside
its visible text, so that only the text, bylines, the URL and (with ``keep_time``) the
``datetime`` of ``<time>`` elements are left:

- every ``<script>`` (JSON-LD, and the JSON states of script-rendered pages, which carry
  ``datePublished``, ``publishedAt``, ... in their own ways);
- ``<meta>`` tags whose name, property, itemprop or http-equiv speaks of a date or time
  (``article:published_time``, ``date``, ``dc.date.issued``, ``pubdate``, ...) or whose content
  holds an ISO date (``parsely-page``);
- microdata: ``itemprop`` attributes naming a date (the element and its text stay, the
  ``content`` attribute goes);
- without ``keep_time``, also the ``datetime`` and ``pubdate`` attributes of ``<time>`` (its
  text stays).

Pages are split into publishers used for tuning ``crawler/parse/dates.py`` and held-out publishers
by a hash of the publisher's name (``part_of``), fixed before any tuning: the held-out
publishers' pages were never looked at one by one (``bench/dates.py --verbose`` lists the
tuning part only). The article-extraction-benchmark pages (2019, 181 publishers' pages; their
expected date is the one their own metadata gives, read by ``crawler.parse.extract`` before
stripping) are all held out.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from pathlib import Path

from extraction import Page, load_fundus
from lxml import etree
from lxml.html import HtmlElement, document_fromstring

_DATE_KEY = re.compile(r"date|time|publish|issued|created|modified|updated|pub_?date", re.I)
_ISO_DATE = re.compile(r"(?:19|20)\d\d-[01]\d-[0-3]\d")
_SPLIT_SALT = "newswatch-dates-2026"


def part_of(publisher: str) -> str:
    """'tuned' or 'heldout' for a publisher (``at/DerStandard``), fixed by a hash of its name."""
    digest = hashlib.sha256(f"{_SPLIT_SALT}:{publisher}".encode()).digest()
    return "tuned" if digest[0] % 2 == 0 else "heldout"


def strip_date_metadata(html: bytes, *, keep_time: bool) -> bytes:
    """The page without its date metadata (see the module docstring), as UTF-8 HTML."""
    from crawler.parse.extract import _decode

    tree = document_fromstring(_decode(html))
    doomed: list[HtmlElement] = []
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "script":
            doomed.append(el)
            continue
        if el.tag == "meta":
            keys = " ".join(el.get(a) or "" for a in ("name", "property", "itemprop", "http-equiv"))
            if _DATE_KEY.search(keys) or _ISO_DATE.search(el.get("content") or ""):
                doomed.append(el)
            continue
        itemprop = el.get("itemprop")
        if itemprop and _DATE_KEY.search(itemprop):
            del el.attrib["itemprop"]
            el.attrib.pop("content", None)
        if el.tag == "time" and not keep_time:
            el.attrib.pop("datetime", None)
            el.attrib.pop("pubdate", None)
    for el in doomed:
        el.drop_tree()
    return etree.tostring(tree, encoding="utf-8", method="html", doctype="<!DOCTYPE html>")


def metadata_date(html: bytes) -> str | None:
    """The published date the page's own metadata gives (JSON-LD, meta tags, itemprop)."""
    from crawler.parse.extract import _choose_published, _decode, _ld_articles, _parse, _read_meta

    tree = _parse(_decode(html))
    if tree is None:
        return None
    meta = _read_meta(tree)
    return _choose_published(meta, _ld_articles(meta.ld))


def fundus_pages(data: Path) -> list[Page]:
    """fundus's pages with their expected publishing date, each with its publisher's part."""
    pages = load_fundus(data, None)
    for page in pages:
        publisher = page.key.rsplit("/", 1)[0]
        page.extra.update(publisher=publisher, part=part_of(publisher))
    return pages


def aeb_pages(data: Path) -> list[Page]:
    """The article-extraction-benchmark pages whose metadata gives a date (that date expected)."""
    folder = data / "article-extraction-benchmark"
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth):
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        published = metadata_date(html)
        if published:
            url = truth[key]["url"]
            page = Page("aeb", key, html, url, f"/aeb/{key}", "", published=published)
            page.extra.update(publisher=url.split("/")[2], part="heldout")
            pages.append(page)
    return pages
