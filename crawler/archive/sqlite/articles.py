"""Articles: identity (URLs, GUIDs, fingerprints), insert and update, the search index rows,
seen URLs and article pages to try again."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from crawler.archive.rows import to_article, to_pending_page
from crawler.archive.sqlite.outbox import OutboxMixin
from crawler.archive.sqlite.stories import StoriesMixin
from crawler.clock import iso
from crawler.decide.update import decide_update
from crawler.query import tokenize
from crawler.records import AlertIn, Article, ArticleIn, PendingPage, Stored


class ArticlesMixin(StoriesMixin, OutboxMixin):
    def is_known_url(self, url: str) -> bool:
        """Archived (as canonical URL or alias) or remembered as seen."""
        row = self._one(
            "SELECT 1 FROM article_urls WHERE url = ? UNION ALL SELECT 1 FROM seen WHERE url = ?",
            (url, url),
        )
        return row is not None

    def mark_seen(self, url: str, source: str, reason: str, now: datetime) -> bool:
        """Remember a URL that is not archived (e.g. outside the topic). True if it was new."""
        with self.transaction():
            cursor = self.db.execute(
                "INSERT OR IGNORE INTO seen (url, source, first_seen, reason) VALUES (?, ?, ?, ?)",
                (url, source, iso(now), reason),
            )
            return cursor.rowcount > 0

    def find_article(
        self, urls: Sequence[str], source: str, guid: str | None, fingerprint: str | None
    ) -> tuple[Article, str] | None:
        """The archived article this one is the same as, and the kind of match."""
        for url in urls:
            row = self._one(
                "SELECT a.* FROM article_urls u JOIN articles a ON a.id = u.article_id "
                "WHERE u.url = ?",
                (url,),
            )
            if row is not None:
                return to_article(row), ("url" if row["url"] == urls[0] else "alias")
        if guid:
            row = self._one(
                "SELECT a.* FROM article_guids g JOIN articles a ON a.id = g.article_id "
                "WHERE g.source = ? AND g.guid = ?",
                (source, guid),
            )
            if row is not None:
                return to_article(row), "guid"
        if fingerprint:
            row = self._one(
                "SELECT * FROM articles WHERE fingerprint = ? ORDER BY id LIMIT 1", (fingerprint,)
            )
            if row is not None:
                return to_article(row), "fingerprint"
        return None

    def store_article(
        self,
        article: ArticleIn,
        now: datetime,
        alerts_for: Callable[[int, int, str], Sequence[AlertIn]],
        hold: str | None = None,
    ) -> Stored:
        """Identify, insert or update the article, and queue its alerts, in ONE transaction.

        `alerts_for(article_id, story_id, outcome)` decides which alerts to queue ("new" and
        "edited" articles are matched; duplicates never are). An alert already queued for the
        same (rule, story, channel) is never queued again, so an edit alerts only a rule that
        matches it for the first time. `hold`: the pass (`begin_pass`) that holds the alerts
        until it ends.
        """
        urls = tuple(dict.fromkeys((article.url, *article.urls)))
        with self.transaction():
            found = self.find_article(urls, article.source, article.guid, article.fingerprint)
            joined = False
            if found is None:
                article_id = self._insert_article(article, now)
                story_id, outcome, kind = article_id, "new", None
                story_id = self._cluster(article_id, article.sketch, article.title_key, now)
                joined = story_id != article_id
            else:
                known, kind = found
                article_id, story_id = known.id, known.story_id or known.id
                outcome = decide_update(known, article, kind)
                if outcome == "edited":
                    self._update_article(article_id, article, now, move_url=kind != "url")
                    self._forget_sketch(article_id)
                    self._remember_sketch(article_id, article.sketch)
            for url in urls:
                self.db.execute(
                    "INSERT OR IGNORE INTO article_urls (url, article_id) VALUES (?, ?)",
                    (url, article_id),
                )
            if article.guid:
                self.db.execute(
                    "INSERT OR IGNORE INTO article_guids (source, guid, article_id) "
                    "VALUES (?, ?, ?)",
                    (article.source, article.guid, article_id),
                )
            if article.origin == "page":
                self.db.execute(
                    f"DELETE FROM pending_pages WHERE url IN ({','.join('?' for _ in urls)})",
                    urls,
                )
            if outcome in ("new", "edited"):
                for alert in alerts_for(article_id, story_id, outcome):
                    self._queue_alert(alert, article_id, story_id, now, hold)
        return Stored(article_id, story_id, outcome, kind, joined)

    def _insert_article(self, article: ArticleIn, now: datetime) -> int:
        cursor = self.db.execute(
            """INSERT INTO articles (url, source, guid, title, author, published, first_seen,
                   updated, language, summary, text, fingerprint, page_status, description,
                   site_name, title_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                article.url,
                article.source,
                article.guid,
                article.title,
                article.author,
                article.published,
                iso(now),
                iso(now),
                article.language,
                article.summary,
                article.text,
                article.fingerprint,
                "ok" if article.origin == "page" else None,
                article.description,
                article.site_name,
                article.title_key,
            ),
        )
        article_id = int(cursor.lastrowid or 0)
        self.db.execute("UPDATE articles SET story_id = ? WHERE id = ?", (article_id, article_id))
        self._index(article_id)
        return article_id

    def _index_values(self, article_id: int) -> tuple[str, str, str] | None:
        """The tokens the search index holds for the article's stored fields."""
        row = self._one("SELECT title, summary, text FROM articles WHERE id = ?", (article_id,))
        if row is None:
            return None
        title, summary, text = (
            " ".join(tokenize(row[f] or "")) for f in ("title", "summary", "text")
        )
        return title, summary, text

    def _index(self, article_id: int) -> None:
        """Index the article's stored fields (after `_unindex`, if it was indexed)."""
        values = self._index_values(article_id)
        if values is not None:
            self.db.execute(
                "INSERT INTO articles_fts (rowid, title, summary, text) VALUES (?, ?, ?, ?)",
                (article_id, *values),
            )

    def _unindex(self, article_id: int) -> None:
        """Remove the article from the search index, BEFORE its row changes or goes: an
        external-content index is told which tokens to remove, those of the stored fields."""
        values = self._index_values(article_id)
        if values is not None:
            self.db.execute(
                "INSERT INTO articles_fts (articles_fts, rowid, title, summary, text) "
                "VALUES ('delete', ?, ?, ?, ?)",
                (article_id, *values),
            )

    def _update_article(
        self, article_id: int, article: ArticleIn, now: datetime, move_url: bool
    ) -> None:
        self._unindex(article_id)
        self.db.execute(
            """UPDATE articles SET title = coalesce(?, title), author = coalesce(?, author),
                   published = coalesce(?, published), summary = coalesce(?, summary),
                   text = coalesce(?, text), fingerprint = coalesce(?, fingerprint),
                   language = coalesce(?, language), description = coalesce(?, description),
                   site_name = coalesce(?, site_name), title_key = coalesce(?, title_key),
                   updated = ?,
                   page_status = CASE WHEN ? = 'page' THEN 'ok' ELSE page_status END
               WHERE id = ?""",
            (
                article.title,
                article.author,
                article.published,
                article.summary,
                article.text,
                article.fingerprint,
                article.language,
                article.description,
                article.site_name,
                article.title_key,
                iso(now),
                article.origin,
                article_id,
            ),
        )
        self._index(article_id)
        taken = self._one("SELECT id FROM articles WHERE url = ?", (article.url,))
        if move_url and article.origin == "page" and taken is None:
            # the page named its canonical URL: the record is keyed by it from now on
            self.db.execute("UPDATE articles SET url = ? WHERE id = ?", (article.url, article_id))

    def add_pending_page(
        self, url: str, source: str, info: dict[str, Any], error: str, now: datetime
    ) -> None:
        with self.transaction():
            self.db.execute(
                """INSERT INTO pending_pages (url, source, info, attempts, first_attempt,
                       last_attempt, last_error) VALUES (?, ?, ?, 1, ?, ?, ?)
                   ON CONFLICT(url) DO UPDATE SET attempts = attempts + 1,
                       last_attempt = excluded.last_attempt, last_error = excluded.last_error""",
                (url, source, json.dumps(info), iso(now), iso(now), error),
            )

    def pending_pages(self, source: str, max_attempts: int) -> list[PendingPage]:
        rows = self._all(
            "SELECT * FROM pending_pages WHERE source = ? AND attempts < ? ORDER BY first_attempt",
            (source, max_attempts),
        )
        return [to_pending_page(row) for row in rows]

    def drop_pending_page(self, url: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM pending_pages WHERE url = ?", (url,))

    def article(self, article_id: int) -> Article | None:
        """The article with every URL seen for it."""
        row = self._one("SELECT * FROM articles WHERE id = ?", (article_id,))
        if row is None:
            return None
        return to_article(row, urls=self._article_urls(article_id))

    def _article_urls(self, article_id: int) -> list[str]:
        rows = self.db.execute(
            "SELECT url FROM article_urls WHERE article_id = ? ORDER BY rowid", (article_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def count_articles(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])

    def iter_articles(
        self, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]:
        """Articles in arrival order, with their aliases and story."""
        where, params = self._filters(since, source)
        cursor = self.db.execute(f"SELECT * FROM articles {where} ORDER BY id", params)
        names = [c[0] for c in cursor.description]
        for raw in cursor:
            row = dict(zip(names, raw, strict=True))
            yield to_article(
                row,
                urls=self._article_urls(row["id"]),
                also_reported_by=self.also_reported_by(row["story_id"], row["id"]),
            )
