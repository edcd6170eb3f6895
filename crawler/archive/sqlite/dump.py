"""Reading a whole SQLite archive, table by table, for `newswatch migrate` (the other side is
`crawler.archive.postgres.load`). The file is opened read-only (``mode=ro``), in one read
transaction, so what is read is one consistent moment and the file is left as it was."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crawler.archive.errors import ArchiveError
from crawler.archive.sqlite.schema import SCHEMA_VERSION

# Every table with the archive's data, parents before the tables that refer to them. The
# search index (articles_fts) is not copied: each engine builds its own from the articles.
TABLES = (
    "sources",
    "runs",
    "articles",
    "article_urls",  # in insertion order (rowid): the first alias stays first
    "article_guids",
    "seen",
    "pending_pages",
    "outbox",
    "passes",
    "lsh_bands",
    "article_shingles",
    "period_slots",
)
BATCH = 5000  # rows per batch read


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    count: int


class Dump:
    """The tables of one SQLite archive, read in batches of rows (tuples, in `columns` order:
    times as the archive's ISO text, blobs as bytes)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def tables(self) -> list[Table]:
        found = []
        for name in TABLES:
            columns = tuple(row[1] for row in self.conn.execute(f"PRAGMA table_info({name})"))
            (count,) = self.conn.execute(f"SELECT count(*) FROM {name}").fetchone()
            found.append(Table(name, columns, int(count)))
        return found

    def rows(self, table: Table, batch: int = BATCH) -> Iterator[Sequence[tuple[Any, ...]]]:
        order = " ORDER BY rowid" if table.name == "article_urls" else ""
        cursor = self.conn.execute(f"SELECT {', '.join(table.columns)} FROM {table.name}{order}")
        while rows := cursor.fetchmany(batch):
            yield rows


@contextmanager
def read_archive(path: Path) -> Iterator[Dump]:
    """The SQLite archive at `path`, read-only, at one consistent moment; ArchiveError when it
    is missing, not an archive, or of another schema version than this newswatch's."""
    if not path.is_file():
        raise ArchiveError(f"there is no archive at {path}; check [archive] path in the config")
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot open the archive {path} to read it: {exc}") from exc
    try:
        conn.execute("BEGIN")  # one read transaction: one consistent snapshot
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version != SCHEMA_VERSION:
            raise ArchiveError(
                f"the archive {path} has schema version {version}, this newswatch writes "
                f"{SCHEMA_VERSION}; run `newswatch sources` once with this newswatch to bring "
                "it up to date, then migrate"
                if version < SCHEMA_VERSION
                else f"the archive {path} has schema version {version}, newer than this "
                f"newswatch knows ({SCHEMA_VERSION}); upgrade newswatch"
            )
        yield Dump(conn)
    except sqlite3.Error as exc:
        raise ArchiveError(f"cannot read the archive {path}: {exc}") from exc
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
