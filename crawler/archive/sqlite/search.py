"""Search: the articles the full-text index says may match (a superset); `crawler.query.search`
confirms them with the query language."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from crawler.archive.rows import to_article
from crawler.archive.sqlite.base import SqliteBase
from crawler.records import Article

_FIRST_BATCH = 50  # rows read for the first batch of candidates, then twice as many each time
_BATCH = 500  # ... up to this many (under SQLite's limit of bound parameters)


class SearchMixin(SqliteBase):
    def search_candidates(
        self, fts: str | None, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]:
        """The articles an FTS5 expression (`Query.to_fts`) may match, newest first: a
        superset, which `crawler.query.search` confirms with the query itself. None: every article
        (a query FTS5 cannot narrow, such as ``NOT nato``)."""
        where, params = self._filters(since, source, prefix="a.")
        if fts is None:
            sql = f"SELECT a.* FROM articles a {where} ORDER BY a.first_seen DESC, a.id DESC"
            cursor = self.db.execute(sql, params)
            names = [c[0] for c in cursor.description]
            for raw in cursor:
                yield to_article(dict(zip(names, raw, strict=True)))
            return
        # The matches in order first, by id only: sorting whole rows read every text (4x the
        # time for a common word); then the rows, a batch at a time, as the caller reads on (a
        # search page stops at its limit).
        ids = [
            row[0]
            for row in self.db.execute(
                "SELECT a.id FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
                f"WHERE articles_fts MATCH ? {where.replace('WHERE', 'AND', 1)} "
                "ORDER BY a.first_seen DESC, a.id DESC",
                [fts, *params],
            )
        ]
        start, size = 0, _FIRST_BATCH
        while start < len(ids):
            batch = ids[start : start + size]
            start, size = start + size, min(size * 2, _BATCH)
            marks = ",".join("?" * len(batch))
            cursor = self.db.execute(f"SELECT * FROM articles WHERE id IN ({marks})", batch)
            names = [c[0] for c in cursor.description]
            key = names.index("id")
            rows = {raw[key]: raw for raw in cursor}
            for article_id in batch:
                raw = rows.get(article_id)
                if raw is not None:  # gone since the ids were read (pruned)
                    yield to_article(dict(zip(names, raw, strict=True)))
