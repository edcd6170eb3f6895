"""Search: the articles the full-text index says may match (a superset); `crawler.query.search`
confirms them with the query language."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from crawler.archive.rows import to_article
from crawler.archive.sqlite.base import SqliteBase
from crawler.records import Article


class SearchMixin(SqliteBase):
    def search_candidates(
        self, fts: str | None, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]:
        """The articles an FTS5 expression (`Query.to_fts`) may match, newest first: a
        superset, which `crawler.query.search` confirms with the query itself. None: every article
        (a query FTS5 cannot narrow, such as ``NOT nato``)."""
        where, params = self._filters(since, source, prefix="a.")
        if fts is not None:
            sql = (
                "SELECT a.* FROM articles_fts JOIN articles a ON a.id = articles_fts.rowid "
                f"WHERE articles_fts MATCH ? {where.replace('WHERE', 'AND', 1)} "
                "ORDER BY a.first_seen DESC, a.id DESC"
            )
            params = [fts, *params]
        else:
            sql = f"SELECT a.* FROM articles a {where} ORDER BY a.first_seen DESC, a.id DESC"
        cursor = self.db.execute(sql, params)
        names = [c[0] for c in cursor.description]
        for raw in cursor:
            yield to_article(dict(zip(names, raw, strict=True)))
