"""Sitemap sources: Google News sitemaps (with their news: fields), plain sitemaps, indexes
and gzipped sitemaps, parsed with lxml (crawler.parse.sitemaps);
unseen URLs become page requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawler.fetch.spiders.listing import ListingSpider
from crawler.parse.sitemaps import parse_sitemap

# An index lists many sitemaps; the most recent ones hold the news.
MAX_CHILD_SITEMAPS = 20


def parse(spider: ListingSpider, response: Response) -> Iterator[Any]:
    body = spider.listing_body(response)
    if body is None:
        return
    result = spider.result(response)
    top = response.meta.get("nw_conditional", False)
    parsed = parse_sitemap(body, max_bytes=spider.ctx.options.max_page_bytes * 5)
    if parsed.error:
        message = parsed.error if top else f"{response.url}: {parsed.error}"
        result.fail(parsed.error_class or "SitemapError", message)
        return
    if parsed.warning:
        result.warn(parsed.warning)
    source = spider.sources[result.source]
    if parsed.kind == "index":
        children = sorted(parsed.entries, key=lambda e: e.lastmod or "", reverse=True)
        for child in children[:MAX_CHILD_SITEMAPS]:
            yield spider.listing_request(source, child.loc, conditional=False)
        return
    entries = sorted(
        parsed.entries, key=lambda e: e.news_published or e.lastmod or "", reverse=True
    )
    result.fetched += len(entries)
    pages = (
        (
            e.loc,
            {
                "origin": "sitemap",
                "title": e.news_title,
                "published": e.news_published or None,
                "language": e.news_language,
            },
        )
        for e in entries
    )
    yield from spider.new_pages(result.source, pages)
