"""How PostgreSQL starts in tests: a real server, found or started, and a fresh database per test.

In this order (`find_server`):

1. the server at ``$NEWSWATCH_TEST_POSTGRES`` (a URL such as
   ``postgresql://postgres@127.0.0.1:5432/postgres``), if set: it must answer;
2. else the local server at 127.0.0.1:5432, user ``postgres`` (trust authentication), if it
   answers;
3. else a throwaway cluster (`Throwaway`): ``initdb`` and ``pg_ctl`` from the machine's
   PostgreSQL server binaries (``/usr/lib/postgresql/*/bin``, or on the PATH) in a temporary
   folder, run as the ``postgres`` user when the tests run as root, stopped at the end;
4. else none: the tests that need it are skipped with `HOW_TO_ENABLE`; under ``CI=true`` such a
   skip is a failure instead (tests/conftest.py).

Each test gets a database of its own (`fresh_database`): ``CREATE DATABASE`` with a random name
from a template holding the archive's schema (made once per session, so a test does not pay for
the migrations), dropped afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ENV = "NEWSWATCH_TEST_POSTGRES"
LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO_ENABLE = (
    "no PostgreSQL server for the tests: set NEWSWATCH_TEST_POSTGRES to a server's URL "
    "(postgresql://USER@HOST:PORT/postgres, a user allowed to CREATE DATABASE), run one at "
    "127.0.0.1:5432 with user postgres, or install the PostgreSQL server binaries (initdb, "
    "pg_ctl; Debian: apt-get install postgresql) so the tests start a throwaway cluster"
)


def answers(url: str, timeout: float = 3.0) -> str | None:
    """None if a session at `url` opens and runs a query; else why not."""
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip() or type(exc).__name__
    return None


def with_database(url: str, name: str) -> str:
    """`url` with its database part replaced by `name`."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def server_binaries() -> Path | None:
    """The folder with ``initdb`` and ``pg_ctl``: the newest /usr/lib/postgresql/N/bin, else the
    PATH's."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Throwaway:
    """A cluster of its own in a temporary folder: `start()`, then `url`; `stop()` removes it.

    Run as the ``postgres`` user when we are root (the server refuses to run as root)."""

    port: int = field(default_factory=free_port)
    binaries: Path | None = field(default_factory=server_binaries)
    folder: Path | None = None
    url: str = ""

    def _run(self, *args: str) -> None:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")

    def start(self) -> Throwaway:
        if self.binaries is None:
            raise RuntimeError(HOW_TO_ENABLE)
        self.folder = Path(tempfile.mkdtemp(prefix="newswatch-pg-"))
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
        data = self.folder / "data"
        self._run(
            str(self.binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._run(
            str(self.binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def restart(self) -> None:
        """Restart the server (fast shutdown: sessions are cut), as an operator's pg_ctl would."""
        assert self.folder is not None and self.binaries is not None
        self._run(
            str(self.binaries / "pg_ctl"), "-D", str(self.folder / "data"), "-m", "fast",
            "-l", str(self.folder / "server.log"), "-w", "-t", "60", "restart",
        )  # fmt: skip

    def stop(self) -> None:
        if self.folder is None:
            return
        data = self.folder / "data"
        if (data / "postmaster.pid").exists() and self.binaries is not None:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run(
                    str(self.binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"
                )
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None


@dataclass
class Server:
    """A server the tests may use: its admin URL, where it came from, how to stop it."""

    url: str
    origin: str  # "env" | "local" | "throwaway"
    stop: Callable[[], None] = lambda: None


def find_server() -> tuple[Server | None, str]:
    """The server the tests use, or None and why there is none (see the module's docstring)."""
    configured = os.environ.get(ENV)
    if configured:
        problem = answers(configured)
        if problem is not None:
            return None, f"{ENV}={configured} does not answer: {problem}"
        return Server(configured, "env"), ""
    if answers(LOCAL, timeout=2.0) is None:
        return Server(LOCAL, "local"), ""
    if server_binaries() is None:
        return None, HOW_TO_ENABLE
    cluster = Throwaway()
    try:
        cluster.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError) as exc:
        cluster.stop()
        return None, f"{HOW_TO_ENABLE} (a throwaway cluster did not start: {exc})"
    return Server(cluster.url, "throwaway", cluster.stop), ""


def create_database(admin_url: str, template: str | None = None) -> str:
    """A new database with a random name (copied from `template`, if given); its URL."""
    name = f"nw_test_{uuid.uuid4().hex[:12]}"
    statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)
    return with_database(admin_url, name)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database of `url`, ending the sessions still in it."""
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


@contextlib.contextmanager
def fresh_database(admin_url: str, template: str | None = None) -> Iterator[str]:
    """A database of its own for one test, dropped afterwards."""
    url = create_database(admin_url, template)
    try:
        yield url
    finally:
        drop_database(admin_url, url)
