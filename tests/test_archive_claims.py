"""Claims with leases on a real PostgreSQL server (crawler/archive/postgres/claims.py): each
due source is leased by one node at a time, time is the database's, work is recorded only under
the lease's token, and an expired lease is how another node takes over."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from crawler.archive.postgres import PostgresArchive
from crawler.records import Claim, RunRecord

SOURCES = [f"s{n:02d}" for n in range(40)]
LEASE = timedelta(seconds=60)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def db_now(url: str) -> datetime:
    [(now,)] = query(url, "SELECT now()")
    assert isinstance(now, datetime)
    return now.astimezone(UTC)


def a_run(source: str, started: datetime) -> RunRecord:
    return RunRecord(source=source, started=started, finished=started, status="ok", fetched=1)


@pytest.fixture
def nodes(postgres_url: str) -> Any:
    opened = [PostgresArchive(postgres_url) for _ in range(3)]
    yield opened
    for archive in opened:
        archive.close()


def test_nodes_claiming_at_once_share_the_due_sources_without_overlap(nodes: Any) -> None:
    barrier = threading.Barrier(len(nodes))
    got: list[list[Claim]] = [[] for _ in nodes]

    def claim(n: int) -> None:
        barrier.wait()
        for _ in range(10):  # small bites, as a node that takes what it can work on
            got[n] += nodes[n].claim_due(f"node-{n}", SOURCES, LEASE, limit=3)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(nodes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [c.source for claims in got for c in claims]
    assert sorted(claimed) == SOURCES  # every due source once, none twice
    assert all(c.owner == f"node-{n}" for n, claims in enumerate(got) for c in claims)
    assert len({c.token for claims in got for c in claims}) == len(SOURCES)
    assert nodes[0].claim_due("late", SOURCES, LEASE) == []  # all leased


def test_a_row_locked_by_another_node_is_skipped_not_waited_for(
    nodes: Any, postgres_url: str
) -> None:
    nodes[0].claim_due("warm-up", [], LEASE)
    with psycopg.connect(postgres_url) as other:
        other.execute("INSERT INTO sources (name) VALUES ('busy'), ('free')")
        other.commit()
        other.execute("SELECT 1 FROM sources WHERE name = 'busy' FOR UPDATE")  # held
        started = time.monotonic()
        claims = nodes[0].claim_due("node-0", ["busy", "free"], LEASE)
        assert time.monotonic() - started < 2.0
        assert [c.source for c in claims] == ["free"]
        other.rollback()
    assert [c.source for c in nodes[1].claim_due("node-1", ["busy"], LEASE)] == ["busy"]


def test_due_and_retry_after_are_judged_by_the_database_clock(
    nodes: Any, postgres_url: str
) -> None:
    archive = nodes[0]
    for name in ("never-run", "overdue", "later", "paused"):
        archive.register_source(name, "feed", f"https://e.org/{name}")
    query(postgres_url, "UPDATE sources SET next_due = now() - interval '1 minute'")
    query(postgres_url, "UPDATE sources SET next_due = NULL WHERE name = 'never-run'")
    query(
        postgres_url, "UPDATE sources SET next_due = now() + interval '1 hour' WHERE name = 'later'"
    )
    query(
        postgres_url,
        "UPDATE sources SET not_before = now() + interval '1 hour' WHERE name = 'paused'",
    )
    before = db_now(postgres_url)
    claims = archive.claim_due("node-0", ["never-run", "overdue", "later", "paused"], LEASE)
    assert [c.source for c in claims] == ["never-run", "overdue"]
    for claim in claims:
        assert before + LEASE <= claim.until <= db_now(postgres_url) + LEASE
    # the source's state reads as before: the lease is the claims' own
    state = archive.source_state("overdue")
    assert state is not None and not hasattr(state, "lease_token")
    assert state.next_due is not None and state.next_due < before


def test_an_expired_lease_is_taken_over_and_the_old_token_records_nothing(
    nodes: Any,
) -> None:
    first, second = nodes[0], nodes[1]
    [old] = first.claim_due("node-0", ["wire"], timedelta(seconds=1))
    assert second.claim_due("node-1", ["wire"], LEASE) == []  # still leased
    time.sleep(1.2)
    [new] = second.claim_due("node-1", ["wire"], LEASE)
    assert (new.owner, new.source) == ("node-1", "wire") and new.token != old.token

    started = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert first.renew_claims([old], LEASE) == []  # lost: the node stops its work
    assert first.finish_claim(old, a_run("wire", started), started) is False
    assert first.runs("wire") == []  # fenced: nothing recorded
    assert first.release_claim(old) is False

    [renewed] = second.renew_claims([new], LEASE)
    assert renewed.token == new.token and renewed.until >= new.until
    due = started + timedelta(minutes=15)
    assert second.finish_claim(new, a_run("wire", started), due) is True
    [run] = second.runs("wire")
    assert run.status == "ok"
    state = second.source_state("wire")
    assert state is not None and state.next_due == due
    assert second.finish_claim(new, a_run("wire", started), due) is False  # once


def test_a_released_claim_is_due_again_at_once(nodes: Any) -> None:
    [claim] = nodes[0].claim_due("node-0", ["wire"], LEASE)
    assert nodes[0].release_claim(claim) is True
    [again] = nodes[1].claim_due("node-1", ["wire"], LEASE)
    assert again.owner == "node-1"


def test_without_names_every_due_source_the_archive_knows_is_claimed(
    nodes: Any, postgres_url: str
) -> None:
    for name in ("a", "b", "c"):
        nodes[0].register_source(name, "feed", f"https://e.org/{name}")
    query(postgres_url, "UPDATE sources SET next_due = now() + interval '1 hour' WHERE name = 'b'")
    assert [c.source for c in nodes[0].claim_due("node-0", None, LEASE)] == ["a", "c"]
    assert nodes[1].claim_due("node-1", None, LEASE) == []
