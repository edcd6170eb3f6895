"""Maintenance: pruning old articles."""

from __future__ import annotations

from datetime import datetime

from crawler.archive.sqlite.articles import ArticlesMixin
from crawler.clock import iso


class MaintenanceMixin(ArticlesMixin):
    def prune(self, before: datetime) -> int:
        """Delete articles first seen before `before`, except those with a delivery still
        pending or held (their aliases, guids and search rows go with them; their URLs are
        kept in `seen`), and runs older than that."""
        with self.transaction():
            ids = [
                r[0]
                for r in self.db.execute(
                    """SELECT id FROM articles WHERE first_seen < ? AND id NOT IN (
                           SELECT article_id FROM outbox
                           WHERE status IN ('pending', 'held') AND article_id IS NOT NULL)""",
                    (iso(before),),
                ).fetchall()
            ]
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                # their URLs stay remembered as seen: a pruned article is never fetched again
                self.db.execute(
                    f"""INSERT OR IGNORE INTO seen (url, source, first_seen, reason)
                        SELECT u.url, a.source, a.first_seen, 'pruned'
                        FROM article_urls u JOIN articles a ON a.id = u.article_id
                        WHERE a.id IN ({marks})""",
                    chunk,
                )
                for article_id in chunk:
                    self._forget_sketch(article_id)
                    self._unindex(article_id)
                self.db.execute(f"DELETE FROM articles WHERE id IN ({marks})", chunk)
            self.db.execute("DELETE FROM runs WHERE started < ?", (iso(before),))
            return len(ids)
