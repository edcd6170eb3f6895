"""`newswatch migrate --to URL`: the whole SQLite archive copied into an empty PostgreSQL
database, all or nothing, the SQLite file left as it was (read by
`crawler.archive.sqlite.dump`, written by `crawler.archive.postgres.load`; docs/operations.md,
"Several nodes")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def migrate_archive(
    path: Path, url: str, progress: Callable[[str, int, int], None] | None = None
) -> dict[str, int]:
    """Copy the SQLite archive at `path` into the empty PostgreSQL database at `url`; the rows
    copied per table. ArchiveError (nothing copied) when the file cannot be read, the
    database is not empty or cannot be reached, or a row is refused."""
    from crawler.archive.postgres.load import load, prepare
    from crawler.archive.sqlite.dump import read_archive

    with read_archive(path) as dump:
        prepare(url)
        return load(url, dump, progress)
