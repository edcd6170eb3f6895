"""What one crawl pass shares: its context (the archive, the sources, the rules, the
extraction workers), one `RunRecord` per source (`crawler.records`), and the pass's limits.

The spider and the pipeline reach the context through the crawler's settings
(``NEWSWATCH_PASS``); `crawler.fetch.passes.crawl_pass` runs the pass and returns the results.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.archive import Storage, StorageError
from crawler.clock import utcnow
from crawler.fetch.poll import Answer
from crawler.fetch.workers import stop_fork_server
from crawler.model import CrawlOptions, Rule, Source
from crawler.query import Query
from crawler.query.matcher import RuleIndex
from crawler.records import RunRecord

# At most this many new article pages per source and pass (the rest come next pass).
MAX_NEW_PAGES = 500
# A page that failed is tried again on later passes, this many times in all.
MAX_PAGE_ATTEMPTS = 5

_POOL_STARTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-pool-start")

log = logging.getLogger(__name__)


@dataclass
class PassContext:
    archive: Storage
    sources: Sequence[Source]
    rules: Sequence[Rule]
    topic: Query | None
    options: CrawlOptions
    clock: Callable[[], datetime] = utcnow
    executor: Executor | None = None  # extraction workers; None: the pass makes its own
    rule_index: RuleIndex | None = None  # the index of `rules`, kept across passes
    hold: str | None = None  # the archive's pass that holds the alerts queued until it ends
    scrapy_overrides: dict[str, Any] = field(default_factory=dict)  # tests: e.g. DNS_RESOLVER
    prefetched: dict[str, Answer] = field(default_factory=dict)  # listings their poll received
    results: dict[str, RunRecord] = field(default_factory=dict)
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

    def result(self, source: str) -> RunRecord:
        if source not in self.results:
            self.results[source] = RunRecord(source=source, started=self.clock())
        return self.results[source]
