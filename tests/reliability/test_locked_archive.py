"""The archive held by another program's write transaction for longer than the busy timeout
(30 s): `newswatch crawl` waits it out, then stops with a clear error and exit 1; the file is
intact, and the next run, once the lock is gone, does the work."""

from __future__ import annotations

import time
from pathlib import Path

from helpers import count, hold_lock, integrity
from nw import newswatch, write_config
from servers import FixtureSite


def test_an_archive_locked_past_the_busy_timeout(tmp_path: Path, site: FixtureSite) -> None:
    config = write_config(
        tmp_path,
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "daily"\nfeed = "{site.url}/feeds/defence.xml"\n',
    )
    assert newswatch(config, "check").returncode == 0
    assert newswatch(config, "sources").returncode == 0  # the archive exists
    db = tmp_path / "nw.db"
    holder = hold_lock(db, 36)
    try:
        started = time.monotonic()
        locked = newswatch(config, "crawl", timeout=120)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=60)
    assert locked.returncode == 1, locked.stdout + locked.stderr
    assert "Traceback" not in locked.stderr
    assert "the archive could not be written (database is locked)" in locked.stderr
    assert "no other program holds the file locked" in locked.stderr
    assert waited >= 29  # it waited for the lock before giving up
    assert integrity(db) == "ok"

    again = newswatch(config, "crawl")
    assert again.returncode == 0, again.stderr
    assert count(db, "SELECT count(*) FROM articles") == 4
