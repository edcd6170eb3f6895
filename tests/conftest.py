"""Shared pytest fixtures: real local servers (see servers.py), the fixture news site, and the
archive on each engine: a real SQLite file, and a real PostgreSQL server (see pgserver.py)."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pgserver
import pytest
from servers import FixtureSite, WebhookReceiver

from crawler.archive import Storage, open_archive

FIXTURE_SITE = Path(__file__).parent / "fixtures" / "site"


@pytest.fixture
def site() -> Iterator[FixtureSite]:
    """tests/fixtures/site/ served on 127.0.0.1 and a free port (see its README.md)."""
    with FixtureSite(FIXTURE_SITE) as fixture_site:
        yield fixture_site


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    """A webhook receiver at ``webhook.url`` answering 200 (``set_responses`` to change)."""
    with WebhookReceiver() as receiver:
        yield receiver


@pytest.fixture
def site_factory() -> Iterator[Callable[..., FixtureSite]]:
    """``site_factory(root=FIXTURE_SITE, host="127.0.0.1")`` starts a FixtureSite (root None:
    overrides only); all are stopped at teardown. Hosts 127.0.0.2, 127.0.0.3, ... are other hosts.
    """
    started: list[FixtureSite] = []

    def start(root: str | Path | None = FIXTURE_SITE, host: str = "127.0.0.1") -> FixtureSite:
        fixture_site = FixtureSite(root, host=host).start()
        started.append(fixture_site)
        return fixture_site

    yield start
    for fixture_site in reversed(started):
        fixture_site.stop()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        help=(
            "the fault-injection suite's long mode (tests/reliability): 200 and 100 kill "
            "rounds, and the service waiting out a locked archive"
        ),
    )


@pytest.fixture
def soak(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--soak"))


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pgserver.Server]:
    """The PostgreSQL server of the tests (pgserver.find_server); skipped when there is none,
    except under CI (CI=true), where that is a failure."""
    server, why = pgserver.find_server()
    if server is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests cannot run under CI: {why}")
        pytest.skip(why)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: pgserver.Server) -> Iterator[str]:
    """The name of a database holding the archive's schema, copied by each test's database."""
    url = pgserver.create_database(postgres_server.url)
    try:
        open_archive(url=url).close()
        yield urlsplit(url).path.lstrip("/")
    finally:
        pgserver.drop_database(postgres_server.url, url)


@pytest.fixture
def postgres_url(postgres_server: pgserver.Server, postgres_template: str) -> Iterator[str]:
    """The URL of a database of this test's own, with the archive's schema; dropped after."""
    with pgserver.fresh_database(postgres_server.url, postgres_template) as url:
        yield url


@pytest.fixture
def empty_postgres_url(postgres_server: pgserver.Server) -> Iterator[str]:
    """The URL of an empty database of this test's own; dropped after."""
    with pgserver.fresh_database(postgres_server.url) as url:
        yield url


# ---------------------------------------------------------------------------- both engines


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest) -> str:
    """Each archive test runs on both engines."""
    return str(request.param)


@pytest.fixture
def open_engine(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], Storage]]:
    """Opens (again) this test's archive on its engine: an SQLite file in tmp_path, or a fresh
    PostgreSQL database. Every archive it opened is closed at teardown."""
    if engine == "postgres":
        url = request.getfixturevalue("postgres_url")
        where: dict[str, object] = {"url": url}
    else:
        where = {"path": tmp_path / "nw.db"}
    opened: list[Storage] = []

    def reopen() -> Storage:
        archive = open_archive(**where)  # type: ignore[arg-type]
        opened.append(archive)
        return archive

    yield reopen
    for archive in opened:
        archive.close()
