"""Maintenance: pruning old articles."""

from __future__ import annotations

from datetime import datetime

from crawler.archive.postgres.articles import ArticlesMixin
from crawler.archive.postgres.base import ts


class MaintenanceMixin(ArticlesMixin):
    def prune(self, before: datetime) -> int:
        """Delete articles first seen before `before`, except those with a delivery still
        pending or held (their aliases, guids and search rows go with them; their URLs are
        kept in `seen`), and runs older than that."""
        with self._transaction():
            ids = [
                int(r["id"])
                for r in self._all(
                    """SELECT id FROM articles WHERE first_seen < %s AND id NOT IN (
                           SELECT article_id FROM outbox
                           WHERE status IN ('pending', 'held') AND article_id IS NOT NULL)
                       ORDER BY id""",
                    (ts(before),),
                )
            ]
            if ids:
                # their URLs stay remembered as seen: a pruned article is never fetched again
                self._execute(
                    """INSERT INTO seen (url, source, first_seen, reason)
                       SELECT u.url, a.source, a.first_seen, 'pruned'
                       FROM article_urls u JOIN articles a ON a.id = u.article_id
                       WHERE a.id = ANY(%s::bigint[])
                       ON CONFLICT (url) DO NOTHING""",
                    (ids,),
                )
                for article_id in ids:
                    self._forget_sketch(article_id)
                self._execute("DELETE FROM articles WHERE id = ANY(%s::bigint[])", (ids,))
            self._execute("DELETE FROM runs WHERE started < %s", (ts(before),))
            return len(ids)
