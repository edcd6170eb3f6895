"""Articles: identity (URLs, GUIDs, fingerprints), insert and update, the search index rows,
seen URLs and article pages to try again.

`store_article` first takes a transaction-scoped advisory lock on everything that identifies the
article (its URLs, its source's GUID, its fingerprint) and on its story keys
(`StoriesMixin._lock`): two nodes storing the same article, or two copies of one story, at the
same moment are serialised, the second then finding the first. A conflict PostgreSQL still
reports (a deadlock, a unique key taken meanwhile) runs the whole transaction again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import psycopg

from crawler.archive.postgres.base import lock_key, ts
from crawler.archive.postgres.outbox import OutboxMixin
from crawler.archive.postgres.stories import StoriesMixin
from crawler.archive.rows import to_article, to_pending_page
from crawler.decide.update import decide_update
from crawler.query import tokenize
from crawler.records import AlertIn, Article, ArticleIn, PendingPage, Stored

ATTEMPTS = 3  # times a store runs when PostgreSQL reports a conflict with another writer
LEXEME_BYTES = 2046  # PostgreSQL's limit for one lexeme (2 KB)
DOC_BYTES = 900_000  # under PostgreSQL's 1 MB limit for one tsvector


def search_lexemes(title: str | None, summary: str | None, text: str | None) -> list[str] | None:
    """The distinct tokens (crawler.query.tokenize) of an article's fields, as the lexemes of
    its search document; None when they do not fit in a tsvector (always a candidate then)."""
    lexemes = sorted({t for field in (title, summary, text) for t in tokenize(field or "")})
    size = sum(len(t.encode("utf-8")) + 8 for t in lexemes)
    if size > DOC_BYTES or any(len(t.encode("utf-8")) > LEXEME_BYTES for t in lexemes):
        return None
    return lexemes


class ArticlesMixin(StoriesMixin, OutboxMixin):
    def is_known_url(self, url: str) -> bool:
        """Archived (as canonical URL or alias) or remembered as seen."""
        row = self._one(
            "SELECT 1 AS known FROM article_urls WHERE url = %s "
            "UNION ALL SELECT 1 FROM seen WHERE url = %s LIMIT 1",
            (url, url),
        )
        return row is not None

    def mark_seen(self, url: str, source: str, reason: str, now: datetime) -> bool:
        """Remember a URL that is not archived (e.g. outside the topic). True if it was new."""
        changed = self._execute(
            "INSERT INTO seen (url, source, first_seen, reason) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (url) DO NOTHING",
            (url, source, ts(now), reason),
        )
        return changed > 0

    def find_article(
        self, urls: Sequence[str], source: str, guid: str | None, fingerprint: str | None
    ) -> tuple[Article, str] | None:
        """The archived article this one is the same as, and the kind of match."""
        for url in urls:
            row = self._one(
                "SELECT a.* FROM article_urls u JOIN articles a ON a.id = u.article_id "
                "WHERE u.url = %s",
                (url,),
            )
            if row is not None:
                return to_article(row), ("url" if row["url"] == urls[0] else "alias")
        if guid:
            row = self._one(
                "SELECT a.* FROM article_guids g JOIN articles a ON a.id = g.article_id "
                "WHERE g.source = %s AND g.guid = %s",
                (source, guid),
            )
            if row is not None:
                return to_article(row), "guid"
        if fingerprint:
            row = self._one(
                "SELECT * FROM articles WHERE fingerprint = %s ORDER BY id LIMIT 1", (fingerprint,)
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
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._store(article, now, alerts_for, hold)
            except (
                psycopg.errors.DeadlockDetected,
                psycopg.errors.UniqueViolation,
                psycopg.errors.SerializationFailure,
            ):
                if attempt == ATTEMPTS or getattr(self._local, "conn", None) is not None:
                    raise
        raise AssertionError("unreachable")

    def _store(
        self,
        article: ArticleIn,
        now: datetime,
        alerts_for: Callable[[int, int, str], Sequence[AlertIn]],
        hold: str | None,
    ) -> Stored:
        urls = tuple(dict.fromkeys((article.url, *article.urls)))
        with self._transaction():
            keys = [lock_key("url", url) for url in urls]
            if article.guid:
                keys.append(lock_key("guid", article.source, article.guid))
            if article.fingerprint:
                keys.append(lock_key("fingerprint", article.fingerprint))
            if article.title_key:
                keys.append(lock_key("title", article.title_key))
            if article.sketch is not None:
                keys += [*article.sketch.band_keys, *article.sketch.lead_keys]
            self._lock(keys)
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
                self._execute(
                    "INSERT INTO article_urls (url, article_id) VALUES (%s, %s) "
                    "ON CONFLICT (url) DO NOTHING",
                    (url, article_id),
                )
            if article.guid:
                self._execute(
                    "INSERT INTO article_guids (source, guid, article_id) VALUES (%s, %s, %s) "
                    "ON CONFLICT (source, guid) DO NOTHING",
                    (article.source, article.guid, article_id),
                )
            if article.origin == "page":
                self._execute(
                    "DELETE FROM pending_pages WHERE url = ANY(%s::text[])", (list(urls),)
                )
            if outcome in ("new", "edited"):
                for alert in alerts_for(article_id, story_id, outcome):
                    self._queue_alert(alert, article_id, story_id, now, hold)
        return Stored(article_id, story_id, outcome, kind, joined)

    def _insert_article(self, article: ArticleIn, now: datetime) -> int:
        row = self._one(
            """INSERT INTO articles (url, source, guid, title, author, published, first_seen,
                   updated, language, summary, text, fingerprint, page_status, description,
                   site_name, title_key)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               RETURNING id""",
            (
                article.url,
                article.source,
                article.guid,
                article.title,
                article.author,
                article.published,
                ts(now),
                ts(now),
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
        assert row is not None
        article_id = int(row["id"])
        self._execute("UPDATE articles SET story_id = %s WHERE id = %s", (article_id, article_id))
        self._index(article_id)
        return article_id

    def _index(self, article_id: int) -> None:
        """(Re)write the article's search document from its stored fields."""
        row = self._one("SELECT title, summary, text FROM articles WHERE id = %s", (article_id,))
        if row is None:
            return
        lexemes = search_lexemes(row["title"], row["summary"], row["text"])
        self._execute(
            """INSERT INTO article_search (article_id, doc)
               VALUES (%s, CASE WHEN %s::text[] IS NULL THEN NULL
                                ELSE array_to_tsvector(%s::text[]) END)
               ON CONFLICT (article_id) DO UPDATE SET doc = excluded.doc""",
            (article_id, lexemes, lexemes),
        )

    def _update_article(
        self, article_id: int, article: ArticleIn, now: datetime, move_url: bool
    ) -> None:
        self._execute(
            """UPDATE articles SET title = coalesce(%s, title), author = coalesce(%s, author),
                   published = coalesce(%s, published), summary = coalesce(%s, summary),
                   text = coalesce(%s, text), fingerprint = coalesce(%s, fingerprint),
                   language = coalesce(%s, language), description = coalesce(%s, description),
                   site_name = coalesce(%s, site_name), title_key = coalesce(%s, title_key),
                   updated = %s,
                   page_status = CASE WHEN %s = 'page' THEN 'ok' ELSE page_status END
               WHERE id = %s""",
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
                ts(now),
                article.origin,
                article_id,
            ),
        )
        self._index(article_id)
        taken = self._one("SELECT id FROM articles WHERE url = %s", (article.url,))
        if move_url and article.origin == "page" and taken is None:
            # the page named its canonical URL: the record is keyed by it from now on
            self._execute("UPDATE articles SET url = %s WHERE id = %s", (article.url, article_id))

    def add_pending_page(
        self, url: str, source: str, info: dict[str, Any], error: str, now: datetime
    ) -> None:
        self._execute(
            """INSERT INTO pending_pages (url, source, info, attempts, first_attempt,
                   last_attempt, last_error) VALUES (%s, %s, %s, 1, %s, %s, %s)
               ON CONFLICT (url) DO UPDATE SET attempts = pending_pages.attempts + 1,
                   last_attempt = excluded.last_attempt, last_error = excluded.last_error""",
            (url, source, json.dumps(info), ts(now), ts(now), error),
        )

    def pending_pages(self, source: str, max_attempts: int) -> list[PendingPage]:
        rows = self._all(
            "SELECT * FROM pending_pages WHERE source = %s AND attempts < %s "
            "ORDER BY first_attempt, url",
            (source, max_attempts),
        )
        return [to_pending_page(row) for row in rows]

    def drop_pending_page(self, url: str) -> None:
        self._execute("DELETE FROM pending_pages WHERE url = %s", (url,))

    def article(self, article_id: int) -> Article | None:
        """The article with every URL seen for it."""
        row = self._one("SELECT * FROM articles WHERE id = %s", (article_id,))
        if row is None:
            return None
        return to_article(row, urls=self._article_urls(article_id))

    def _article_urls(self, article_id: int) -> list[str]:
        rows = self._all(
            "SELECT url FROM article_urls WHERE article_id = %s ORDER BY position", (article_id,)
        )
        return [r["url"] for r in rows]

    def count_articles(self) -> int:
        row = self._one("SELECT count(*) AS n FROM articles")
        return int(row["n"]) if row else 0

    def iter_articles(
        self, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]:
        """Articles in arrival order, with their aliases and story."""
        where, params = self._filters(since, source)
        for row in self._stream(f"SELECT * FROM articles {where} ORDER BY id", params):
            yield to_article(
                row,
                urls=self._article_urls(row["id"]),
                also_reported_by=self.also_reported_by(row["story_id"], row["id"]),
            )
