"""The extraction workers: a process pool forked from a fork server that loaded the extraction
code once.

Page extraction is CPU work, so a pass of many new pages runs it in one worker process per
core. The workers are forked from a fork server (``multiprocessing``'s ``forkserver``) that
imported and warmed up the extraction code (``crawler.fetch.preload``: trafilatura, htmldate, the
language model) once, so they start ready instead of paying a second of imports each, and their
parent is a clean single-threaded process, never the reactor's (forking a process that runs
threads is unsafe). The fork server can be started early (``start_fork_server``): it loads in
the background, on the core the crawl's own start-up leaves idle. It is stopped with the pool
at the end of the pass, so a service between passes does not keep it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import os
import select
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor

from crawler.model import Source
from crawler.parse.extract import extract_page
from crawler.records import Run

# A pass asking for at most this many pages extracts them in its own process: starting the
# workers costs more than a few extractions (~20-50 ms each). Past it, the pool does.
INLINE_PAGES = 4

_PRELOAD = ["crawler.fetch.preload"]


def likely_needs_pool(
    sources: Iterable[Source], last_runs: Mapping[str, Run], fetch_articles: bool
) -> bool:
    """Whether a pass over ``sources`` will probably extract more than ``INLINE_PAGES`` pages:
    a source that fetches pages and was never crawled (its backlog comes first), or sources
    whose last runs brought more than that many new articles together."""
    new = 0
    for source in sources:
        if source.kind == "feed" and not fetch_articles:
            continue
        run = last_runs.get(source.name)
        if run is None:
            return True
        new += run.new
    return new > INLINE_PAGES


def _context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def start_fork_server() -> None:
    """Start the fork server now, without waiting for it to load (a no-op if it runs)."""
    _context()
    multiprocessing.forkserver.ensure_running()


def stop_fork_server() -> None:
    """Stop the fork server (it holds ~160 MB): after a pass, so an idle service is small.

    The standard library has no public call for this; ``_stop`` has been there since Python
    3.4 (its own tests use it). Without it the server just stays until the process ends."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if callable(stop):
        stop()


def extraction_pool() -> ProcessPoolExecutor:
    """One extraction worker per core, all started at once. Creating it waits for the fork
    server to have loaded: call it off the event loop."""
    workers = os.cpu_count() or 2
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=watch_parent,
        initargs=(os.getpid(),),
    )
    for _ in range(workers):
        pool.submit(warm_up)
    return pool


def watch_parent(pid: int) -> None:
    """In a worker: exit as soon as process ``pid`` (the one that made the pool) is gone.

    A killed crawl never shuts its pool down, and the workers, waiting on a queue whose other
    end they hold themselves, would wait forever (and keep the fork server alive): measured,
    every SIGKILLed pass left three processes behind."""

    def watch() -> None:
        try:
            handle = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd (old kernel) or already gone
            while _alive(pid):
                time.sleep(1.0)
        else:
            select.select([handle], [], [])
        os._exit(0)

    threading.Thread(target=watch, name="newswatch-watch-parent", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        pass
    return True


def warm_up() -> None:
    """Load what extraction loads on first use (imports, the language model)."""
    extract_page(b"<html><body><p>warm up</p></body></html>", "http://127.0.0.1/")
