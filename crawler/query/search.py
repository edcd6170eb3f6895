"""Search the archive in the query language: the archive's full-text index narrows the
candidates (`Storage.search_candidates`, a superset), the query itself decides. So `search`,
`rules test` and the live matcher give the same answer for the same article, on any engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crawler.archive.interface import SearchStore
from crawler.query import Document, Query

__all__ = ["search"]


def search(
    archive: SearchStore,
    query: Query,
    since: datetime | None = None,
    source: str | None = None,
    limit: int | None = None,
) -> list[tuple[dict[str, Any], list[str]]]:
    """Articles the query matches, newest first, with the matched terms."""
    found: list[tuple[dict[str, Any], list[str]]] = []
    candidates = archive.search_candidates(query.to_fts(), since, source)
    try:
        for row in candidates:
            matched = query.matches(Document.from_fields(row["title"], row["summary"], row["text"]))
            if matched is not None:
                found.append((row, matched))
                if limit is not None and len(found) >= limit:
                    break
    finally:
        close = getattr(candidates, "close", None)
        if close is not None:
            close()
    return found
