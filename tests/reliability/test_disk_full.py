"""The disk fills up mid-crawl (a file-size limit on the real process): a clear error, no
corruption, nothing lost, and the next run finishes the work once the cause is gone."""

from __future__ import annotations

import resource
import subprocess
from pathlib import Path

from helpers import count, integrity, serve_articles
from nw import command, newswatch, write_config
from servers import FixtureSite, WebhookReceiver

N = 40


def test_a_full_disk_is_reported_and_the_next_run_loses_nothing(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    serve_articles(site, N)
    config = write_config(
        tmp_path,
        f'[crawl]\ndelay = "0s"\n\n[[sources]]\nname = "wire"\nfeed = "{site.url}/feed.xml"\n\n'
        '[[rules]]\nname = "nato"\nquery = "NATO"\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}"\n',
    )
    assert newswatch(config, "check").returncode == 0
    db = tmp_path / "nw.db"

    def small_disk() -> None:  # in the child: files may not grow past 300 kB
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    full = subprocess.run(
        [*command(), "-c", str(config), "crawl"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=small_disk,
        check=False,
    )

    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    assert "the archive could not be written" in full.stderr
    assert "check the free disk space" in full.stderr
    assert integrity(db) == "ok"
    stored = count(db, "SELECT count(*) FROM articles")
    assert stored < N  # the limit really cut the run short

    # the disk has room again: the listing is read again (its validators were not kept)
    again = newswatch(config, "crawl", "--all")
    assert again.returncode == 0, again.stderr
    assert integrity(db) == "ok"
    assert count(db, "SELECT count(*) FROM articles") == N
    delivered = {r.headers["X-Newswatch-Delivery"] for r in webhook.wait_for(N, timeout=60)}
    assert len(delivered) == N
    assert count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N
