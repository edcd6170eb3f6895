"""Alerts held until their pass ends (scheduler.service.holds, crawler.decide.alerting.collapse):
one alert per
story in any arrival order, and nothing lost when the pass's process dies."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nw import command, db_rows, json_out, newswatch, write_config
from servers import FixtureSite, WebhookReceiver
from test_cli_stories import WIRE, feed, item, trimmed

from crawler.archive import AlertIn, ArticleIn, Storage
from crawler.decide.alerting import QueuedAlert, collapse
from scheduler.service.holds import orphaned, process_alive

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def test_collapse_keeps_the_first_alert_of_a_story_per_rule_and_channel() -> None:
    held = [
        QueuedAlert(5, "air", "hook", 1),
        QueuedAlert(3, "air", "hook", 1),  # queued first: it stands
        QueuedAlert(4, "air", "mail", 1),  # another channel: its own alert
        QueuedAlert(6, "navy", "hook", 1),  # another rule: its own alert
        QueuedAlert(7, "air", "hook", 2),  # another story
        QueuedAlert(8, "air", "hook", None),  # its article is gone: stands alone
        QueuedAlert(9, "air", "hook", None),
    ]
    assert collapse(held, []) == {5: 3}


def test_collapse_merges_into_an_alert_of_an_earlier_pass() -> None:
    held = [QueuedAlert(10, "air", "hook", 1), QueuedAlert(11, "air", "hook", 2)]
    earlier = [QueuedAlert(4, "air", "hook", 1), QueuedAlert(2, "air", "hook", 1)]
    assert collapse(held, earlier) == {10: 2}


def test_a_pass_is_orphaned_when_its_lease_expired_or_its_local_process_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process_alive(child.pid)
        later = NOW + timedelta(seconds=60)
        assert not orphaned(f"box:{child.pid}", later, NOW, "box", process_alive)
        assert orphaned(f"box:{child.pid}", NOW, NOW, "box", process_alive)  # lease over
    finally:
        child.kill()
    deadline = time.monotonic() + 10
    while process_alive(child.pid):  # killed, not yet reaped: a zombie is not alive
        assert time.monotonic() < deadline, "a killed child still counts as alive"
        time.sleep(0.05)
    assert orphaned(f"box:{child.pid}", later, NOW, "box", process_alive)
    child.wait()
    assert not process_alive(child.pid)
    assert orphaned(f"box:{child.pid}", later, NOW, "box", process_alive)
    # another host's process is judged by its lease alone
    assert not orphaned(f"other:{child.pid}", later, NOW, "box", process_alive)


def _article(n: int) -> ArticleIn:
    return ArticleIn(
        url=f"https://example.org/{n}",
        source="s",
        guid=None,
        title=f"t{n}",
        author=None,
        published=None,
        language="en",
        summary=None,
        text=None,
        fingerprint=f"f{n}",
    )


def test_held_alerts_are_not_due_until_their_pass_ends(
    open_engine: Callable[[], Storage],
) -> None:
    alert = AlertIn("air", "hook", ("nato",))
    with closing(open_engine()) as archive:
        held = archive.begin_pass("box:1", NOW, timedelta(seconds=60))
        archive.store_article(_article(1), NOW, lambda *_: [alert], hold=held)
        archive.store_article(_article(2), NOW, lambda *_: [alert])  # no pass: due at once
        assert [r.article_id for r in archive.due_deliveries(NOW)] == [2]
        assert [p.id for p in archive.passes()] == [held]
        assert archive.end_pass(held) == (1, 0)
        assert sorted(r.article_id for r in archive.due_deliveries(NOW)) == [1, 2]
        assert archive.passes() == []


def _held_alerts(db: Path) -> list[dict[str, object]]:
    """The alerts held by a pass, or none while the crawl has not yet made the archive's
    tables (the file exists from the moment the crawl opens it)."""
    try:
        return db_rows(db, "SELECT id FROM outbox WHERE pass_id NOT NULL") if db.exists() else []
    except sqlite3.OperationalError:
        return []


def test_a_crawl_killed_mid_pass_loses_no_held_alert(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/a.xml", feed(item("t", "Trimmed", trimmed(WIRE, 0.6), site.url)))
    site.set("/b.xml", feed(item("o", "Original", WIRE, site.url)), delay=60)
    body = (
        '[crawl]\ndelay = "0s"\nfetch_articles = false\ntimeout = "90s"\n\n'
        f'[[sources]]\nname = "a"\nfeed = "{site.url}/a.xml"\n\n'
        f'[[sources]]\nname = "b"\nfeed = "{site.url}/b.xml"\n\n'
        '[[rules]]\nname = "air"\nquery = \'Patriot\'\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}"\n'
    )
    config = write_config(tmp_path, body)
    db = tmp_path / "nw.db"
    crawl = subprocess.Popen(
        [*command(), "-c", str(config), "crawl"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not _held_alerts(db):
            assert time.monotonic() < deadline, "the first copy's alert was never queued"
            time.sleep(0.1)
    finally:
        crawl.kill()
        crawl.wait()
    assert webhook.requests == []  # held: the pass never ended
    assert len(db_rows(db, "SELECT id FROM passes")) == 1

    site.set("/b.xml", feed(item("o", "Original", WIRE, site.url)))
    assert newswatch(config, "crawl").returncode == 0
    [alert] = webhook.wait_for(1)
    time.sleep(0.3)
    assert len(webhook.requests) == 1
    assert alert.json["article"]["title"] == "Trimmed"
    assert db_rows(db, "SELECT id FROM passes") == []
    assert [r["status"] for r in json_out(newswatch(config, "alerts", "--json"))] == ["sent"]
