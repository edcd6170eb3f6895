"""What one crawl pass shares: its context (the archive, the sources, the rules, the
extraction workers), one `SourceResult` per source, and the pass's limits.

The spider and the pipeline reach the context through the crawler's settings
(``NEWSWATCH_PASS``); `crawler.passes.crawl_pass` runs the pass and returns the results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.archive import Archive, StorageError
from crawler.clock import utcnow
from crawler.model import CrawlOptions, Rule, Source
from crawler.poll import Answer
from crawler.query import Query
from crawler.workers import stop_fork_server

# At most this many new article pages per source and pass (the rest come next pass).
MAX_NEW_PAGES = 500
# A page that failed is tried again on later passes, this many times in all.
MAX_PAGE_ATTEMPTS = 5

_POOL_STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-pool-start")

log = logging.getLogger(__name__)


@dataclass
class SourceResult:
    """What one pass did for one source."""

    source: str
    started: datetime
    finished: datetime | None = None
    status: str = "ok"  # ok | not_modified | warning | error
    http_status: int | None = None
    fetched: int = 0  # entries in the feed
    new: int = 0  # new articles archived
    seen: int = 0  # entries already known (duplicates, unchanged, seen before)
    off_topic: int = 0  # entries outside [topic], remembered as seen
    errors: int = 0  # entries that could not be processed
    unstored: int = 0  # of which the archive failed to store (disk full, locked, ...)
    error_class: str | None = None
    error: str | None = None
    warning: str | None = None
    pages: int = 0  # article pages fetched
    truncated: bool = False  # more new pages than a pass takes: the rest come next pass
    retry_after: float | None = None  # the server asked us to wait this long (429/503)
    validators: tuple[str | None, str | None, str | None] | None = None  # etag, lm, body hash
    duplicates: dict[str, int] = field(default_factory=dict)  # kind -> count

    def fail(self, error_class: str, message: str) -> None:
        self.status = "error"
        self.error_class = error_class
        self.error = message

    def warn(self, message: str) -> None:
        if self.status == "ok":
            self.status = "warning"
        self.warning = message


@dataclass
class PassContext:
    archive: Archive
    sources: Sequence[Source]
    rules: Sequence[Rule]
    topic: Query | None
    options: CrawlOptions
    clock: Callable[[], datetime] = utcnow
    executor: Executor | None = None  # extraction workers; None: the pass makes its own
    rule_index: Any = None  # a crawler.matcher.RuleIndex of `rules`, kept across passes
    hold: str | None = None  # the archive's pass that holds the alerts queued until it ends
    scrapy_overrides: dict[str, Any] = field(default_factory=dict)  # tests: e.g. DNS_RESOLVER
    prefetched: dict[str, Answer] = field(default_factory=dict)  # listings their poll received
    results: dict[str, SourceResult] = field(default_factory=dict)
    pages_requested: int = 0  # article pages asked for so far in this pass
    make_pool: Callable[[], Executor] | None = None  # set by the pipeline
    # the archive failed to store an item (disk full, locked past the busy timeout, I/O error):
    # the pass stops there, and what was not stored is read again
    archive_error: StorageError | None = None
    _own_pool: Future[Executor] | None = None

    def start_pool(self) -> None:
        """Start the pass's own extraction workers in a thread, without waiting: their start
        (a fork server importing the extraction code) takes a second that the event loop
        spends downloading instead."""
        if self.executor is None and self._own_pool is None and self.make_pool is not None:
            self._own_pool = _POOL_STARTER.submit(self.make_pool)

    async def extraction_pool(self) -> Executor | None:
        """The pass's extraction workers: the caller's executor, or the pass's own, started on
        first use (None if no pipeline set `make_pool`)."""
        if self.executor is not None:
            return self.executor
        self.start_pool()
        if self._own_pool is None:
            return None
        return await asyncio.wrap_future(self._own_pool)

    def close_pool(self) -> None:
        if self._own_pool is not None:
            self._own_pool.result().shutdown(wait=True, cancel_futures=True)
            self._own_pool = None
            stop_fork_server()

    def __deepcopy__(self, memo: dict[int, object]) -> PassContext:
        return self  # Scrapy copies its settings; the pass context is shared, never copied

    def result(self, source: str) -> SourceResult:
        if source not in self.results:
            self.results[source] = SourceResult(source=source, started=self.clock())
        return self.results[source]
