"""The SQLite engine (sqlite-utils), the default archive: one file, one writer per process.

`SqliteArchive` is the engine's one class, put together from one mixin per domain (the
`crawler.archive.interface` Protocols): sources, articles, stories, outbox, search,
maintenance, and claims (leases on due sources, under BEGIN IMMEDIATE). Storing an article
clusters it and queues its alerts in one transaction, so `ArticlesMixin` builds on
`StoriesMixin` and `OutboxMixin`, and pruning (`MaintenanceMixin`) on `ArticlesMixin`; `base`
holds the connection, migrations (`schema`) and the error edge. Only this package imports
`sqlite3` and `sqlite_utils`.
"""

from __future__ import annotations

from crawler.archive.sqlite.base import BUSY_SECONDS, translate_errors
from crawler.archive.sqlite.claims import ClaimsMixin
from crawler.archive.sqlite.maintenance import MaintenanceMixin
from crawler.archive.sqlite.schema import SCHEMA_VERSION
from crawler.archive.sqlite.search import SearchMixin

__all__ = ["BUSY_SECONDS", "SCHEMA_VERSION", "SqliteArchive"]


@translate_errors
class SqliteArchive(ClaimsMixin, MaintenanceMixin, SearchMixin):
    """The archive in one SQLite file. Use as a context manager or call close()."""

    def __enter__(self) -> SqliteArchive:
        return self
