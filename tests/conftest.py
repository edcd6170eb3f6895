"""Shared pytest fixtures: real local servers (see servers.py) and the fixture news site."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from servers import FixtureSite, WebhookReceiver

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
