"""Thin item pipeline: extract -> normalise -> topic -> identify/dedup -> archive -> match ->
queue alerts.

The decisions live in pure modules (articles, extract, urls, fingerprint, query); storage in
crawler.archive. Page extraction (CPU work) runs in a process pool, off the event loop, so a
pass of hundreds of pages uses every core. One bad item is counted as its source's error and
never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.archive import AlertIn, ArticleIn, StorageError
from crawler.archive.aio import call
from crawler.decide.articles import article_from_entry, article_from_page, info_entry
from crawler.fetch.context import PassContext
from crawler.fetch.workers import INLINE_PAGES, extraction_pool
from crawler.parse.extract import PageFields, extract_page
from crawler.query import Document
from crawler.query.matcher import RuleIndex

log = logging.getLogger(__name__)


def alerts_for(index: RuleIndex, source: str, doc: Document) -> list[AlertIn]:
    """One alert per (matching rule, channel) for an article of `source`.

    The rules are matched through their index (only rules whose terms occur in the article
    are evaluated), with exactly the answers of evaluating every rule.
    """
    return [
        AlertIn(rule.name, channel, tuple(matched), rule.digest, rule.max_per_hour)
        for rule, matched in index.match(doc, source)
        for channel in rule.notify
    ]


class ArchivePipeline:
    def __init__(self, ctx: PassContext, crawler: Crawler | None = None) -> None:
        self.ctx, self.crawler = ctx, crawler
        self._closing: asyncio.Future[None] | None = None
        # compiled once: by the service for its whole life, else once a pass
        self.index = ctx.rule_index or RuleIndex([r for r in ctx.rules if r.notify])
        self.topic_sources = {s.name for s in ctx.sources if s.topic}
        ctx.make_pool = extraction_pool

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ctx = crawler.settings.get("NEWSWATCH_PASS")
        if ctx is None:
            raise NotConfigured("no newswatch pass context")
        return cls(ctx, crawler)

    def close_spider(self) -> None:
        self.ctx.close_pool()

    async def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        source: str = item["source"]
        if self.ctx.archive_error is not None:  # not stored: read again on a later pass
            self._unstored(source, item)
            return item
        try:
            kind = item["kind"]
            if kind == "entry":
                await self._store_entry(source, item["entry"], article=item.get("article"))
            elif kind == "page":
                page = await self._extract(item["body"], item["final_url"], item.get("encoding"))
                if self.ctx.archive_error is not None:  # failed while this page was extracted
                    self._unstored(source, item)
                elif page.error and not page.text:
                    await self._page_failed(source, item["url"], item["info"], page.error)
                else:
                    article = article_from_page(
                        source, item["info"], page, item["url"], item["final_url"]
                    )
                    await self._store(source, article)
            elif kind == "page_failed":
                await self._page_failed(source, item["url"], item["info"], item["error"])
        except StorageError as exc:  # the archive, not the item: it is read again next pass
            self._unstored(source, item)
            log.error("%s: could not archive %s: %s", source, item.get("url"), exc)
            self._stop_pass(exc)
        except Exception as exc:
            self.ctx.result(source).errors += 1
            log.exception("%s: could not archive %s: %s", source, item.get("url"), exc)
        item.pop("body", None)  # do not keep page bodies alive in Scrapy's item chain
        return item

    def _unstored(self, source: str, item: dict[str, Any]) -> None:
        result = self.ctx.result(source)
        result.errors += 1
        result.unstored += 1
        item.pop("body", None)

    def _stop_pass(self, exc: StorageError) -> None:
        """The archive cannot store items now: end the pass instead of waiting out the busy
        timeout (or failing) once per item; what was not stored is read again."""
        if self.ctx.archive_error is not None:
            return
        self.ctx.archive_error = exc
        log.error("the archive could not store items (%s): this pass stops here", exc)
        engine = self.crawler.engine if self.crawler is not None else None
        if engine is not None and engine.spider is not None:
            self._closing = asyncio.ensure_future(engine.close_spider_async(reason="archive_error"))

    async def _extract(self, body: bytes, url: str, encoding: str | None) -> PageFields:
        pool = None
        if self.ctx.executor is not None or self.ctx.pages_requested > INLINE_PAGES:
            pool = await self.ctx.extraction_pool()
        if pool is None:
            return extract_page(body, url, encoding=encoding)
        future = pool.submit(extract_page, body, url, encoding=encoding)
        return await asyncio.wrap_future(future)

    async def _page_failed(self, source: str, url: str, info: dict[str, Any], error: str) -> None:
        """Keep what the listing said (a feed entry), and try the page again next pass."""
        result = self.ctx.result(source)
        result.errors += 1
        archive = self.ctx.archive
        await call(archive, archive.add_pending_page, url, source, info, error, self.ctx.clock())
        entry = info_entry(info)
        if entry is not None:
            await self._store_entry(source, entry, count_errors=False)

    async def _store_entry(
        self, source: str, entry: Any, count_errors: bool = True, article: ArticleIn | None = None
    ) -> None:
        """Archive a listing entry alone (``article``: what the spider already made of it)."""
        article = article or article_from_entry(source, entry)
        if article is None:
            if count_errors:
                self.ctx.result(source).errors += 1
            log.warning("%s: entry %r has neither a link nor a URL guid", source, entry.title)
            return
        await self._store(source, article)

    async def _store(self, source: str, article: ArticleIn) -> None:
        result = self.ctx.result(source)
        now: datetime = self.ctx.clock()
        doc = Document.from_fields(article.title, article.summary, article.text)
        topic = self.ctx.topic
        if topic is not None and source in self.topic_sources and topic.matches(doc) is None:
            archive = self.ctx.archive
            found = await call(
                archive, archive.find_article, article.urls, source, article.guid, None
            )
            if found is not None:
                result.seen += 1
                return
            fresh = [
                await call(archive, archive.mark_seen, url, source, "off-topic", now)
                for url in article.urls
            ]
            if fresh[0]:
                result.off_topic += 1
            else:
                result.seen += 1
            return
        # off the loop for a networked engine (crawler.archive.aio): the crawl goes on meanwhile
        stored = await call(
            self.ctx.archive,
            self.ctx.archive.store_article,
            article,
            now,
            lambda _id, _story, _outcome: alerts_for(self.index, source, doc),
            hold=self.ctx.hold,
        )
        if stored.outcome == "new":
            result.new += 1
            if stored.joined_story:
                result.duplicates["story"] = result.duplicates.get("story", 0) + 1
        else:
            result.seen += 1
            if stored.duplicate_kind and stored.duplicate_kind != "url":
                kind = stored.duplicate_kind
                result.duplicates[kind] = result.duplicates.get(kind, 0) + 1
