"""robots.txt, fixed for requests that wait on one fetch (`SharedRobotsTxtMiddleware`)."""

from __future__ import annotations

from typing import Any

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


def _fork(deferred: Deferred[Any]) -> Deferred[Any]:
    """A new Deferred firing with `deferred`'s result, leaving that result in place for others."""
    child: Deferred[Any] = Deferred()

    def pass_on(result: Any) -> Any:
        child.callback(result)
        return result

    deferred.addBoth(pass_on)
    return child


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    """Scrapy's RobotsTxtMiddleware, fixed for requests that wait on one robots.txt fetch.

    Measured on Scrapy 2.19: while a host's robots.txt is being fetched, every further request
    to that host awaits the same Deferred, but only the first waiter receives the parser (the
    conversion to a Future swallows the result), so the second and later requests were sent
    even where robots.txt forbids them. And when the robots.txt fetch failed, the waiters were
    never woken. Here each waiter gets its own fork of the result, and a failed fetch wakes
    them with "no robots.txt" (allowed), as Scrapy does for the first request.
    """

    async def robot_parser(self, request: Request) -> Any:
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if isinstance(pending, Deferred):
            return await maybe_deferred_to_future(_fork(pending))
        return await super().robot_parser(request)

    def _robots_error(self, exc: Exception, netloc: str) -> None:
        pending = self._parsers.get(netloc)
        super()._robots_error(exc, netloc)
        if isinstance(pending, Deferred) and not pending.called:
            pending.callback(None)
