"""Storage calls from the event loop (docs/architecture.md, "Storage and the event loop").

The interface is synchronous, one short transaction a call. A networked engine (PostgreSQL,
``networked = True``) must not hold the loop that Scrapy, the scheduler and the web view share
for a round trip, so the few places that call storage from the loop await `call`, which runs
the call on a worker thread (the engine's pool gives each thread its connection). An embedded
engine (SQLite: microseconds, one writer connection used from one thread) is called through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def networked(archive: Any) -> bool:
    """Whether the archive's calls go over a network (and so off the loop)."""
    return bool(getattr(archive, "networked", False))


async def call(archive: Any, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`method(*args, **kwargs)` of `archive`: on a worker thread for a networked engine, else
    right here."""
    if networked(archive):
        return await asyncio.to_thread(method, *args, **kwargs)
    return method(*args, **kwargs)
