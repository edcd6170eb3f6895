"""The PostgreSQL engine's connections: a pool (psycopg_pool) shared by the process's threads,
one transaction per call, its migrations, and the edge where psycopg's errors become the
archive's own.

Every public method of the engine (`crawler.archive.postgres.PostgresArchive`) is wrapped by
`translate_errors`: a `psycopg.Error` (a lost server, a pool timeout, a constraint) leaves it as
a `crawler.archive.StorageError`, so no caller sees the engine's exceptions.

Times are ``timestamptz`` columns, written to the second (`ts`) so that they compare and sort
as the SQLite engine's ISO text does; rows become typed records through `crawler.archive.rows`,
as the SQLite engine's do, so both engines answer alike.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from crawler.archive.errors import ArchiveError, StorageError
from crawler.archive.postgres import schema

CONNECT_SECONDS = 10  # how long opening the archive waits for the server
POOL_SIZE = 8  # connections per process: the loop, delivery's threads, a generator being read
POOL_WAIT_SECONDS = 30.0  # how long a call waits for a free connection before it fails
HEALTH_SECONDS = 2.0  # how long the health check waits for a connection
MIGRATION_LOCK = 0x6E6577737761  # pg_advisory_xact_lock key serialising migrations ("newswa")

T = TypeVar("T")


def ts(dt: datetime | None) -> datetime | None:
    """A time as the archive stores it: UTC, to the second (the SQLite engine's ISO text)."""
    if dt is None:
        return None
    return dt.astimezone(UTC).replace(microsecond=0)


def lock_key(*parts: object) -> int:
    """A signed 64-bit advisory-lock key for a value (a URL, a GUID, a title key)."""
    digest = hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True)


def _translated(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from func(*args, **kwargs)
            except psycopg.Error as exc:
                raise StorageError(_message(exc)) from exc

        return generator

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except psycopg.Error as exc:
            raise StorageError(_message(exc)) from exc

    return call


def _message(exc: psycopg.Error) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"PostgreSQL: {text}"


def translate_errors(cls: type[T]) -> type[T]:
    """Wrap every public method of `cls` and its bases so that psycopg's errors leave it as
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


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")


class PostgresBase:
    """A pool of connections to one PostgreSQL database. Use as a context manager or call
    close()."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        try:
            with psycopg.connect(url, connect_timeout=CONNECT_SECONDS, autocommit=True) as conn:
                _configure(conn)
                self._migrate(conn)
        except ArchiveError:
            raise
        except psycopg.Error as exc:
            raise ArchiveError(
                f"cannot open the archive at {_safe(url)}: {str(exc).strip()}; check that the "
                "server runs, the URL, and that the user may connect and create tables"
            ) from exc
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_SIZE,
            timeout=POOL_WAIT_SECONDS,
            # no server-side prepared statements: they break behind pgbouncer's transaction
            # pooling, where a session's next transaction may run on another server connection
            kwargs={"autocommit": True, "row_factory": dict_row, "prepare_threshold": None},
            configure=_configure,
            # a connection is checked as it leaves the pool (one round trip): after a server
            # restart or a terminated session the next call gets a fresh connection instead
            # of failing on a dead one
            check=ConnectionPool.check_connection,
            open=False,
            name="newswatch-archive",
        )
        try:
            self.pool.open(wait=True, timeout=CONNECT_SECONDS)
        except psycopg.Error as exc:
            self.pool.close()
            raise ArchiveError(f"cannot open the archive at {_safe(url)}: {exc}") from exc

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.pool.close()

    def checkpoint(self) -> None:
        """Nothing to do: the server checkpoints by itself."""

    def writable(self) -> bool:
        """The server answers within `HEALTH_SECONDS` and accepts writes (not a read-only
        standby): the health check asks this, and must not wait out the pool's timeout."""
        try:
            with self.pool.connection(timeout=HEALTH_SECONDS) as conn:
                row = conn.execute("SELECT pg_is_in_recovery() AS standby").fetchone()
        except psycopg.Error:
            return False
        return row is not None and not row["standby"]

    def schema_version(self) -> int:
        row = self._one("SELECT version FROM newswatch_schema")
        return int(row["version"]) if row else 0

    # -------------------------------------------------------------------- migrations

    @staticmethod
    def _version(conn: psycopg.Connection[Any]) -> int:
        conn.execute("CREATE TABLE IF NOT EXISTS newswatch_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM newswatch_schema").fetchone()
        return int(row[0]) if row else 0

    def _checked(self, version: int) -> int:
        if version > schema.SCHEMA_VERSION:
            raise ArchiveError(
                f"the archive at {_safe(self.url)} has schema version {version}, newer than "
                f"this newswatch knows ({schema.SCHEMA_VERSION}); upgrade newswatch"
            )
        return version

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        """Run the missing migrations, each in its own transaction; nodes starting together
        wait for each other on a transaction-scoped advisory lock and read the version again
        under it."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            current = self._checked(self._version(conn))
        while current < schema.SCHEMA_VERSION:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                current = self._checked(self._version(conn))
                if current >= schema.SCHEMA_VERSION:
                    break
                schema.MIGRATIONS[current](conn)
                conn.execute("DELETE FROM newswatch_schema")
                conn.execute("INSERT INTO newswatch_schema (version) VALUES (%s)", (current + 1,))
            current += 1

    # -------------------------------------------------------------------- transactions

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """The connection of this thread's transaction, if one is open; else one from the pool
        (autocommit: each statement its own transaction)."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self.pool.connection() as conn:
            yield conn

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        """Everything inside commits together or not at all (a savepoint when nested)."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            with current.transaction():
                yield current
            return
        with self.pool.connection() as conn:
            self._local.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside commits together or not at all."""
        try:
            with self._transaction():
                yield
        except psycopg.Error as exc:
            raise StorageError(_message(exc)) from exc

    def _execute(self, query: Any, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        with self._conn() as conn:
            return conn.execute(query, params).rowcount

    def _one(self, query: Any, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        with self._conn() as conn:
            return conn.execute(query, params).fetchone()

    def _all(self, query: Any, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    def _stream(self, query: Any, params: Sequence[Any] = ()) -> Iterator[dict[str, Any]]:
        """Rows read in batches through a server-side cursor, in a transaction of their own
        (a connection held until the generator is exhausted or closed)."""
        name = f"stream_{uuid.uuid4().hex}"
        with (
            self.pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name=name) as cursor,
        ):
            cursor.itersize = 500
            cursor.execute(query, params)
            yield from cursor

    @staticmethod
    def _filters(
        since: datetime | None, source: str | None, prefix: str = ""
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if since is not None:
            clauses.append(f"{prefix}first_seen >= %s")
            params.append(ts(since))
        if source:
            clauses.append(f"{prefix}source = %s")
            params.append(source)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured PostgreSQL URL"
    host, port = str(info.get("host") or ""), str(info.get("port") or "")
    name, user = str(info.get("dbname") or ""), str(info.get("user") or "")
    where = f"{host}:{port}" if port else host
    return f"postgresql://{user + '@' if user else ''}{where}/{name}"
