"""The archive: everything the product remembers, behind one interface.

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
- ``lsh_bands``, ``article_shingles``  near-duplicate sketches (crawler.decide.neardup) for stories
- ``outbox``        one row per (rule, story, channel), digests and source-health notices: the
                    delivery log and queue; an alert queued during a pass is held (``pass_id``)
                    until the pass ends, then released or merged into the alert of its story
- ``passes``        the passes holding alerts, with their owner and lease (an orphan's alerts
                    are released by the next delivery round)

The interface (`interface.Storage`, a Protocol split by domain) is what callers use; there are
two engines, opened by `open_archive`: `sqlite.SqliteArchive` (the default: one file, one
writer connection per process, WAL, versioned migrations) and `postgres.PostgresArchive` (one
PostgreSQL database shared by several nodes, through a connection pool; the same tables, with
a ``tsvector`` search index instead of FTS5). Errors leave it as the package's own::

    CrawlerError
     +-- ArchiveError      the archive cannot be opened or migrated, or is newer than this code
          +-- StorageError  reading or writing failed (disk full, locked, I/O): retried later

The SQLite engine stores times as UTC ISO 8601 strings with ``Z`` (they sort as text); what
it returns are typed records (`crawler.records`, made by `rows`), times as UTC datetimes.
"""

from __future__ import annotations

from pathlib import Path

from crawler.archive.errors import ArchiveError, StorageError
from crawler.archive.interface import Storage
from crawler.archive.sqlite import BUSY_SECONDS, SCHEMA_VERSION, SqliteArchive
from crawler.decide.alerting import RETRY_WINDOW
from crawler.records import (
    AlertIn,
    Article,
    ArticleIn,
    Delivery,
    DueDigest,
    Pass,
    PendingPage,
    Run,
    RunRecord,
    SourceState,
    Stored,
    StoryMember,
)

__all__ = [
    "BUSY_SECONDS",
    "RETRY_WINDOW",
    "SCHEMA_VERSION",
    "AlertIn",
    "Archive",
    "ArchiveError",
    "Article",
    "ArticleIn",
    "Delivery",
    "DueDigest",
    "Pass",
    "PendingPage",
    "Run",
    "RunRecord",
    "SourceState",
    "Storage",
    "StorageError",
    "Stored",
    "StoryMember",
    "open_archive",
]

Archive = SqliteArchive  # the default engine: `Archive(path)` opens (or creates) the file


def open_archive(*, path: str | Path | None = None, url: str | None = None) -> Storage:
    """Open (creating or migrating it) the archive: the SQLite file at `path`, or the
    PostgreSQL database at `url` (``postgresql://...``); exactly one of the two.

    The PostgreSQL engine is imported only when asked for, so the SQLite default does not load
    psycopg."""
    if (path is None) == (url is None):
        raise ArchiveError("give the archive's path (SQLite) or its url (PostgreSQL), not both")
    if url is not None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ArchiveError(
                f"the archive url must start with postgresql:// (got {url.split(':', 1)[0]}:...)"
            )
        from crawler.archive.postgres import PostgresArchive

        return PostgresArchive(url)
    assert path is not None
    return SqliteArchive(path)
