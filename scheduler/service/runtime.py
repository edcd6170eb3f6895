"""Running coroutines on Twisted's asyncio reactor (the loop Scrapy crawls on).

Scrapy's AsyncCrawlerRunner needs the AsyncioSelectorReactor; our own code is plain asyncio on
the same loop. Signal handling is ours (the reactor's handlers would stop mid-crawl).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def run_on_reactor(main: Callable[[], Awaitable[T]]) -> T:
    """Install the asyncio reactor, run `main()` on it to completion, return its result."""
    from scrapy.utils.defer import deferred_from_coro
    from scrapy.utils.reactor import install_reactor

    install_reactor(REACTOR)
    from twisted.internet import reactor as installed

    reactor: Any = installed

    outcome: dict[str, Any] = {}

    def start() -> None:
        deferred = deferred_from_coro(main())

        def done(value: Any) -> None:
            outcome["value"] = value
            reactor.stop()

        def failed(failure: Any) -> None:
            outcome["failure"] = failure
            reactor.stop()

        deferred.addCallbacks(done, failed)

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if "failure" in outcome:
        outcome["failure"].raiseException()
    if "value" not in outcome:
        raise RuntimeError("the event loop stopped before the work finished")
    return outcome["value"]
