"""Several processes delivering one archive, on both engines (a real SQLite file, a real
PostgreSQL database): outbox rows claimed with a lease and a token (`claim_deliveries`), an
outcome recorded only under the claim's token, a digest made once (`add_digest`), a
once-per-period job's slot (`claim_slot`); then real delivery processes (tests/delivernode.py)
side by side against a real webhook receiver counting deliveries per id, and one of them
SIGKILLed mid-round."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from servers import WebhookReceiver

from crawler.archive import AlertIn, ArticleIn, Storage, open_archive
from crawler.model import Channel
from scheduler.delivery.outbox import deliver_due_async
from scheduler.service.schedule import period_slot

NOW = datetime(2025, 6, 9, 10, 20, tzinfo=UTC)
LEASE = timedelta(minutes=5)
TESTS = Path(__file__).parent


def article(n: int) -> ArticleIn:
    return ArticleIn(
        url=f"https://e.org/{n}",
        source="wire",
        guid=None,
        title=f"Story {n}",
        author=None,
        published=None,
        language=None,
        summary=None,
        text=f"Text of story number {n}, unlike any other {n * 7919}.",
        fingerprint=None,
    )


def queue_alerts(archive: Storage, n: int, now: datetime, digest: str | None = None) -> None:
    alert = AlertIn("air", "hook", ("nato",), digest=digest)
    for i in range(n):
        archive.store_article(article(i), now, lambda *_: [alert])


@pytest.fixture
def where(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """This test's archive: an SQLite file's path, or a fresh PostgreSQL database's URL."""
    if engine == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "nw.db")


@pytest.fixture
def opener(where: str) -> Iterator[Callable[[], Storage]]:
    """Opens the archive again (one more process's connection, as far as the engine knows)."""
    opened: list[Storage] = []

    def reopen() -> Storage:
        if where.startswith("postgresql://"):
            archive = open_archive(url=where)
        else:
            archive = open_archive(path=where)
        opened.append(archive)
        return archive

    yield reopen
    for archive in opened:
        archive.close()


# ------------------------------------------------------------------------------ the contract


def test_two_claims_never_share_a_row(opener: Callable[[], Storage]) -> None:
    a, b = opener(), opener()
    queue_alerts(a, 5, NOW)
    first = a.claim_deliveries("node-a:1", NOW, LEASE, limit=3)
    second = b.claim_deliveries("node-b:1", NOW, LEASE, limit=3)
    assert len(first) == 3 and len(second) == 2
    assert not {d.id for d in first} & {d.id for d in second}
    assert len({d.lease_token for d in first}) == 1  # one token per claim
    assert first[0].lease_token != second[0].lease_token
    assert [d.id for d in first] == sorted(d.id for d in first)  # due order
    assert b.claim_deliveries("node-b:1", NOW, LEASE) == []  # all held
    assert sorted(a.delivery_claims()) == sorted(
        [("node-a:1", str(first[0].lease_token)), ("node-b:1", str(second[0].lease_token))]
    )
    # given back unsent: due again, for anyone
    assert a.release_deliveries(str(first[0].lease_token)) == 3
    again = b.claim_deliveries("node-b:1", NOW, LEASE)
    assert {d.id for d in again} == {d.id for d in first}
    # not yet due (next_attempt in the future) is never claimed
    assert a.claim_deliveries("node-a:1", NOW - timedelta(hours=1), LEASE) == []


def test_an_outcome_counts_only_under_the_claims_token(opener: Callable[[], Storage]) -> None:
    a, b = opener(), opener()
    queue_alerts(a, 2, NOW)
    first, other = a.claim_deliveries("node-a:1", NOW, timedelta(seconds=1))
    token_a = str(first.lease_token)
    assert a.renew_deliveries(token_a, timedelta(seconds=1)) == 2
    time.sleep(2.2)  # the lease ran out: node a is taken for dead
    taken = b.claim_deliveries("node-b:1", NOW, LEASE)
    assert {d.id for d in taken} == {first.id, other.id}
    token_b = str(taken[0].lease_token)
    # node a comes back: its outcomes are not recorded, its renewal finds nothing
    assert a.mark_sent(first.id, NOW, token_a) is False
    assert a.mark_attempt_failed(other.id, NOW, "HTTP 500", None, token_a) is False
    assert a.renew_deliveries(token_a, LEASE) == 0
    row = b.delivery(first.id)
    assert row is not None and (row.status, row.attempts, row.lease_token) == (
        "pending",
        0,
        token_b,
    )
    # node b's are
    assert b.mark_sent(first.id, NOW, token_b) is True
    retry = NOW + timedelta(minutes=5)
    assert b.mark_attempt_failed(other.id, NOW, "HTTP 500", retry, token_b) is True
    sent, failed = b.delivery(first.id), b.delivery(other.id)
    assert sent is not None and (sent.status, sent.attempts, sent.lease_token) == ("sent", 1, None)
    assert failed is not None
    assert (failed.status, failed.next_attempt, failed.last_error) == ("pending", retry, "HTTP 500")
    assert b.delivery_claims() == []
    # a retry is claimed again once due, under a new token
    [back] = a.claim_deliveries("node-a:1", retry, LEASE)
    assert back.id == other.id and back.lease_token not in (token_a, token_b)


def test_a_digest_is_made_once_however_many_nodes_try(opener: Callable[[], Storage]) -> None:
    a, b = opener(), opener()
    queue_alerts(a, 3, NOW, digest="hourly")
    end = datetime(2025, 6, 9, 11, 0, tzinfo=UTC)
    [due_a] = a.due_digests(end)
    [due_b] = b.due_digests(end)  # both nodes saw the closed period
    made = a.add_digest("air", "hook", "digest-a", "{}", due_a.ids, end)
    assert made is not None
    assert b.add_digest("air", "hook", "digest-b", "{}", due_b.ids, end) is None
    digests = [d for d in b.deliveries() if d.event == "digest"]
    assert [d.delivery for d in digests] == ["digest-a"]
    assert {d.digest_id for d in b.deliveries("digested")} == {made}


def test_a_period_slot_goes_to_one_node(opener: Callable[[], Storage]) -> None:
    a, b = opener(), opener()
    assert a.claim_slot("prune", "2025-06-09T10", "node-a:1", NOW) is True
    assert b.claim_slot("prune", "2025-06-09T10", "node-b:1", NOW) is False
    assert a.claim_slot("prune", "2025-06-09T10", "node-a:1", NOW) is False  # once, even here
    assert b.claim_slot("health", "2025-06-09T10", "node-b:1", NOW) is True  # another job
    later = NOW + timedelta(hours=1)
    assert b.claim_slot("prune", "2025-06-09T11", "node-b:1", later) is True
    # a week on, the old slots are forgotten (the table does not grow without end)
    assert a.claim_slot("prune", "2025-06-16T11", "node-a:1", NOW + timedelta(days=8)) is True
    assert a.claim_slot("prune", "2025-06-09T10", "node-a:1", NOW + timedelta(days=8)) is True


def test_a_health_change_gives_its_notices_once(opener: Callable[[], Storage]) -> None:
    a, b = opener(), opener()
    assert a.set_health("wire", "failing", NOW, [("hook", "n-a", "{}")]) is True
    # node b judged the same change from the same old state: recorded once, noticed once
    assert b.set_health("wire", "failing", NOW, [("hook", "n-b", "{}")]) is False
    assert [d.delivery for d in b.deliveries()] == ["n-a"]
    assert b.set_health("wire", "ok", NOW, [("hook", "n-c", "{}")]) is True
    assert sorted(d.delivery for d in a.deliveries()) == ["n-a", "n-c"]


# ------------------------------------------------------------------------------ real processes


def node(where: str, hook: WebhookReceiver, owner: str, lease: float, limit: int) -> list[str]:
    """tests/delivernode.py's command line: rounds of `limit` rows claimed for `lease` s."""
    args = [where, hook.url, owner, str(lease), str(limit)]
    return [sys.executable, str(TESTS / "delivernode.py"), *args]


def run_node(argv: list[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS.parent), *filter(None, [env.get("PYTHONPATH")])])
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def test_a_round_stopped_half_way_gives_its_rows_back_at_once(
    opener: Callable[[], Storage],
) -> None:
    """The service's round cancelled (a stop, an error on the recording side): what it did not
    send is released for the next round or node, not held for the lease's 2 minutes."""
    archive = opener()
    queue_alerts(archive, 4, datetime.now(UTC))
    channels = {"hook": Channel("hook", "webhook", {"url": "", "timeout": 10.0})}

    async def cancelled_round(hook: WebhookReceiver) -> None:
        channels["hook"].options["url"] = hook.url
        task = asyncio.create_task(
            deliver_due_async(archive, channels, lambda: datetime.now(UTC), owner="node-a:1")
        )
        while not hook.requests:
            await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with WebhookReceiver(responses=[(200, {}, b"ok", 1.0)]) as hook:
        asyncio.run(cancelled_round(hook))
        assert archive.delivery_claims() == []
        again = opener().claim_deliveries("node-b:1", datetime.now(UTC), LEASE)
        assert len(again) == 4  # all unsent (the one in flight was not recorded)


def per_id(hook: WebhookReceiver) -> Counter[str]:
    return Counter(r.headers["X-Newswatch-Delivery"] for r in hook.requests)


def test_two_nodes_deliver_each_row_once(opener: Callable[[], Storage], where: str) -> None:
    n = 40
    archive = opener()
    queue_alerts(archive, n, datetime.now(UTC))
    with WebhookReceiver(responses=[(200, {}, b"ok", 0.05)]) as hook:
        nodes = [run_node(node(where, hook, f"node-{name}:1", 60, 4)) for name in ("a", "b")]
        outputs = [proc.communicate(timeout=60) for proc in nodes]
        for proc, (_, err) in zip(nodes, outputs, strict=True):
            assert proc.returncode == 0, err
        counts = per_id(hook)
    sent = [json.loads(out)["sent"] for out, _ in outputs]
    assert len(counts) == n and set(counts.values()) == {1}  # each row once, none lost
    assert sum(sent) == n and min(sent) > 0  # both nodes took part
    assert {d.status for d in archive.deliveries()} == {"sent"}
    assert archive.delivery_claims() == []


def test_a_node_killed_mid_round_leaves_its_rows_to_another_after_the_lease(
    opener: Callable[[], Storage], where: str
) -> None:
    n = 8
    archive = opener()
    queue_alerts(archive, n, datetime.now(UTC))
    with WebhookReceiver(responses=[(200, {}, b"ok", 0.4)]) as hook:
        # node a (of another host: no shortcut, only its lease ends its claim) claims all
        killed = run_node(node(where, hook, "elsewhere:1", 3, 100))
        try:
            hook.wait_for(3, timeout=30)
        finally:
            killed.send_signal(signal.SIGKILL)
            killed.communicate(timeout=30)
        in_flight = per_id(hook)
        claimed = archive.delivery_claims()
        assert [owner for owner, _ in claimed] == ["elsewhere:1"]  # still held by the dead
        sent_by_a = {d.delivery for d in archive.deliveries("sent")}
        assert 2 <= len(sent_by_a) < n  # killed mid-round, its outcomes kept
        started = time.monotonic()
        other = run_node(node(where, hook, "node-b:1", 60, 100))
        out, err = other.communicate(timeout=60)
        assert other.returncode == 0, err
        assert time.monotonic() - started >= 1.0  # it waited for the lease to run out
        counts = per_id(hook)
    assert len(counts) == n  # nothing lost
    repeated = [d for d, c in counts.items() if c > 1]
    assert len(repeated) <= 1 and set(counts.values()) <= {1, 2}  # only the send in flight
    assert not set(repeated) & sent_by_a  # never a row recorded as sent
    assert set(repeated) <= set(in_flight)
    assert json.loads(out)["sent"] == n - len(sent_by_a)
    assert {d.status for d in archive.deliveries()} == {"sent"}


def test_the_period_a_job_claims() -> None:
    at = datetime(2025, 6, 9, 10, 20, 59, tzinfo=UTC)
    assert period_slot(at, timedelta(minutes=1)) == "2025-06-09T10:20:00Z"
    assert period_slot(at + timedelta(seconds=1), timedelta(minutes=1)) == "2025-06-09T10:21:00Z"
    assert period_slot(at, timedelta(hours=1)) == "2025-06-09T10:00:00Z"
    other_zone = at.astimezone(timezone(timedelta(hours=5)))
    assert period_slot(other_zone, timedelta(hours=1)) == "2025-06-09T10:00:00Z"
