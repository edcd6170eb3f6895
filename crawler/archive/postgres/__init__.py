"""The PostgreSQL engine (psycopg 3, psycopg_pool): one archive shared by several nodes.

`PostgresArchive` implements the same storage interface (`crawler.archive.interface.Storage`)
as the SQLite engine, with the same methods, arguments, row shapes (times as UTC ISO text) and
meaning, put together the same way from one mixin per domain: sources, articles, stories,
outbox, search, maintenance, and claims (`ClaimsStore`: leases on due sources, for several
nodes); `base` holds the connection pool, migrations (`schema`) and the error edge. Only this
package imports `psycopg` and `psycopg_pool`.
"""

from __future__ import annotations

from crawler.archive.postgres.base import translate_errors
from crawler.archive.postgres.claims import ClaimsMixin
from crawler.archive.postgres.maintenance import MaintenanceMixin
from crawler.archive.postgres.schema import SCHEMA_VERSION
from crawler.archive.postgres.search import SearchMixin

__all__ = ["SCHEMA_VERSION", "PostgresArchive"]


@translate_errors
class PostgresArchive(ClaimsMixin, MaintenanceMixin, SearchMixin):
    """The archive in a PostgreSQL database. Use as a context manager or call close()."""

    networked = True  # calls from the event loop run on worker threads (crawler.archive.aio)

    def __enter__(self) -> PostgresArchive:
        return self
