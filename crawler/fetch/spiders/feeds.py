"""Feed sources: feedparser reads the listing; new entries become article-page requests
(or archive records directly when `fetch_articles` is off)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from scrapy.http import Response

from crawler.decide.articles import article_from_entry, entry_info, entry_link
from crawler.fetch.spiders.listing import ListingSpider
from crawler.parse.feeds import parse_feed


def parse(spider: ListingSpider, response: Response) -> Iterator[Any]:
    body = spider.listing_body(response)
    if body is None:
        return
    result = spider.result(response)
    content_type = response.headers.get(b"Content-Type")
    parsed = parse_feed(body, content_type.decode("latin-1") if content_type else None)
    if parsed.error:
        result.fail(parsed.error_class or "FeedError", parsed.error)
        return
    if parsed.warning:
        result.warn(parsed.warning)
    result.fetched += len(parsed.entries)
    archive = spider.ctx.archive
    fetch_pages = spider.ctx.options.fetch_articles
    for entry in parsed.entries:
        article = article_from_entry(result.source, entry)
        if article is None:
            result.errors += 1
            continue
        item = {"kind": "entry", "source": result.source, "entry": entry, "article": article}
        found = archive.find_article(article.urls, result.source, entry.guid, article.fingerprint)
        if found is None and archive.is_known_url(article.url):
            result.seen += 1  # seen before and not archived (off-topic, or pruned)
            continue
        if not fetch_pages:
            yield item
            continue
        link = entry_link(entry) or article.url
        if found is None:
            yield from spider.new_pages(result.source, [(link, entry_info(entry))])
            continue
        known, kind = found
        edited = (
            kind == "url"
            and known.page_status == "ok"
            and entry.summary is not None
            and entry.summary != known.summary
        )
        if edited:  # the feed says it changed: read the page again
            spider.count_page_request()
            yield spider.page_request(result.source, link, entry_info(entry), refetch=True)
        else:  # known: the archive records the alias or guid, nothing is fetched
            yield item
