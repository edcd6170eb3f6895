"""Thin item pipeline: normalise -> identify/dedup -> archive -> match -> queue alerts.

The decisions live in pure modules (urls, fingerprint, query); storage in crawler.archive.
One bad item is counted as the source's error and never stops the others.
"""

from __future__ import annotations

import logging
from typing import Any, Self

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawler.archive import AlertIn, ArticleIn
from crawler.feeds import Entry
from crawler.fingerprint import text_fingerprint
from crawler.model import Rule
from crawler.passes import PassContext
from crawler.query import Document
from crawler.urls import amp_to_canonical_guess, canonical_url

log = logging.getLogger(__name__)


def article_from_entry(source: str, entry: Entry) -> ArticleIn | None:
    """A feed entry as an archive record; None when it has no usable URL."""
    link = entry.link or (entry.guid if entry.guid and entry.guid.startswith("http") else None)
    if not link:
        return None
    canonical = canonical_url(link)
    amp = amp_to_canonical_guess(canonical)
    if amp is not None:
        canonical = canonical_url(amp)
    text = entry.summary  # the feed's summary is the text until full pages are fetched
    return ArticleIn(
        url=canonical,
        source=source,
        guid=entry.guid,
        title=entry.title,
        author=entry.author,
        published=entry.published,
        language=None,
        summary=entry.summary,
        text=text,
        fingerprint=text_fingerprint(text),
        urls=(canonical, link),
    )


def alerts_for(rules: list[Rule], source: str, doc: Document) -> list[AlertIn]:
    """One alert per (matching rule, channel) for an article of `source`."""
    alerts: list[AlertIn] = []
    for rule in rules:
        if not rule.notify or not rule.applies_to(source):
            continue
        matched = rule.query.matches(doc)
        if matched is None:
            continue
        alerts.extend(AlertIn(rule.name, channel, tuple(matched)) for channel in rule.notify)
    return alerts


class ArchivePipeline:
    def __init__(self, ctx: PassContext) -> None:
        self.ctx = ctx
        self.rules = list(ctx.rules)
        self.topic_sources = {s.name for s in ctx.sources if s.topic}

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ctx = crawler.settings.get("NEWSWATCH_PASS")
        if ctx is None:
            raise NotConfigured("no newswatch pass context")
        return cls(ctx)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        source: str = item["source"]
        result = self.ctx.result(source)
        try:
            self._process(source, item["entry"])
        except Exception as exc:
            result.errors += 1
            log.exception("%s: could not archive an entry: %s", source, exc)
        return item

    def _process(self, source: str, entry: Entry) -> None:
        result = self.ctx.result(source)
        article = article_from_entry(source, entry)
        if article is None:
            result.errors += 1
            log.warning("%s: entry %r has neither a link nor a URL guid", source, entry.title)
            return
        now = self.ctx.clock()
        doc = Document.from_fields(article.title, article.summary, article.text)
        topic = self.ctx.topic
        if topic is not None and source in self.topic_sources and topic.matches(doc) is None:
            if self.ctx.archive.is_known_url(article.url):
                result.seen += 1
            elif self.ctx.archive.mark_seen(article.url, source, "off-topic", now):
                result.off_topic += 1
            return
        stored = self.ctx.archive.store_article(
            article, now, lambda _id, _story, _outcome: alerts_for(self.rules, source, doc)
        )
        if stored.outcome == "new":
            result.new += 1
        else:
            result.seen += 1
            if stored.duplicate_kind and stored.duplicate_kind != "url":
                kind = stored.duplicate_kind
                result.duplicates[kind] = result.duplicates.get(kind, 0) + 1
