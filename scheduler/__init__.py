"""The service around the crawler: command line, configuration, scheduling and delivery.

Exceptions raised by this package::

    SchedulerError
     +-- ConfigError       the config file is missing, unreadable or invalid (scheduler.config);
     |                     `.problems` lists every problem as `FILE:LINE: key.path: message`
     +-- UsageError        a command asked for something it cannot do: exit status 2 (here)
     +-- DeliveryError     one send failed and is retried; `.retry_after` is what the receiver
     |                     asked for (scheduler.delivery.notify)
     +-- DemoError         `newswatch demo` could not run to the end (scheduler.cli.demo)

Errors of the crawler package (`crawler.CrawlerError`: a bad query, an archive that cannot be
opened) pass through unchanged. A module that adds an exception derives it from SchedulerError
and adds it to this tree.
"""

__all__ = ["SchedulerError", "UsageError"]


class SchedulerError(Exception):
    """Base of every error this package raises on purpose."""


class UsageError(SchedulerError):
    """A command asked for something it cannot do (a bad argument): exit status 2."""
