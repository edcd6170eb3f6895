"""Site sources: a section page lists articles; the links matching `follow` (by default: on
the same host, below the section's path) are article pages."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from scrapy.http import HtmlResponse, Response
from scrapy.linkextractors import LinkExtractor

from crawler.decide.urls import canonical_url
from crawler.fetch.spiders.listing import ListingSpider


def article_links(section_url: str, links: Sequence[str], follow: Sequence[str]) -> list[str]:
    """The links of a section page that are articles, in page order, without repeats (pure)."""
    section = urlsplit(section_url)
    patterns = [re.compile(p) for p in follow]
    base_path = section.path if section.path.endswith("/") else section.path + "/"
    chosen: dict[str, str] = {}
    for link in links:
        parts = urlsplit(link)
        if parts.scheme not in ("http", "https"):
            continue
        if patterns:
            if not any(p.search(link) for p in patterns):
                continue
        elif parts.hostname != section.hostname or not (
            parts.path.startswith(base_path) and len(parts.path) > len(base_path)
        ):
            continue
        key = canonical_url(link)
        if key != canonical_url(section_url):
            chosen.setdefault(key, link)
    return list(chosen.values())


def parse(spider: ListingSpider, response: Response) -> Iterator[Any]:
    body = spider.listing_body(response)
    if body is None:
        return
    result = spider.result(response)
    if not isinstance(response, HtmlResponse):
        result.fail("NotAPage", "the section URL did not return an HTML page; check the URL")
        return
    source = spider.sources[result.source]
    raw = [link.url for link in LinkExtractor(unique=True).extract_links(response)]
    links = article_links(response.url, raw, source.follow)
    result.fetched += len(links)
    yield from spider.new_pages(result.source, ((u, {"origin": "site"}) for u in links))
