"""The archive: the ONE module that talks to SQLite (through sqlite-utils).

Everything the product remembers lives here, so cron (`newswatch crawl`), the service and the
container share one meaning for "seen", "due" and "alerted":

- ``sources``       per-source state: conditional-GET validators, last run, health, next due time
- ``runs``          one row per source per pass, with counts and the error
- ``articles``      one row per article, keyed by canonical URL, with its story; ``articles_fts``
                    (FTS5, external content: ``content="articles"``, so Datasette finds it) over
                    title, summary and text, indexing the query language's tokens, written here
                    with each article (`_index`) and removed with the tokens it was indexed
                    with (`_unindex`) before the row changes
- ``article_urls``  every URL seen for an article (aliases)
- ``article_guids`` ``(source, raw guid)`` -> article
- ``seen``          URLs seen but not archived (outside ``[topic]``, or pruned), never fetched
                    again
- ``pending_pages`` article pages that failed, tried again on later passes
- ``lsh_bands``, ``article_shingles``  near-duplicate sketches (crawler.neardup) for stories
- ``outbox``        one row per (rule, story, channel), digests and source-health notices: the
                    delivery log and queue; an alert queued during a pass is held (``pass_id``)
                    until the pass ends, then released or merged into the alert of its story
- ``passes``        the passes holding alerts, with their owner and lease (an orphan's alerts
                    are released by the next delivery round)

One process holds one writer connection (WAL; readers may be many). Schema changes are
versioned migrations keyed on ``PRAGMA user_version``: a later version only ever adds.
Times are stored as UTC ISO 8601 strings with ``Z`` (they sort as text).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from crawler import CrawlerError, neardup
from crawler.alerting import QueuedAlert, collapse, hold_until, hour_start
from crawler.query import Document, Query, tokenize

RETRY_WINDOW = timedelta(hours=24)  # a delivery not made within this is marked failed


class ArchiveError(CrawlerError):
    """The archive file cannot be opened, is locked, or was written by a newer newswatch."""


def write_trouble(exc: BaseException) -> str:
    """What an SQLite error while writing the archive means and what to do about it (the
    command line and the service's log add what happens next)."""
    return (
        f"the archive could not be written ({exc}): check the free disk space and that no "
        "other program holds the file locked"
    )


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with ``Z``, to the second."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# ---------------------------------------------------------------------------------------------
# Migrations: append only. Each takes the database and brings it to its version.


def _migration_1(db: sqlite_utils.Database) -> None:
    db.execute(
        """CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            kind TEXT,
            url TEXT,
            etag TEXT,
            last_modified TEXT,
            body_hash TEXT,
            last_run TEXT,
            last_success TEXT,
            last_status TEXT,
            last_error TEXT,
            last_error_class TEXT,
            last_warning TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            next_due TEXT
        )"""
    )
    db.execute(
        """CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            started TEXT NOT NULL,
            finished TEXT NOT NULL,
            status TEXT NOT NULL,
            http_status INTEGER,
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            seen INTEGER NOT NULL DEFAULT 0,
            off_topic INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            error_class TEXT,
            error TEXT,
            warning TEXT,
            duration REAL NOT NULL DEFAULT 0
        )"""
    )
    db.execute("CREATE INDEX runs_source_started ON runs(source, started)")
    db.execute(
        """CREATE TABLE articles (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            guid TEXT,
            title TEXT,
            author TEXT,
            published TEXT,
            first_seen TEXT NOT NULL,
            updated TEXT NOT NULL,
            language TEXT,
            summary TEXT,
            text TEXT,
            fingerprint TEXT,
            story_id INTEGER
        )"""
    )
    db.execute("CREATE INDEX articles_first_seen ON articles(first_seen)")
    db.execute("CREATE INDEX articles_fingerprint ON articles(fingerprint)")
    db.execute("CREATE INDEX articles_story ON articles(story_id)")
    db.execute(
        """CREATE TABLE article_urls (
            url TEXT PRIMARY KEY,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE
        )"""
    )
    db.execute("CREATE INDEX article_urls_article ON article_urls(article_id)")
    db.execute(
        """CREATE TABLE article_guids (
            source TEXT NOT NULL,
            guid TEXT NOT NULL,
            article_id INTEGER NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
            PRIMARY KEY (source, guid)
        )"""
    )
    db.execute(
        """CREATE TABLE seen (
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            reason TEXT NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY,
            delivery TEXT NOT NULL UNIQUE,
            event TEXT NOT NULL,
            rule TEXT,
            channel TEXT NOT NULL,
            article_id INTEGER,
            story_id INTEGER,
            matched TEXT,
            payload TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            expires TEXT NOT NULL,
            next_attempt TEXT NOT NULL,
            last_attempt TEXT,
            last_error TEXT,
            sent TEXT,
            UNIQUE (rule, story_id, channel)
        )"""
    )
    db.execute("CREATE INDEX outbox_due ON outbox(status, next_attempt)")
    # The search index holds the query language's own tokens (crawler.query.tokenize), not
    # the raw text: FTS5's tokenizer and ours disagree on some characters (full-width letters,
    # ligatures, Cyrillic accents), and search must never miss what the live matcher alerts on.
    db.execute(
        "CREATE VIRTUAL TABLE articles_fts USING fts5(title, summary, text, "
        "tokenize = 'unicode61 remove_diacritics 2')"
    )


def _migration_2(db: sqlite_utils.Database) -> None:
    """Collection: article pages, their failures to retry, a server's Retry-After."""
    db.execute("ALTER TABLE articles ADD COLUMN page_status TEXT")  # NULL feed only; ok; failed
    db.execute("ALTER TABLE articles ADD COLUMN description TEXT")
    db.execute("ALTER TABLE articles ADD COLUMN site_name TEXT")
    db.execute("ALTER TABLE sources ADD COLUMN not_before TEXT")  # a server's Retry-After
    db.execute("ALTER TABLE runs ADD COLUMN pages INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """CREATE TABLE pending_pages (
            url TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            info TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_attempt TEXT NOT NULL,
            last_attempt TEXT NOT NULL,
            last_error TEXT
        )"""
    )
    db.execute("CREATE INDEX pending_pages_source ON pending_pages(source)")


def _migration_3(db: sqlite_utils.Database) -> None:
    """Alerts held for a digest (a rule's `digest`, or past its `max_per_hour`)."""
    db.execute("ALTER TABLE outbox ADD COLUMN hold_from TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN hold_until TEXT")  # when the digest is due
    db.execute("ALTER TABLE outbox ADD COLUMN digest_id INTEGER")  # the digest it went into
    db.execute("CREATE INDEX outbox_held ON outbox(status, hold_until)")
    db.execute("CREATE INDEX outbox_rule_created ON outbox(rule, channel, created)")


def _migration_4(db: sqlite_utils.Database) -> None:
    """Source health as the service last judged it (ok | failing | silent)."""
    db.execute("ALTER TABLE sources ADD COLUMN health_state TEXT")
    db.execute("ALTER TABLE sources ADD COLUMN health_since TEXT")
    db.execute("CREATE INDEX articles_source_first_seen ON articles(source, first_seen)")


def _migration_5(db: sqlite_utils.Database) -> None:
    """Stories: near-duplicate sketches (crawler.neardup) and a title key per article."""
    for statement in neardup.SCHEMA_STATEMENTS:
        db.execute(statement)
    db.execute("ALTER TABLE articles ADD COLUMN title_key TEXT")
    db.execute("CREATE INDEX articles_title_key ON articles(title_key, first_seen)")


def _migration_6(db: sqlite_utils.Database) -> None:
    """One alert per story in any arrival order: alerts held until their pass ends; the band
    keys of each text's lead (crawler.neardup, "The lead"), kept to delete them again."""
    db.execute("ALTER TABLE article_shingles ADD COLUMN lead_keys BLOB")
    db.execute("ALTER TABLE outbox ADD COLUMN pass_id TEXT")  # held by this pass; NULL released
    db.execute("ALTER TABLE outbox ADD COLUMN merged_into INTEGER")  # status 'merged': into id
    db.execute("CREATE INDEX outbox_pass ON outbox(pass_id) WHERE pass_id IS NOT NULL")
    db.execute(
        """CREATE TABLE passes (
            id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            started TEXT NOT NULL,
            lease_until TEXT NOT NULL
        )"""
    )


FTS_SQL = (
    "CREATE VIRTUAL TABLE {name} USING fts5(title, summary, text, "
    'content="articles", content_rowid="id", tokenize = \'unicode61 remove_diacritics 2\')'
)


def _migration_7(db: sqlite_utils.Database) -> None:
    """The search index reads its columns from ``articles`` (external content): Datasette finds
    it (``datasette archive.db``, ``_search=``), and the text is no longer stored twice. The
    tokens indexed are unchanged (copied, not re-tokenised)."""
    db.execute(FTS_SQL.format(name="articles_fts_v7"))
    db.execute(
        "INSERT INTO articles_fts_v7 (rowid, title, summary, text) "
        "SELECT rowid, title, summary, text FROM articles_fts"
    )
    db.execute("DROP TABLE articles_fts")
    db.execute("ALTER TABLE articles_fts_v7 RENAME TO articles_fts")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
)
SCHEMA_VERSION = len(MIGRATIONS)


# ---------------------------------------------------------------------------------------------
# Values passed in and out.


@dataclass
class ArticleIn:
    """An article as the pipeline hands it to the archive."""

    url: str  # canonical
    source: str
    guid: str | None
    title: str | None
    author: str | None
    published: str | None
    language: str | None
    summary: str | None
    text: str | None
    fingerprint: str | None
    urls: tuple[str, ...] = ()  # every URL seen for it (raw and canonical)
    origin: str = "feed"  # "feed": from a feed entry only; "page": the article page was read
    description: str | None = None
    site_name: str | None = None
    sketch: neardup.Sketch | None = None  # near-duplicate sketch of the text (None: too short)
    title_key: str | None = None  # neardup.title_key(title), for lead-only rewrites


@dataclass(frozen=True)
class Stored:
    """What the archive did with an incoming article."""

    article_id: int
    story_id: int
    outcome: str  # "new" | "edited" | "duplicate" | "unchanged"
    duplicate_kind: str | None = None  # "url" | "guid" | "alias" | "fingerprint"
    joined_story: bool = False  # a new article recognised as a copy of an archived story


@dataclass(frozen=True)
class AlertIn:
    rule: str
    channel: str
    matched: tuple[str, ...]
    digest: str = "off"  # the rule's digest: off | hourly | daily
    max_per_hour: int | None = None


@dataclass(frozen=True)
class RunRecord:
    source: str
    started: datetime
    finished: datetime
    status: str  # "ok" | "not_modified" | "warning" | "error"
    http_status: int | None = None
    fetched: int = 0
    new: int = 0
    seen: int = 0
    off_topic: int = 0
    errors: int = 0
    error_class: str | None = None
    error: str | None = None
    warning: str | None = None
    pages: int = 0
    not_before: datetime | None = None  # the server asked us to wait (Retry-After)


def decide_update(row: dict[str, Any], article: ArticleIn, kind: str) -> str:
    """What an incoming copy of an archived article does to it (pure).

    "edited": the record takes the new fields (and rules are matched again); "unchanged" (the
    same URL, nothing new) or "duplicate" (known under another URL, guid or text) otherwise.
    A copy read from the article page enriches a record that only had its feed entry; a feed
    entry never overwrites what was read from the page.
    """
    if article.origin == "page":
        if row["page_status"] != "ok":
            return "edited"
        if kind == "url" and (row["title"], row["text"]) != (article.title, article.text):
            return "edited"
    elif row["page_status"] != "ok" and kind == "url":
        stored = (row["title"], row["summary"], row["text"])
        if stored != (article.title, article.summary, article.text):
            return "edited"
    return "unchanged" if kind == "url" else "duplicate"


BUSY_SECONDS = 30.0  # how long a write waits for another process's lock before it fails


def _when_not_busy(action: Callable[[], None], seconds: float) -> None:
    """Run ``action``, again after a short wait while SQLite answers "database is locked",
    for up to ``seconds``. Switching a new file to WAL needs an exclusive lock, and when two
    processes ask at the same moment SQLite fails one of them at once instead of waiting
    (deadlock avoidance: its busy handler is not called), so the wait is ours."""
    deadline = time.monotonic() + seconds
    pause = 0.01
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


class Archive:
    """One writer connection to the archive file. Use as a context manager or call close()."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), timeout=BUSY_SECONDS, isolation_level=None)
            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA busy_timeout = 30000")
            _when_not_busy(self.db.enable_wal, BUSY_SECONDS)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint the WAL after each pass (`checkpoint`), not every ~1,000 pages: an
            # automatic checkpoint inside a pass stalled one article's commit in twenty by
            # 20-35 ms at 1M articles (bench/dedup_scale.py). This bound keeps the WAL finite.
            self.db.execute("PRAGMA wal_autocheckpoint = 20000")
            self._migrate()
        except ArchiveError:
            self.db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            if hasattr(self, "db"):
                self.db.close()
            raise ArchiveError(f"cannot open the archive {self.path}: {exc}") from exc

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.db.close()

    def checkpoint(self) -> None:
        """Copy the WAL into the database file (readers are not blocked)."""
        self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def writable(self) -> bool:
        """The archive file and its folder can be written (for the health check)."""
        return os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK)

    # -- schema ---------------------------------------------------------------------------

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _checked_version(self) -> int:
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise ArchiveError(
                f"the archive {self.path} has schema version {version}, newer than this "
                f"newswatch knows ({SCHEMA_VERSION}); upgrade newswatch"
            )
        return version

    def _migrate(self) -> None:
        if self._checked_version() == SCHEMA_VERSION:
            return
        # Another process may be migrating the same file (`newswatch sources` run beside a
        # starting service; measured: "duplicate column name"): take the write lock first, and
        # read the version again under it.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for number in range(self._checked_version() + 1, SCHEMA_VERSION + 1):
                with self.db.atomic():
                    MIGRATIONS[number - 1](self.db)
                    self.db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        with self.db.atomic():
            yield

    def _one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        cursor = self.db.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.db.execute(sql, params)
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    # -- sources --------------------------------------------------------------------------

    def source_state(self, name: str) -> dict[str, Any] | None:
        return self._one("SELECT * FROM sources WHERE name = ?", (name,))

    def source_states(self) -> dict[str, dict[str, Any]]:
        return {row["name"]: row for row in self._all("SELECT * FROM sources")}

    def _ensure_source(self, name: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))

    def register_source(self, name: str, kind: str, url: str) -> None:
        with self.transaction():
            self._ensure_source(name)
            self.db.execute(
                "UPDATE sources SET kind = ?, url = ? WHERE name = ?", (kind, url, name)
            )

    def save_validators(
        self, name: str, etag: str | None, last_modified: str | None, body_hash: str | None
    ) -> None:
        """Remember what the next conditional GET sends (only after the body was processed)."""
        with self.transaction():
            self._ensure_source(name)
            self.db.execute(
                "UPDATE sources SET etag = ?, last_modified = ?, body_hash = ? WHERE name = ?",
                (etag, last_modified, body_hash, name),
            )

    def record_run(self, run: RunRecord, next_due: datetime | None) -> None:
        """Store one pass of one source and update its health."""
        failed = run.status == "error"
        with self.transaction():
            self._ensure_source(run.source)
            self.db.execute(
                """INSERT INTO runs (source, started, finished, status, http_status, fetched, new,
                       seen, off_topic, errors, error_class, error, warning, duration, pages)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    run.source,
                    iso(run.started),
                    iso(run.finished),
                    run.status,
                    run.http_status,
                    run.fetched,
                    run.new,
                    run.seen,
                    run.off_topic,
                    run.errors,
                    run.error_class,
                    run.error,
                    run.warning,
                    round((run.finished - run.started).total_seconds(), 3),
                    run.pages,
                ),
            )
            self.db.execute(
                "UPDATE sources SET not_before = ? WHERE name = ?",
                (iso(run.not_before) if run.not_before else None, run.source),
            )
            if failed:
                self.db.execute(
                    """UPDATE sources SET last_run = ?, last_status = ?, last_error = ?,
                           last_error_class = ?, consecutive_failures = consecutive_failures + 1,
                           next_due = ? WHERE name = ?""",
                    (
                        iso(run.started),
                        run.status,
                        run.error,
                        run.error_class,
                        iso(next_due) if next_due else None,
                        run.source,
                    ),
                )
            else:
                self.db.execute(
                    """UPDATE sources SET last_run = ?, last_success = ?, last_status = ?,
                           last_warning = ?, consecutive_failures = 0, next_due = ?
                       WHERE name = ?""",
                    (
                        iso(run.started),
                        iso(run.finished),
                        run.status,
                        run.warning,
                        iso(next_due) if next_due else None,
                        run.source,
                    ),
                )

    def runs(self, source: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if source:
            return self._all(
                "SELECT * FROM runs WHERE source = ? ORDER BY id DESC LIMIT ?", (source, limit)
            )
        return self._all("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))

    def last_runs(self) -> dict[str, dict[str, Any]]:
        """The latest run of each source."""
        rows = self._all(
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY source)"
        )
        return {row["source"]: row for row in rows}

    def recent_first_seen(self, source: str, limit: int = 20) -> list[datetime]:
        """When the source's latest new articles arrived (for its learned cadence)."""
        rows = self.db.execute(
            "SELECT first_seen FROM articles WHERE source = ? ORDER BY first_seen DESC LIMIT ?",
            (source, limit),
        ).fetchall()
        return [parse_iso(r[0]) for r in rows]

    def set_health(
        self, source: str, state: str, now: datetime, notices: Sequence[tuple[str, str, str]]
    ) -> None:
        """Record a source's health state and queue its notices, together.

        `notices`: (channel, delivery id, payload JSON) for each `[health] notify` channel.
        """
        with self.transaction():
            self._ensure_source(source)
            self.db.execute(
                "UPDATE sources SET health_state = ?, health_since = ? WHERE name = ?",
                (state, iso(now), source),
            )
            for channel, delivery, payload in notices:
                self.db.execute(
                    """INSERT INTO outbox (delivery, event, channel, payload, created, expires,
                           next_attempt) VALUES (?, 'source-health', ?, ?, ?, ?, ?)""",
                    (delivery, channel, payload, iso(now), iso(now + RETRY_WINDOW), iso(now)),
                )

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

    def articles_since(self, since: datetime) -> dict[str, int]:
        """Articles first seen since `since`, per source."""
        rows = self._all(
            "SELECT source, count(*) AS n FROM articles WHERE first_seen >= ? GROUP BY source",
            (iso(since),),
        )
        return {row["source"]: row["n"] for row in rows}

    # -- articles -------------------------------------------------------------------------

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
    ) -> tuple[dict[str, Any], str] | None:
        """The archived article this one is the same as, and the kind of match."""
        for url in urls:
            row = self._one(
                "SELECT a.* FROM article_urls u JOIN articles a ON a.id = u.article_id "
                "WHERE u.url = ?",
                (url,),
            )
            if row is not None:
                return row, ("url" if row["url"] == urls[0] else "alias")
        if guid:
            row = self._one(
                "SELECT a.* FROM article_guids g JOIN articles a ON a.id = g.article_id "
                "WHERE g.source = ? AND g.guid = ?",
                (source, guid),
            )
            if row is not None:
                return row, "guid"
        if fingerprint:
            row = self._one(
                "SELECT * FROM articles WHERE fingerprint = ? ORDER BY id LIMIT 1", (fingerprint,)
            )
            if row is not None:
                return row, "fingerprint"
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
                row, kind = found
                article_id, story_id = int(row["id"]), int(row["story_id"] or row["id"])
                outcome = decide_update(row, article, kind)
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

    # -- stories ----------------------------------------------------------------------------

    def _cluster(
        self,
        article_id: int,
        sketch: neardup.Sketch | None,
        title_key: str | None,
        now: datetime,
    ) -> int:
        """Put a new article in its story: the story of the archived copies it matches (their
        stories merge if several), else a story of its own. Returns the story id."""
        stories: set[int] = set()
        if sketch is not None:
            candidates: dict[int, bool] = {}  # article id -> within the title window
            every_key = [*sketch.band_keys, *sketch.lead_keys]
            for start in range(0, len(every_key), 500):
                keys = every_key[start : start + 500]
                marks = ",".join("?" for _ in keys)
                for (other,) in self.db.execute(
                    f"SELECT DISTINCT article_id FROM lsh_bands WHERE band_key IN ({marks})",
                    keys,
                ).fetchall():
                    candidates.setdefault(int(other), False)
            if title_key is not None:
                window = iso(now - timedelta(hours=neardup.TITLE_WINDOW_HOURS))
                for (other,) in self.db.execute(
                    "SELECT id FROM articles WHERE title_key = ? AND first_seen >= ? AND id != ?",
                    (title_key, window, article_id),
                ).fetchall():
                    candidates[int(other)] = True
            own_title = self._one("SELECT title FROM articles WHERE id = ?", (article_id,))
            for other, in_window in list(candidates.items())[:200]:
                row = self._one(
                    "SELECT s.data, a.title, a.story_id FROM article_shingles s "
                    "JOIN articles a ON a.id = s.article_id WHERE s.article_id = ?",
                    (other,),
                )
                if row is None or row["story_id"] in stories:
                    continue
                theirs = neardup.decode_shingles(row["data"])
                if in_window:
                    same = neardup.same_story_with_titles(
                        sketch.shingles, theirs, (own_title or {}).get("title"), row["title"]
                    )
                else:
                    same = neardup.same_story(sketch.shingles, theirs)
                if same:
                    stories.add(int(row["story_id"]))
            self._remember_sketch(article_id, sketch)
        target = neardup.merge_target(stories)
        if target is None:
            return article_id
        story, merged = target
        if merged:
            marks = ",".join("?" for _ in merged)
            self.db.execute(
                f"UPDATE articles SET story_id = ? WHERE story_id IN ({marks})", (story, *merged)
            )
        self.db.execute("UPDATE articles SET story_id = ? WHERE id = ?", (story, article_id))
        return story

    def _remember_sketch(self, article_id: int, sketch: neardup.Sketch | None) -> None:
        if sketch is None:
            return
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
            [(key, article_id) for key in (*sketch.band_keys, *sketch.lead_keys)],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO article_shingles (article_id, data, lead_keys) "
            "VALUES (?, ?, ?)",
            (
                article_id,
                neardup.encode_shingles(sketch.shingles),
                neardup.encode_keys(sketch.lead_keys),
            ),
        )

    def _forget_sketch(self, article_id: int) -> None:
        row = self._one(
            "SELECT data, lead_keys FROM article_shingles WHERE article_id = ?", (article_id,)
        )
        if row is None:
            return
        signature = neardup.signature(neardup.decode_shingles(row["data"]))
        keys = neardup.band_keys(signature) if signature is not None else []
        self.db.conn.executemany(
            "DELETE FROM lsh_bands WHERE band_key = ? AND article_id = ?",
            [(key, article_id) for key in (*keys, *neardup.decode_keys(row["lead_keys"]))],
        )
        self.db.execute("DELETE FROM article_shingles WHERE article_id = ?", (article_id,))

    def rebuild_stories(
        self,
        compute: Callable[[dict[str, Any]], tuple[str | None, neardup.Sketch | None, str | None]],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Recompute every article's fingerprint, sketch and title key (`compute(row)`) and
        its story, in arrival order, as if the articles came in again. Alerts and their
        history are untouched. Returns the number of stories."""
        total = self.count_articles()
        with self.transaction():
            self.db.execute("DELETE FROM lsh_bands")
            self.db.execute("DELETE FROM article_shingles")
            self.db.execute("UPDATE articles SET story_id = id")
        done = 0
        last = 0
        while True:
            rows = self._all(
                "SELECT id, title, summary, text, first_seen FROM articles WHERE id > ? "
                "ORDER BY id LIMIT 500",
                (last,),
            )
            if not rows:
                break
            with self.transaction():
                for row in rows:
                    fingerprint, sketch, title_key = compute(row)
                    self.db.execute(
                        "UPDATE articles SET fingerprint = ?, title_key = ? WHERE id = ?",
                        (fingerprint, title_key, row["id"]),
                    )
                    self._cluster(row["id"], sketch, title_key, parse_iso(row["first_seen"]))
                    done += 1
            last = rows[-1]["id"]
            if progress is not None:
                progress(done, total)
        return int(self.db.execute("SELECT count(DISTINCT story_id) FROM articles").fetchone()[0])

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

    # -- article pages that failed, retried on later runs ----------------------------------

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

    def pending_pages(self, source: str, max_attempts: int) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT * FROM pending_pages WHERE source = ? AND attempts < ? ORDER BY first_attempt",
            (source, max_attempts),
        )
        for row in rows:
            row["info"] = json.loads(row["info"] or "{}")
        return rows

    def drop_pending_page(self, url: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM pending_pages WHERE url = ?", (url,))

    def _queue_alert(
        self, alert: AlertIn, article_id: int, story_id: int, now: datetime, hold: str | None
    ) -> None:
        """Queue one alert, unless this rule already alerted this channel about the story.

        The story is looked up through the articles (a story can absorb another when a copy
        links them), so a rule alerts at most once per story. A rule with a digest, or past its
        `max_per_hour`, holds the alert for its digest (status 'held').
        """
        already = self._one(
            """SELECT 1 FROM outbox o JOIN articles a ON a.id = o.article_id
               WHERE o.rule = ? AND o.channel = ? AND a.story_id = ? LIMIT 1""",
            (alert.rule, alert.channel, story_id),
        )
        if already is not None:
            return
        hour = hour_start(now)
        sent = self.db.execute(
            """SELECT count(*) FROM outbox WHERE rule = ? AND channel = ? AND event = 'alert'
                   AND hold_until IS NULL AND status != 'merged' AND created >= ?""",
            (alert.rule, alert.channel, iso(hour)),
        ).fetchone()[0]
        until = hold_until(now, alert.digest, alert.max_per_hour, int(sent))
        since = None
        if until is not None:
            since = until - (timedelta(days=1) if alert.digest == "daily" else timedelta(hours=1))
        self.db.execute(
            """INSERT OR IGNORE INTO outbox (delivery, event, rule, channel, article_id, story_id,
                   matched, created, expires, next_attempt, status, hold_from, hold_until,
                   pass_id)
               VALUES (?, 'alert', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                str(uuid.uuid4()),
                alert.rule,
                alert.channel,
                article_id,
                story_id,
                json.dumps(list(alert.matched)),
                iso(now),
                iso(now + RETRY_WINDOW),
                iso(now),
                "held" if until is not None else "pending",
                iso(since) if since is not None else None,
                iso(until) if until is not None else None,
                hold,
            ),
        )

    # -- passes holding their alerts ---------------------------------------------------------

    def begin_pass(self, owner: str, now: datetime, lease: timedelta) -> str:
        """A pass that holds the alerts it queues until `end_pass`; returns its id."""
        pass_id = str(uuid.uuid4())
        with self.transaction():
            self.db.execute(
                "INSERT INTO passes (id, owner, started, lease_until) VALUES (?, ?, ?, ?)",
                (pass_id, owner, iso(now), iso(now + lease)),
            )
        return pass_id

    def renew_pass(self, pass_id: str, now: datetime, lease: timedelta) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE passes SET lease_until = ? WHERE id = ?", (iso(now + lease), pass_id)
            )

    def passes(self) -> list[dict[str, Any]]:
        """The passes holding alerts: id, owner, started, lease_until (datetimes)."""
        rows = self._all("SELECT * FROM passes ORDER BY started")
        for row in rows:
            row["started"], row["lease_until"] = (
                parse_iso(row["started"]),
                parse_iso(row["lease_until"]),
            )
        return rows

    def end_pass(self, pass_id: str) -> tuple[int, int]:
        """Release the alerts the pass held, one per (rule, channel, story) as the stories are
        now: the others become 'merged' into the one that stands for them (an alert of an
        earlier pass, if the story had one). Returns (released, merged)."""
        with self.transaction():
            held = [
                QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                for r in self._all(
                    """SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                       LEFT JOIN articles a ON a.id = o.article_id WHERE o.pass_id = ?""",
                    (pass_id,),
                )
            ]
            stories = sorted({a.story for a in held if a.story is not None})
            earlier: list[QueuedAlert] = []
            for start in range(0, len(stories), 500):
                chunk = stories[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                earlier += [
                    QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                    for r in self._all(
                        f"""SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                            JOIN articles a ON a.id = o.article_id
                            WHERE a.story_id IN ({marks}) AND o.event = 'alert'
                                AND o.pass_id IS NULL AND o.status != 'merged'""",
                        chunk,
                    )
                ]
            merged = collapse(held, earlier)
            self.db.conn.executemany(
                "UPDATE outbox SET status = 'merged', merged_into = ? WHERE id = ?",
                [(into, outbox_id) for outbox_id, into in merged.items()],
            )
            self.db.execute("UPDATE outbox SET pass_id = NULL WHERE pass_id = ?", (pass_id,))
            self.db.execute("DELETE FROM passes WHERE id = ?", (pass_id,))
        return len(held) - len(merged), len(merged)

    # -- digests ----------------------------------------------------------------------------

    def due_digests(self, now: datetime) -> list[dict[str, Any]]:
        """Held alerts whose period has closed, one group per (rule, channel, period)."""
        rows = self._all(
            """SELECT rule, channel, hold_from, hold_until, group_concat(id) AS ids
               FROM outbox WHERE status = 'held' AND hold_until <= ? AND pass_id IS NULL
               GROUP BY rule, channel, hold_from, hold_until ORDER BY hold_until, rule""",
            (iso(now),),
        )
        for row in rows:
            row["ids"] = sorted(int(i) for i in row["ids"].split(","))
        return rows

    def add_digest(
        self,
        rule: str,
        channel: str,
        delivery: str,
        payload: str,
        member_ids: Sequence[int],
        now: datetime,
    ) -> int:
        """Queue one digest delivery for the held alerts `member_ids`, in one transaction."""
        with self.transaction():
            cursor = self.db.execute(
                """INSERT INTO outbox (delivery, event, rule, channel, payload, created, expires,
                       next_attempt)
                   VALUES (?, 'digest', ?, ?, ?, ?, ?, ?)""",
                (delivery, rule, channel, payload, iso(now), iso(now + RETRY_WINDOW), iso(now)),
            )
            digest_id = int(cursor.lastrowid or 0)
            marks = ",".join("?" for _ in member_ids)
            self.db.execute(
                f"UPDATE outbox SET status = 'digested', digest_id = ? "
                f"WHERE status = 'held' AND id IN ({marks})",
                (digest_id, *member_ids),
            )
            return digest_id

    def article(self, article_id: int) -> dict[str, Any] | None:
        row = self._one("SELECT * FROM articles WHERE id = ?", (article_id,))
        if row is not None:
            row["urls"] = self._article_urls(article_id)
        return row

    def _article_urls(self, article_id: int) -> list[str]:
        rows = self.db.execute(
            "SELECT url FROM article_urls WHERE article_id = ? ORDER BY rowid", (article_id,)
        ).fetchall()
        return [r[0] for r in rows]

    def article_story(self, article_id: int) -> int | None:
        """The story an article belongs to now (stories can merge)."""
        row = self._one("SELECT story_id FROM articles WHERE id = ?", (article_id,))
        return int(row["story_id"]) if row and row["story_id"] is not None else None

    def also_reported_by(self, story_id: int | None, article_id: int) -> list[dict[str, Any]]:
        """Other articles of the story: the later copies, in arrival order."""
        if story_id is None:
            return []
        return self._all(
            "SELECT source, url, title FROM articles WHERE story_id = ? AND id != ? ORDER BY id",
            (story_id, article_id),
        )

    def count_articles(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])

    def iter_articles(
        self, since: datetime | None = None, source: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Articles in arrival order, with their aliases and story."""
        where, params = self._filters(since, source)
        cursor = self.db.execute(f"SELECT * FROM articles {where} ORDER BY id", params)
        names = [c[0] for c in cursor.description]
        for raw in cursor:
            row = dict(zip(names, raw, strict=True))
            row["urls"] = self._article_urls(row["id"])
            row["also_reported_by"] = self.also_reported_by(row["story_id"], row["id"])
            yield row

    @staticmethod
    def _filters(
        since: datetime | None, source: str | None, prefix: str = ""
    ) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if since is not None:
            clauses.append(f"{prefix}first_seen >= ?")
            params.append(iso(since))
        if source:
            clauses.append(f"{prefix}source = ?")
            params.append(source)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def search(
        self,
        query: Query,
        since: datetime | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> list[tuple[dict[str, Any], list[str]]]:
        """Articles the query matches, newest first, with the matched terms.

        FTS5 narrows the candidates (a superset); the query's own matcher decides, so search,
        backtests and the live matcher give the same answer for the same article.
        """
        where, params = self._filters(since, source, prefix="a.")
        fts = query.to_fts()
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
        found: list[tuple[dict[str, Any], list[str]]] = []
        for raw in cursor:
            row = dict(zip(names, raw, strict=True))
            matched = query.matches(Document.from_fields(row["title"], row["summary"], row["text"]))
            if matched is not None:
                found.append((row, matched))
                if limit is not None and len(found) >= limit:
                    break
        return found

    # -- outbox ---------------------------------------------------------------------------

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        return self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt <= ? "
            "AND pass_id IS NULL ORDER BY next_attempt, id LIMIT ?",
            (iso(now), limit),
        )

    def delivery(self, outbox_id: int) -> dict[str, Any] | None:
        return self._one("SELECT * FROM outbox WHERE id = ?", (outbox_id,))

    def set_payload(self, outbox_id: int, payload: str) -> None:
        """Freeze the body before the first send, so every retry sends the same bytes."""
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET payload = ? WHERE id = ? AND payload IS NULL",
                (payload, outbox_id),
            )

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self.transaction():
            self.db.execute(
                """UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent = ?,
                       last_attempt = ?, last_error = NULL WHERE id = ?""",
                (iso(now), iso(now), outbox_id),
            )

    def mark_attempt_failed(
        self, outbox_id: int, now: datetime, error: str, next_attempt: datetime | None
    ) -> None:
        """A failed send: retry at `next_attempt`, or give up (status failed) when it is None."""
        with self.transaction():
            if next_attempt is None:
                self.db.execute(
                    """UPDATE outbox SET status = 'failed', attempts = attempts + 1,
                           last_attempt = ?, last_error = ? WHERE id = ?""",
                    (iso(now), error, outbox_id),
                )
            else:
                self.db.execute(
                    """UPDATE outbox SET attempts = attempts + 1, last_attempt = ?,
                           last_error = ?, next_attempt = ? WHERE id = ?""",
                    (iso(now), error, iso(next_attempt), outbox_id),
                )

    def retry_deliveries(self, now: datetime, ids: Sequence[int] | None) -> int:
        """Put failed deliveries back in the queue (all failed ones when `ids` is None).

        The retry window starts again from now; the delivery id stays the same.
        """
        times = (iso(now), iso(now + RETRY_WINDOW))
        with self.transaction():
            if ids is None:
                cursor = self.db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt = ?, expires = ? "
                    "WHERE status = 'failed'",
                    times,
                )
            else:
                marks = ",".join("?" for _ in ids)
                cursor = self.db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt = ?, expires = ? "
                    f"WHERE status = 'failed' AND id IN ({marks})",
                    (*times, *ids),
                )
            return int(cursor.rowcount)

    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        if status:
            return self._all(
                "SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
            )
        return self._all("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
