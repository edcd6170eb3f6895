"""The running service (`newswatch run`) meets a full disk and an archive locked past the busy
timeout: it says so in one clear line (no traceback), reports itself unhealthy, does not fetch
its sources once a second meanwhile, and finishes the work by itself once the cause is gone,
without a restart. The disk is filled with a file-size limit on the real process, lifted from
outside (prlimit) while it runs."""

from __future__ import annotations

import resource
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import count, hold_lock, integrity, serve_articles
from nw import Service, write_config
from servers import FixtureSite, WebhookReceiver, free_port

N = 40
TROUBLE = "the archive could not be written"


def config_text(site: FixtureSite, hook: WebhookReceiver, listen: str, every: str) -> str:
    return (
        f'[crawl]\ndelay = "0s"\n\n[service]\nlisten = "{listen}"\n\n'
        f'[[sources]]\nname = "wire"\nfeed = "{site.url}/feed.xml"\nevery = "{every}"\n\n'
        '[[rules]]\nname = "nato"\nquery = "NATO"\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{hook.url}"\n'
    )


def healthz(listen: str) -> int:
    try:
        with urllib.request.urlopen(f"http://{listen}/healthz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def wait_until(check: Callable[[], bool], timeout: float, running: Service, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert running.process.poll() is None, f"run exited\n{running.output()}"
        assert time.monotonic() < deadline, f"{what} not within {timeout} s\n{running.output()}"
        time.sleep(0.2)


def test_the_service_waits_out_a_full_disk_and_finishes_the_work(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    serve_articles(site, N)
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, config_text(site, webhook, listen, every="1h"))
    db = tmp_path / "nw.db"

    def small_disk() -> None:  # files may not grow past 300 kB (the soft limit: liftable)
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, resource.RLIM_INFINITY))

    running = Service(config, preexec_fn=small_disk)
    try:
        wait_until(lambda: TROUBLE in running.err.read_text(), 60, running, "the disk error")
        assert healthz(listen) == 503
        time.sleep(10)  # within the pause: the source is not fetched again and again
        assert site.hits("/feed.xml") == 1, site.hits("/feed.xml")
        assert integrity(db) == "ok"
        stored = count(db, "SELECT count(*) FROM articles")
        assert stored < N

        # room on the disk again: no restart, the service resumes after its pause
        unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        resource.prlimit(running.process.pid, resource.RLIMIT_FSIZE, unlimited)
        wait_until(
            lambda: count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N,
            90,
            running,
            "every alert sent",
        )
        assert healthz(listen) == 200
        assert running.stop(signal.SIGTERM) == 0, running.output()
    finally:
        running.kill()
    errors = running.err.read_text()
    assert "Traceback" not in errors
    assert "check the free disk space" in errors and "tries again in 30 s" in errors
    assert integrity(db) == "ok"
    assert count(db, "SELECT count(*) FROM articles") == N
    ids = [r.headers["X-Newswatch-Delivery"] for r in webhook.requests]
    assert len(ids) == len(set(ids)) == N


def test_the_service_waits_out_a_locked_archive_and_finishes_the_work(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver, soak: bool
) -> None:
    """Another program holds the archive for 45 s while new items arrive: the pass's first
    write (within about 5 s of the lock: the source is due every 3 s) waits out the 30 s busy
    timeout while the lock is still held, so the pass stops at that item, and a later pass
    stores them all.
    Long mode only (`--soak`): it waits out the lock and the pause (about 80 s); the
    same pause is tested by the full disk above and the busy timeout by test_locked_archive."""
    if not soak:
        pytest.skip("long mode only: pytest tests/reliability --soak")
    serve_articles(site, 4)
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(tmp_path, config_text(site, webhook, listen, every="3s"))
    db = tmp_path / "nw.db"
    running = Service(config)
    try:
        wait_until(lambda: len(webhook.requests) == 4, 60, running, "the first alerts")
        holder = hold_lock(db, 45)
        try:
            serve_articles(site, N)  # 36 more items, each with its page
            wait_until(lambda: TROUBLE in running.err.read_text(), 90, running, "the lock error")
        finally:
            holder.wait(timeout=60)
        wait_until(
            lambda: count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N,
            120,
            running,
            "every alert sent",
        )
        assert running.stop(signal.SIGTERM) == 0, running.output()
    finally:
        running.kill()
    errors = running.err.read_text()
    assert "Traceback" not in errors
    assert "database is locked" in errors
    assert integrity(db) == "ok"
    assert count(db, "SELECT count(*) FROM articles") == N
    ids = [r.headers["X-Newswatch-Delivery"] for r in webhook.requests]
    assert len(ids) == len(set(ids)) == N
