"""Failing channels against the real `newswatch crawl`: an SMTP server refusing connections
(down), answering 4xx and then 2xx, closing the connection mid-session; a webhook receiver
answering slowly, timing out, answering 500 and 429 with Retry-After before it accepts. Every
alert arrives in the end, once (a send that timed out in flight may arrive twice: its delivery
id says so), and the retries wait as told."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from nw import db_exec, db_rows, newswatch, write_config
from servers import FixtureSite, WebhookReceiver, free_port

N = 3


def feed(n: int) -> str:
    items = "".join(
        f"<item><title>NATO item {i}</title><link>{{{{SITE}}}}/n/{i}.html</link>"
        f"<description>NATO allies discussed plan {i * 7} and budget line {i * 13} "
        f"for exercise {i}.</description></item>"
        for i in range(n)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{items}</channel></rss>'
    )


@dataclass
class FlakySMTP:
    """Answers DATA with ``replies`` in turn ("close": drop the connection instead), then 250."""

    replies: list[str]
    received: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            reply = self.replies.pop(0)
            if reply == "close":
                assert server.transport is not None
                server.transport.close()
                return "421 closing"
            return reply
        assert isinstance(envelope.content, bytes)
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


def config_for(tmp_path: Path, site: FixtureSite, channel: str) -> Path:
    return write_config(
        tmp_path,
        f'[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "wire"\nfeed = "{site.url}/wire.xml"\n\n'
        '[[rules]]\nname = "nato"\nquery = "NATO"\nnotify = ["out"]\n\n'
        f"[channels.out]\n{channel}",
    )


def email_channel(port: int) -> str:
    """The body of an email channel table for a local SMTP server on ``port``."""
    return (
        f'type = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        'from = "newswatch@example.org"\nto = ["desk@example.org"]\ntimeout = "5s"\n'
    )


def retry_now(db: Path) -> None:
    """Bring every pending retry forward (instead of waiting out the backoff)."""
    db_exec(db, "UPDATE outbox SET next_attempt = '2000-01-01T00:00:00Z' WHERE status = 'pending'")


def statuses(db: Path) -> list[str]:
    return sorted(r["status"] for r in db_rows(db, "SELECT status FROM outbox"))


@pytest.mark.parametrize(
    "replies",
    [
        ["451 4.3.0 Mailbox busy, try again later"] * N,
        ["close"] * N,
        ["451 4.3.0 Try later", "close", "452 4.3.1 Insufficient storage"],
    ],
    ids=["4xx-then-2xx", "closed-mid-session", "mixed"],
)
def test_smtp_failing_then_accepting_delivers_each_alert_once(
    tmp_path: Path, site: FixtureSite, replies: list[str]
) -> None:
    site.set("/wire.xml", feed(N), content_type="application/xml")
    handler = FlakySMTP(list(replies))
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = config_for(
            tmp_path,
            site,
            email_channel(port),
        )
        db = tmp_path / "nw.db"
        first = newswatch(config, "crawl")
        assert first.returncode == 0, first.stderr
        assert handler.received == [] and statuses(db) == ["pending"] * N
        errors = [r["last_error"] for r in db_rows(db, "SELECT last_error FROM outbox")]
        assert all(errors), errors
        for _ in range(3):
            if statuses(db) == ["sent"] * N:
                break
            retry_now(db)
            assert newswatch(config, "crawl").returncode == 0
        assert statuses(db) == ["sent"] * N
        ids = [m["Message-ID"] for m in handler.received]
        assert len(ids) == len(set(ids)) == N  # each once
    finally:
        controller.stop()


def test_webhook_timeout_500_and_429_then_accepting(tmp_path: Path, site: FixtureSite) -> None:
    site.set("/wire.xml", feed(1), content_type="application/xml")
    responses = [
        (200, {}, b"too late", 3.0),  # slower than the channel's 1 s timeout: in flight
        (500, {}, b"oops"),
        (429, {"Retry-After": "120"}, b"slow down"),
        (200, {}, b"ok"),
    ]
    with WebhookReceiver(responses=responses) as hook:
        config = config_for(
            tmp_path, site, f'type = "webhook"\nurl = "{hook.url}"\ntimeout = "1s"\n'
        )
        db = tmp_path / "nw.db"
        assert newswatch(config, "crawl").returncode == 0  # timeout
        for _ in range(2):  # 500, then 429
            retry_now(db)
            asked = datetime.now(UTC)
            assert newswatch(config, "crawl").returncode == 0
        [row] = db_rows(db, "SELECT status, next_attempt, last_error FROM outbox")
        assert row["status"] == "pending" and "429" in row["last_error"], row
        wait = datetime.fromisoformat(row["next_attempt"].replace("Z", "+00:00")) - asked
        assert wait.total_seconds() >= 119, row  # Retry-After honoured
        retry_now(db)
        assert newswatch(config, "crawl").returncode == 0
        time.sleep(0.2)
        [row] = db_rows(db, "SELECT status, attempts FROM outbox")
        assert (row["status"], row["attempts"]) == ("sent", 4)
        ids = [r.headers["X-Newswatch-Delivery"] for r in hook.requests]
        assert len(ids) == 4 and len(set(ids)) == 1  # one delivery id, four attempts


def test_smtp_refusing_connections_then_up_delivers_each_alert_once(
    tmp_path: Path, site: FixtureSite
) -> None:
    """The mail server is down (nothing listens on its port): the alerts wait with the reason,
    the crawl is not held up, and they go out once the server is back."""
    site.set("/wire.xml", feed(N), content_type="application/xml")
    port = free_port()
    config = config_for(
        tmp_path,
        site,
        email_channel(port),
    )
    db = tmp_path / "nw.db"
    started = time.monotonic()
    first = newswatch(config, "crawl")
    assert first.returncode == 0, first.stderr
    assert time.monotonic() - started < 30
    assert statuses(db) == ["pending"] * N
    errors = {r["last_error"] for r in db_rows(db, "SELECT last_error FROM outbox")}
    assert all("connection refused" in (e or "") for e in errors), errors
    alerts = newswatch(config, "alerts")
    assert "connection refused" in alerts.stdout, alerts.stdout

    handler = FlakySMTP([])
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        retry_now(db)
        assert newswatch(config, "crawl").returncode == 0
        assert statuses(db) == ["sent"] * N
        ids = [m["Message-ID"] for m in handler.received]
        assert len(ids) == len(set(ids)) == N
    finally:
        controller.stop()


def test_a_slow_webhook_within_its_timeout_gets_each_alert_once(
    tmp_path: Path, site: FixtureSite
) -> None:
    """Each answer takes 1.5 s of a 5 s timeout: slow is not failed, nothing is sent twice."""
    site.set("/wire.xml", feed(N), content_type="application/xml")
    with WebhookReceiver(responses=[(200, {}, b"ok", 1.5)]) as hook:
        config = config_for(
            tmp_path, site, f'type = "webhook"\nurl = "{hook.url}"\ntimeout = "5s"\n'
        )
        db = tmp_path / "nw.db"
        assert newswatch(config, "crawl").returncode == 0
        rows = db_rows(db, "SELECT status, attempts FROM outbox")
        assert [(r["status"], r["attempts"]) for r in rows] == [("sent", 1)] * N, rows
        ids = [r.headers["X-Newswatch-Delivery"] for r in hook.requests]
        assert len(ids) == len(set(ids)) == N
