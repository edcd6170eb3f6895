"""Search the archive in the query language: the archive's full-text index narrows the
candidates (`Storage.search_candidates`, a superset), the query itself decides. So `search`,
`rules test` and the live matcher give the same answer for the same article, on any engine.

The query decides on the candidate's folded fields (`crawler.query.scan`), which answers as
`Query.matches` on a `Document` does at a tenth of the cost; a query with NEAR, which needs
token positions, is matched on a `Document`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from crawler.archive.interface import SearchStore
from crawler.query import Document, Query
from crawler.query.scan import scanner
from crawler.records import Article

__all__ = ["backtest", "search"]


def search(
    archive: SearchStore,
    query: Query,
    since: datetime | None = None,
    source: str | None = None,
    limit: int | None = None,
) -> list[tuple[Article, list[str]]]:
    """Articles the query matches, newest first, with the matched terms."""
    found: list[tuple[Article, list[str]]] = []
    candidates = archive.search_candidates(query.to_fts(), since, source)
    scan = scanner(query)
    try:
        for article in candidates:
            if scan is not None:
                matched = scan(article.title, article.summary, article.text)
            else:
                doc = Document.from_fields(article.title, article.summary, article.text)
                matched = query.matches(doc)
            if matched is not None:
                found.append((article, matched))
                if limit is not None and len(found) >= limit:
                    break
    finally:
        close = getattr(candidates, "close", None)
        if close is not None:
            close()
    return found


def backtest(
    archive: SearchStore,
    query: Query,
    since: datetime | None = None,
    sources: Sequence[str] = (),
    limit: int | None = None,
) -> list[tuple[Article, list[str]]]:
    """What a rule would have alerted on (`rules test`, the web view's rule bench and feeds):
    the articles the query matches since `since`, newest first, only from the rule's `sources`
    when it names some."""
    if len(sources) == 1:
        return search(archive, query, since=since, source=sources[0], limit=limit)
    if not sources:
        return search(archive, query, since=since, limit=limit)
    found = [(a, m) for a, m in search(archive, query, since=since) if a.source in sources]
    return found[:limit] if limit is not None else found
