"""The SQLite engine's connection: one writer per process (WAL; readers may be many), its
migrations, transactions, and the edge where SQLite's errors become the archive's own.

Every public method of the engine (`crawler.archive.sqlite.SqliteArchive`) is wrapped by
`translate_errors`: a `sqlite3.Error` leaves it as a `crawler.archive.StorageError`, so no
caller sees the engine's exceptions.
"""

from __future__ import annotations

import functools
import inspect
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from crawler.archive.errors import ArchiveError, StorageError
from crawler.archive.sqlite import schema
from crawler.clock import iso

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


T = TypeVar("T")


def _translated(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from func(*args, **kwargs)
            except sqlite3.Error as exc:
                raise StorageError(str(exc)) from exc

        return generator

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

    return call


def translate_errors(cls: type[T]) -> type[T]:
    """Wrap every public method of `cls` and its bases so that SQLite's errors leave it as
    `StorageError`."""
    seen: set[str] = set()
    for klass in cls.__mro__:
        for name, value in vars(klass).items():
            if name.startswith("_") or name in seen:
                continue
            seen.add(name)
            if inspect.isfunction(value) and name != "transaction":
                setattr(cls, name, _translated(value))
    return cls


class SqliteBase:
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

    def __enter__(self) -> Any:
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

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def _checked_version(self) -> int:
        version = self.schema_version()
        if version > schema.SCHEMA_VERSION:
            raise ArchiveError(
                f"the archive {self.path} has schema version {version}, newer than this "
                f"newswatch knows ({schema.SCHEMA_VERSION}); upgrade newswatch"
            )
        return version

    def _migrate(self) -> None:
        if self._checked_version() == schema.SCHEMA_VERSION:
            return
        # Another process may be migrating the same file (`newswatch sources` run beside a
        # starting service; measured: "duplicate column name"): take the write lock first, and
        # read the version again under it.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for number in range(self._checked_version() + 1, schema.SCHEMA_VERSION + 1):
                with self.db.atomic():
                    schema.MIGRATIONS[number - 1](self.db)
                    self.db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        try:
            with self.db.atomic():
                yield
        except sqlite3.Error as exc:
            raise StorageError(str(exc)) from exc

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
