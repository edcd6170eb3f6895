"""`newswatch run`, the service, as a real long-lived process: it crawls on schedule, delivers,
stops cleanly on SIGTERM and SIGINT, and a restart does not crawl what is not due."""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from pathlib import Path

from nw import db_rows, service, write_config
from servers import FixtureSite, WebhookReceiver, free_port

FEED = "/feeds/defence.xml"
NATO_TITLE = "NATO allies agree to boost air defence on eastern flank"


def config_for(tmp_path: Path, site: FixtureSite, hook: WebhookReceiver, every: str) -> Path:
    return write_config(
        tmp_path,
        f"""[crawl]
delay = "0s"
timeout = "10s"
fetch_articles = false

[service]
listen = "127.0.0.1:{free_port()}"

[[sources]]
name = "defence-daily"
feed = "{site.url}{FEED}"
every = "{every}"

[[rules]]
name = "air-defence"
query = 'NATO AND "air defence"'
notify = ["ops-hook"]

[channels.ops-hook]
type = "webhook"
url = "{hook.url}"
""",
    )


def assert_archive_intact(db: Path, articles: int) -> None:
    assert db_rows(db, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    assert len(db_rows(db, "SELECT id FROM articles")) == articles
    assert db_rows(db, "SELECT count(*) AS n FROM articles_fts_docsize") == [{"n": articles}]


def test_run_alerts_polls_on_schedule_and_stops_on_sigterm(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    config = config_for(tmp_path, site, webhook, every="2s")
    with service(config) as running:
        try:
            [alert] = webhook.wait_for(1, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{running.output()}") from None
        assert alert.json["rule"] == "air-defence"
        assert alert.json["article"]["title"] == NATO_TITLE

        # polled again every ~2 s: over 5 s at least two more polls, and not a busy loop
        first = site.hits(FEED)
        time.sleep(5)
        polls = site.hits(FEED) - first
        assert 2 <= polls <= 4, (polls, running.output())
        assert running.process.poll() is None

        started = time.monotonic()
        assert running.stop(signal.SIGTERM) == 0, running.output()
        assert time.monotonic() - started < 30

    assert "Traceback" not in running.err.read_text()
    assert len(webhook.requests) == 1  # no alert twice
    db = tmp_path / "nw.db"
    assert_archive_intact(db, 4)
    assert db_rows(db, "SELECT status FROM outbox") == [{"status": "sent"}]
    runs = db_rows(db, "SELECT status FROM runs ORDER BY id")
    assert runs[0]["status"] == "ok" and len(runs) >= 3
    assert {r["status"] for r in runs[1:]} <= {"ok", "not_modified"}


def test_sigint_stops_run_and_a_restart_does_not_crawl_what_is_not_due(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    config = config_for(tmp_path, site, webhook, every="1h")
    db = tmp_path / "nw.db"
    with service(config, "first") as first:
        try:
            webhook.wait_for(1, timeout=30)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{first.output()}") from None
        assert first.stop(signal.SIGINT) == 0, first.output()
    assert "Traceback" not in first.err.read_text()
    assert_archive_intact(db, 4)
    assert site.hits(FEED) == 1

    with service(config, "second") as second:
        second.wait_for_output("watching")
        time.sleep(2)  # its first look at what is due, and its deliveries, are done by now
        assert second.process.poll() is None, second.output()
        assert second.stop(signal.SIGTERM) == 0, second.output()

    assert site.hits(FEED) == 1  # fetched once in total
    assert len(webhook.requests) == 1
    assert len(db_rows(db, "SELECT id FROM runs")) == 1
    assert_archive_intact(db, 4)


def test_run_answers_healthz(tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver) -> None:
    config = config_for(tmp_path, site, webhook, every="1h")
    listen = next(
        line.split('"')[1] for line in config.read_text().splitlines() if "listen" in line
    )
    with service(config) as running:
        running.wait_for_output("watching")
        deadline = time.monotonic() + 3
        status = None
        while status is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://{listen}/healthz", timeout=2) as answer:
                    status = answer.status
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        running.stop()
    assert status == 200
