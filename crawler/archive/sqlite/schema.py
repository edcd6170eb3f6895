"""The SQLite archive's schema: numbered migrations keyed on ``PRAGMA user_version``.

Append only: a later version only ever adds. Each migration takes the database and brings it
to its version; `crawler.archive.sqlite.base` runs the missing ones in one transaction each,
under the write lock. docs/architecture.md lists what each version adds.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

from crawler.decide import neardup


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
    """Stories: near-duplicate sketches (crawler.decide.neardup) and a title key per article."""
    for statement in neardup.SCHEMA_STATEMENTS:
        db.execute(statement)
    db.execute("ALTER TABLE articles ADD COLUMN title_key TEXT")
    db.execute("CREATE INDEX articles_title_key ON articles(title_key, first_seen)")


def _migration_6(db: sqlite_utils.Database) -> None:
    """One alert per story in any arrival order: alerts held until their pass ends; the band
    keys of each text's lead (crawler.decide.neardup, "The lead"), kept to delete them again."""
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


def _migration_8(db: sqlite_utils.Database) -> None:
    """Several processes on one archive: outbox rows claimed with a lease (owner, token,
    until) while they are sent, and once-per-period jobs' slots (`period_slots`)."""
    db.execute("ALTER TABLE outbox ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN lease_token TEXT")
    db.execute("ALTER TABLE outbox ADD COLUMN lease_until TEXT")
    # the claims held (each round looks for those of dead processes): few rows, found at once
    db.execute("CREATE INDEX outbox_lease ON outbox(lease_token) WHERE lease_token IS NOT NULL")
    db.execute(
        """CREATE TABLE period_slots (
            job TEXT NOT NULL,
            period TEXT NOT NULL,
            owner TEXT NOT NULL,
            claimed TEXT NOT NULL,
            PRIMARY KEY (job, period)
        )"""
    )


def _migration_9(db: sqlite_utils.Database) -> None:
    """Claims (`claims.ClaimsMixin`, as on PostgreSQL), each source's host (a host's sources
    are leased to one node at a time) and the node of each run."""
    db.execute("ALTER TABLE sources ADD COLUMN lease_owner TEXT")
    db.execute("ALTER TABLE sources ADD COLUMN lease_token TEXT")
    db.execute("ALTER TABLE sources ADD COLUMN lease_until TEXT")
    db.execute("ALTER TABLE sources ADD COLUMN host TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN node TEXT")


MIGRATIONS: tuple[Callable[[sqlite_utils.Database], None], ...] = (
    _migration_1,
    _migration_2,
    _migration_3,
    _migration_4,
    _migration_5,
    _migration_6,
    _migration_7,
    _migration_8,
    _migration_9,
)
SCHEMA_VERSION = len(MIGRATIONS)
