"""Delivery: backoff and schedules (scheduler/service/schedule.py),
snippets (scheduler/delivery/render.py), the
webhook channel against a real receiver, and `deliver_due` with a real archive."""

from __future__ import annotations

import dataclasses
import itertools
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from servers import FixtureSite, WebhookReceiver, free_port, verify_signature

from crawler.archive import AlertIn, Archive, ArticleIn, Delivery, Storage
from crawler.clock import iso, parse_iso
from crawler.model import Channel, Source
from scheduler.delivery.notify import DeliveryError, Message
from scheduler.delivery.notify.webhook import send
from scheduler.delivery.outbox import deliver_due
from scheduler.delivery.render import snippet, term_spans
from scheduler.service.schedule import RETRY_DELAYS, crontab_weekdays, is_due, next_due, retry_at

NOW = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)

# ------------------------------------------------------------------------------ retry_at

RETRY_TABLE = [
    # attempts, now, retry_after, expected delay in seconds (None: give up)
    (0, NOW, None, 5),
    (1, NOW, None, 5),
    (2, NOW, None, 300),
    (3, NOW, None, 1800),
    (4, NOW, None, 7200),
    (5, NOW, None, 18000),
    (6, NOW, None, 36000),
    (7, NOW, None, 36000),
    (50, NOW, None, 36000),
    (1, NOW, 60.0, 60),  # Retry-After wins when longer
    (1, NOW, 1.0, 5),  # ... and never makes us come back sooner
    (2, NOW, 0.0, 300),
    (3, NOW, 7200.0, 7200),
    (2, EXPIRES - timedelta(seconds=100), None, 100),  # capped at the end of the window
    (1, EXPIRES - timedelta(seconds=3), None, 3),
    (1, NOW, 10 * 86400.0, 86400),  # a long Retry-After: the last try when the window closes
    (1, NOW, 1e20, 86400),  # an absurd one must not overflow
    (1, EXPIRES, None, None),  # the window has closed: failed
    (4, EXPIRES + timedelta(seconds=1), 5.0, None),
]


@pytest.mark.parametrize(("attempts", "now", "retry_after", "delay"), RETRY_TABLE)
def test_retry_at(
    attempts: int, now: datetime, retry_after: float | None, delay: int | None
) -> None:
    expected = None if delay is None else now + timedelta(seconds=delay)
    assert retry_at(attempts, now, EXPIRES, retry_after) == expected


def test_retry_schedule_fits_the_window() -> None:
    """Following the schedule from the first failure, the last try is at the window's end."""
    now, attempts, tries = NOW, 1, [NOW]
    while (when := retry_at(attempts, now, EXPIRES)) is not None:
        assert when > now
        tries.append(when)
        now, attempts = when, attempts + 1
    assert tries[-1] == EXPIRES
    gaps = [int((b - a).total_seconds()) for a, b in itertools.pairwise(tries)]
    assert gaps[:4] == list(RETRY_DELAYS[:4])


# ------------------------------------------------------------------------------ next_due


def source(every: float | None = None, cron: str | None = None) -> Source:
    return Source(name="s", kind="feed", url="https://e.org/rss", every=every, cron=cron)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


NEXT_DUE = [
    # every, cron, after, expected
    (120.0, None, "2025-06-09T10:00:00", "2025-06-09T10:02:00"),
    (None, None, "2025-06-09T10:00:00", "2025-06-09T10:15:00"),  # the [crawl] default
    (2.0, None, "2025-06-09T10:00:00.500000", "2025-06-09T10:00:02.500000"),
    (None, "*/10 * * * *", "2025-06-09T10:03:20", "2025-06-09T10:10:00"),
    (None, "*/10 * * * *", "2025-06-09T10:10:00.250000", "2025-06-09T10:20:00"),
    (None, "*/10 * * * *", "2025-06-09T10:10:00", "2025-06-09T10:20:00"),  # strictly after
    (None, "*/10 * * * *", "2025-06-09T23:55:00", "2025-06-10T00:00:00"),
    (None, "*/10 6-22 * * *", "2025-06-09T22:55:00", "2025-06-10T06:00:00"),
    (None, "30 7 * * *", "2025-06-09T07:30:00", "2025-06-10T07:30:00"),
    (None, "0 9 1 * *", "2025-06-09T10:00:00", "2025-07-01T09:00:00"),
    # weekdays count as in crontab: 0 and 7 are Sunday, 1 is Monday (2025-06-09 is a Monday)
    (None, "0 6 * * 1", "2025-06-08T12:00:00", "2025-06-09T06:00:00"),
    (None, "0 6 * * 1-5", "2025-06-13T07:00:00", "2025-06-16T06:00:00"),
    (None, "0 6 * * 0", "2025-06-09T12:00:00", "2025-06-15T06:00:00"),
    (None, "0 6 * * 7", "2025-06-09T12:00:00", "2025-06-15T06:00:00"),
    (None, "0 6 * * 6,0", "2025-06-09T12:00:00", "2025-06-14T06:00:00"),
    (None, "0 6 * * mon-fri", "2025-06-13T07:00:00", "2025-06-16T06:00:00"),
    (None, "0 6 * * */2", "2025-06-09T12:00:00", "2025-06-10T06:00:00"),  # Sun, Tue, Thu, Sat
    (600.0, "*/30 * * * *", "2025-06-09T10:00:00", "2025-06-09T10:30:00"),  # cron wins
]


@pytest.mark.parametrize(("every", "cron", "after", "expected"), NEXT_DUE)
def test_next_due(every: float | None, cron: str | None, after: str, expected: str) -> None:
    due = next_due(source(every, cron), 900.0, at(after))
    assert due == at(expected)
    assert due.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("1,3,5", "mon,wed,fri"),
        ("MON-fri", "mon,tue,wed,thu,fri"),
        ("sat-sun", "sun,sat"),
    ],
)
def test_crontab_weekdays(field: str, days: str) -> None:
    assert crontab_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "5-1", "funday", "*/0", ""])
def test_crontab_weekdays_rejects_nonsense(field: str) -> None:
    with pytest.raises(ValueError):
        crontab_weekdays(field)


def test_is_due() -> None:
    assert is_due(None, NOW)
    assert is_due(parse_iso("2025-06-09T09:59:59Z"), NOW)
    assert is_due(parse_iso("2025-06-09T10:00:00Z"), NOW)
    assert not is_due(parse_iso("2025-06-09T10:00:01Z"), NOW)


# ------------------------------------------------------------------------------ snippets


def spans_text(text: str, terms: list[str]) -> list[str]:
    return [text[start:end] for start, end in term_spans(text, terms)]


SPANS = [
    ("NATO's Air-Defence plan", ["nato", "air defence"], ["NATO", "Air-Defence"]),
    ("nato, Nato and NATO", ["nato"], ["nato", "Nato", "NATO"]),
    ("natoo senato NATO", ["nato"], ["NATO"]),
    ("La défense aérienne de l'OTAN", ["defense aerienne", "otan"], ["défense aérienne", "OTAN"]),
    ("Türkiye and TÜRKIYE", ["turkiye"], ["Türkiye", "TÜRKIYE"]),
    ("Defensive defence, defenders", ["defen*"], ["Defensive", "defence", "defenders"]),
    ("A title about NATO", ["title:nato"], ["NATO"]),
    ("Air  defence in the title", ['title:"air defence"'], ["Air  defence"]),
    ("Patriot and IRIS-T systems", ["iris t", "patriot"], ["Patriot", "IRIS-T"]),
    ("no match at all", ["nato"], []),
]


@pytest.mark.parametrize(("text", "terms", "found"), SPANS)
def test_term_spans(text: str, terms: list[str], found: list[str]) -> None:
    assert spans_text(text, terms) == found


def test_term_spans_do_not_overlap() -> None:
    text = "air defence systems for the defence of the air"
    spans = term_spans(text, ["air*", "defence", "air defence"])
    assert [text[a:b] for a, b in spans] == ["air defence", "defence", "air"]
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start


WORDS = " ".join(f"word{i}" for i in range(120))


def test_snippet_of_a_short_text_is_the_text() -> None:
    assert snippet("  NATO   agreed\n on air defence ", ["nato"]) == "NATO agreed on air defence"
    assert snippet(None, ["nato"]) == ""
    assert snippet("", ["nato"]) == ""


def test_snippet_is_a_window_around_the_first_match() -> None:
    text = f"{WORDS} NATO agreed on more air defence today. {WORDS}"
    got = snippet(text, ["air defence", "nato"])
    assert got.startswith("… ") and got.endswith(" …")
    core = got[2:-2]
    assert core in text
    assert "NATO agreed on more air defence" in core
    assert 200 <= len(core) <= 280
    assert core.index("NATO") < len(core) // 2  # about a third of the window before it
    assert not core.startswith("ord") and not core.endswith("wor")  # whole words


def test_snippet_at_the_start_and_at_the_end() -> None:
    start = snippet(f"NATO summit opens. {WORDS}", ["nato"])
    assert start.startswith("NATO summit") and start.endswith(" …")
    end = snippet(f"{WORDS} and then NATO", ["nato"])
    assert end.startswith("… ") and end.endswith("and then NATO")
    assert len(end) >= 200  # the whole window is used, not only a third of it


def test_snippet_without_a_match_starts_at_the_beginning() -> None:
    got = snippet(WORDS, ["nato"])
    assert got.startswith("word0 word1") and got.endswith(" …")
    assert len(got) <= 282


def test_snippet_finds_accented_and_case_variants() -> None:
    text = f"{WORDS} l'OTAN renforce la DÉFENSE aérienne {WORDS}"
    got = snippet(text, ["defense aerienne"])
    assert "DÉFENSE aérienne" in got and got.startswith("… ")


# ------------------------------------------------------------------------------ webhook

SECRET = "s3cret"
BODY = json.dumps({"event": "alert", "delivery": "d-1", "rule": "r"}).encode()


def hook(url: str, secret: str | None = SECRET, timeout: float = 5.0) -> Channel:
    options: dict[str, object] = {"url": url, "timeout": timeout}
    if secret is not None:
        options["secret"] = secret
    return Channel(name="ops-hook", type="webhook", options=options)


def message(delivery: str = "d-1", event: str = "alert") -> Message:
    return Message(event=event, delivery=delivery, payload=json.loads(BODY), body=BODY)


def test_webhook_post_headers_and_signature(webhook: WebhookReceiver) -> None:
    send(hook(webhook.url), message())
    [request] = webhook.wait_for(1)
    assert request.method == "POST" and request.path == "/hook"
    assert request.body == BODY
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Newswatch-Event"] == "alert"
    assert request.headers["X-Newswatch-Delivery"] == "d-1"
    assert verify_signature(SECRET, request.body, request.headers["X-Newswatch-Signature-256"])
    assert not verify_signature("wrong", request.body, request.headers["X-Newswatch-Signature-256"])


@pytest.mark.parametrize("secret", [None, ""])
def test_webhook_without_secret_is_not_signed(webhook: WebhookReceiver, secret: str | None) -> None:
    send(hook(webhook.url, secret=secret), message(event="source-health"))
    [request] = webhook.wait_for(1)
    assert "X-Newswatch-Signature-256" not in request.headers
    assert request.headers["X-Newswatch-Event"] == "source-health"


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_webhook_2xx_is_delivered(status: int) -> None:
    with WebhookReceiver(responses=[status]) as receiver:
        send(hook(receiver.url), message())
        assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [400, 404, 410, 500, 502])
def test_webhook_error_status_fails(status: int) -> None:
    with WebhookReceiver(responses=[(status, {}, b"nope")]) as receiver:
        with pytest.raises(DeliveryError, match=f"HTTP {status}") as raised:
            send(hook(receiver.url), message())
        assert raised.value.retry_after is None


@pytest.mark.parametrize("status", [429, 503])
def test_webhook_retry_after_seconds(status: int) -> None:
    busy = (status, {"Retry-After": "120"}, b"busy")
    with WebhookReceiver(responses=[busy]) as receiver, pytest.raises(DeliveryError) as raised:
        send(hook(receiver.url), message())
    assert raised.value.retry_after == 120.0


def test_webhook_retry_after_http_date() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    busy = (503, {"Retry-After": when}, b"busy")
    with WebhookReceiver(responses=[busy]) as receiver, pytest.raises(DeliveryError) as raised:
        send(hook(receiver.url), message())
    assert raised.value.retry_after is not None
    assert 80 <= raised.value.retry_after <= 91


def test_webhook_redirect_is_a_failure_and_not_followed(webhook: WebhookReceiver) -> None:
    moved = (301, {"Location": webhook.url}, b"moved")
    with WebhookReceiver(responses=[moved]) as old:
        with pytest.raises(DeliveryError, match="301"):
            send(hook(old.url), message())
        assert len(old.requests) == 1
    time.sleep(0.2)
    assert webhook.requests == []


def test_webhook_connection_refused() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    with pytest.raises(DeliveryError, match="could not reach"):
        send(hook(url), message())


def test_webhook_slower_than_the_timeout_fails() -> None:
    with WebhookReceiver(responses=[(200, {}, b"ok", 3.0)]) as slow:
        started = time.monotonic()
        with pytest.raises(DeliveryError):
            send(hook(slow.url, timeout=0.5), message())
        assert time.monotonic() - started < 2.5
        assert len(slow.requests) == 1


# ------------------------------------------------------------------------------ deliver_due


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


STOCKED = ArticleIn(
    url="https://e.org/nato",
    source="wire",
    guid="g1",
    title="NATO boosts air defence",
    author="A. Writer",
    published="2025-06-09T09:00:00Z",
    language="en",
    summary="NATO agreed on air defence.",
    text="NATO ministers agreed on more air defence for the eastern flank.",
    fingerprint=None,
)


@pytest.fixture
def stocked(open_engine: Callable[[], Storage]) -> Storage:
    """An archive (on each engine) with one NATO article and an alert queued for the channels
    "live" and "dead"."""
    archive = open_engine()
    archive.store_article(
        STOCKED,
        NOW,
        lambda _id, _story, _outcome: [
            AlertIn("air-defence", "live", ("nato", "air defence")),
            AlertIn("air-defence", "dead", ("nato", "air defence")),
        ],
    )
    return archive


def by_channel(archive: Storage) -> dict[str, Delivery]:
    return {row.channel: row for row in archive.deliveries()}


def test_a_dead_channel_does_not_stop_a_live_one(
    stocked: Storage, webhook: WebhookReceiver
) -> None:
    dead_port = free_port()
    channels = {
        "live": hook(webhook.url),
        "dead": hook(f"http://127.0.0.1:{dead_port}/hook"),
    }
    clock = Clock(NOW + timedelta(seconds=1))
    report = deliver_due(stocked, channels, clock)
    assert (report.sent, report.retrying, report.failed) == (1, 1, 0)

    rows = by_channel(stocked)
    live, dead = rows["live"], rows["dead"]
    assert (live.status, live.attempts) == ("sent", 1)
    assert (dead.status, dead.attempts) == ("pending", 1)
    assert "could not reach" in dead.last_error
    assert iso(dead.next_attempt) == "2025-06-09T10:00:06Z"  # 5 s later
    assert live.payload and dead.payload  # both frozen before the first send

    [received] = webhook.wait_for(1)
    assert received.body == live.payload.encode("utf-8")
    assert received.headers["X-Newswatch-Delivery"] == live.delivery
    payload = received.json
    assert payload["event"] == "alert" and payload["rule"] == "air-defence"
    assert payload["matched"] == ["nato", "air defence"]
    assert payload["article"]["title"] == "NATO boosts air defence"
    assert payload["article"]["url"] == "https://e.org/nato"
    assert "air defence" in payload["article"]["snippet"]
    assert payload["created"] == "2025-06-09T10:00:00Z"

    # nothing is due before the backoff has passed
    assert deliver_due(stocked, channels, clock).sent == 0

    # the article is edited meanwhile; the retry still sends the frozen bytes, same id
    edit = dataclasses.replace(STOCKED, title="Changed later", text="Changed later, NATO said.")
    assert stocked.store_article(edit, NOW, lambda *_: []).outcome == "edited"
    frozen = dead.payload
    clock.now = NOW + timedelta(seconds=10)
    with WebhookReceiver(port=dead_port) as revived:
        report = deliver_due(stocked, channels, clock)
        assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
        [retried] = revived.wait_for(1)
    assert retried.body == frozen.encode("utf-8")
    assert retried.headers["X-Newswatch-Delivery"] == dead.delivery
    assert verify_signature(SECRET, retried.body, retried.headers["X-Newswatch-Signature-256"])
    assert json.loads(retried.body)["article"]["title"] == "NATO boosts air defence"
    assert by_channel(stocked)["dead"].status == "sent"
    assert by_channel(stocked)["dead"].attempts == 2
    assert len(webhook.requests) == 1  # the live one was not sent again


def test_retry_after_and_the_end_of_the_window(stocked: Storage) -> None:
    busy = (503, {"Retry-After": "3600"}, b"busy")
    with WebhookReceiver(responses=[busy]) as one, WebhookReceiver(responses=[busy]) as two:
        channels = {"live": hook(one.url), "dead": hook(two.url)}
        deliver_due(stocked, channels, Clock(NOW))
        rows = by_channel(stocked)
        assert iso(rows["live"].next_attempt) == "2025-06-09T11:00:00Z"
        # past the 24-hour window the next failure is final
        late = Clock(NOW + timedelta(hours=25))
        report = deliver_due(stocked, channels, late)
        assert (report.sent, report.retrying, report.failed) == (0, 0, 2)
        assert {row.status for row in stocked.deliveries()} == {"failed"}
        assert len(one.requests) == 2 and len(two.requests) == 2


def test_an_unknown_channel_fails_at_once(stocked: Storage, webhook: WebhookReceiver) -> None:
    report = deliver_due(stocked, {"live": hook(webhook.url)}, Clock(NOW))
    assert (report.sent, report.failed) == (1, 1)
    dead = by_channel(stocked)["dead"]
    assert dead.status == "failed"
    assert "not in the config" in dead.last_error


def test_a_redirecting_receiver_is_retried_not_followed(
    stocked: Storage, site: FixtureSite
) -> None:
    site.set("/hook", "moved", status=301, headers={"Location": f"{site.url}/elsewhere"})
    channels = {"live": hook(f"{site.url}/hook"), "dead": hook(f"{site.url}/hook")}
    report = deliver_due(stocked, channels, Clock(NOW))
    assert report.retrying == 2
    assert site.hits("/elsewhere") == 0
    assert site.hits("/hook") == 2


def test_a_channel_sends_its_next_alert_only_once_the_last_one_is_recorded(
    tmp_path: Path,
) -> None:
    """A kill between a send and its record repeats that one send on restart: the channel's
    thread must not have sent another meanwhile. Each send here looks, through a second
    connection, at what the archive has recorded so far."""
    db = tmp_path / "nw.db"
    n = 6
    with Archive(db) as archive:
        for i in range(n):
            article = ArticleIn(
                url=f"https://e.org/nato-{i}",
                source="wire",
                guid=f"g{i}",
                title=f"NATO story {i}",
                author=None,
                published="2025-06-09T09:00:00Z",
                language="en",
                summary=f"NATO summary {i}.",
                text=f"NATO text number {i} with its own words {i * 17} and {i * 31}.",
                fingerprint=None,
            )
            archive.store_article(
                article, NOW, lambda _id, _story, _outcome: [AlertIn("nato", "hook", ("nato",))]
            )
        recorded_before: list[int] = []

        def send(channel: Channel, message: Message) -> None:
            with sqlite3.connect(db) as conn:
                sent = conn.execute("SELECT count(*) FROM outbox WHERE status = 'sent'")
                recorded_before.append(int(sent.fetchone()[0]))

        def slow_clock() -> datetime:  # the recording side takes its time (50 ms a row)
            time.sleep(0.05)
            return NOW

        report = deliver_due(
            archive, {"hook": hook("http://127.0.0.1:9/hook")}, slow_clock, {"webhook": send}
        )
    assert report.sent == n
    assert recorded_before == list(range(n))  # every earlier send was committed first
