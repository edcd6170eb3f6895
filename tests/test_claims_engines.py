"""Claims on both engines (`ClaimsStore`: PostgreSQL with FOR UPDATE SKIP LOCKED and the
database's time, SQLite under BEGIN IMMEDIATE): several archives opened on one database act as
nodes. A due source goes to one node; a host's sources go to one node at a time (politeness
across nodes); `early` lets a source be claimed shortly before its due time; the run is
recorded only under the claim, with the node that ran it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta

from crawler.archive import Storage, open_archive
from crawler.clock import utcnow
from crawler.records import Claim, RunRecord

LEASE = timedelta(seconds=60)
HOSTS = {"a": "http://127.0.0.2:8001", "b": "http://127.0.0.3:8001"}


def register(archive: Storage, sources: dict[str, str]) -> None:
    for name, host in sources.items():
        archive.register_source(name, "feed", f"{HOSTS[host]}/{name}.xml")


def test_one_node_per_due_source_among_threads_claiming_at_once(
    open_engine: Callable[[], Storage],
) -> None:
    first = open_engine()
    # one host per source, so that only the claim itself keeps the nodes apart
    for n in range(30):
        first.register_source(f"s{n:02d}", "feed", f"http://127.0.0.{n + 2}:8001/feed.xml")
    got: dict[str, list[Claim]] = {}
    start = threading.Barrier(3)

    def claim(owner: str) -> None:
        # each node its own connection, opened, used and closed in its own thread
        where = {"url": first.url} if hasattr(first, "url") else {"path": first.path}
        with closing(open_archive(**where)) as archive:
            start.wait()
            got[owner] = archive.claim_due(owner, None, LEASE, limit=12)

    threads = [threading.Thread(target=claim, args=(f"node-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = [c.source for claims in got.values() for c in claims]
    assert len(names) == len(set(names)) == 30  # each once, all of them (12 + 12 + 6)
    assert all(c.owner == owner for owner, claims in got.items() for c in claims)


def test_a_hosts_sources_are_leased_to_one_node_at_a_time(
    open_engine: Callable[[], Storage],
) -> None:
    one, two = open_engine(), open_engine()
    register(one, {"a1": "a", "a2": "a", "b1": "b"})
    mine = one.claim_due("node-1", ["a1"], LEASE)
    assert [c.source for c in mine] == ["a1"]
    # a2 shares a1's host: node-2 may not take it while node-1 holds a1; b1 is another host
    theirs = two.claim_due("node-2", ["a1", "a2", "b1"], LEASE)
    assert [c.source for c in theirs] == ["b1"]
    # node-1 may take more of the host it holds
    assert [c.source for c in one.claim_due("node-1", ["a2"], LEASE)] == ["a2"]
    for claim in mine:
        started = utcnow()
        assert one.finish_claim(claim, RunRecord(claim.source, started, node="node-1"), None)


def test_a_run_is_recorded_only_under_its_claim_with_its_node(
    open_engine: Callable[[], Storage],
) -> None:
    one, two = open_engine(), open_engine()
    register(one, {"a1": "a"})
    [claim] = one.claim_due("node-1", ["a1"], timedelta(seconds=1))
    assert two.claim_due("node-2", ["a1"], LEASE) == []  # held
    now = utcnow()
    due = now + timedelta(hours=1)
    # the lease runs out: node-2 takes the source over, and node-1's late run is refused
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    taken: list[Claim] = []
    while not taken and datetime.now(UTC) < deadline:
        taken = two.claim_due("node-2", ["a1"], LEASE)
    assert [c.owner for c in taken] == ["node-2"]
    assert not one.finish_claim(claim, RunRecord("a1", now, now, node="node-1"), due)
    assert two.renew_claims([claim], LEASE) == []  # another token: not renewed
    assert [c.source for c in two.renew_claims(taken, LEASE)] == ["a1"]
    assert two.finish_claim(taken[0], RunRecord("a1", now, now, node="node-2"), due)
    [run] = two.runs("a1")
    assert run.node == "node-2"
    assert one.last_runs()["a1"].node == "node-2"
    # finished: not due again before its next due time
    assert one.claim_due("node-1", ["a1"], LEASE) == []


def test_early_claims_a_source_shortly_before_its_due_time(
    open_engine: Callable[[], Storage],
) -> None:
    archive = open_engine()
    register(archive, {"a1": "a"})
    now = utcnow()
    archive.record_run(RunRecord("a1", now, now), now + timedelta(seconds=30))
    assert archive.claim_due("n", ["a1"], LEASE, early={"a1": timedelta(seconds=5)}) == []
    early = {"a1": timedelta(seconds=40)}
    assert [c.source for c in archive.claim_due("n", ["a1"], LEASE, early=early)] == ["a1"]


def test_a_changed_url_makes_the_source_due_now(open_engine: Callable[[], Storage]) -> None:
    archive = open_engine()
    register(archive, {"a1": "a"})
    now = utcnow()
    archive.record_run(RunRecord("a1", now, now), now + timedelta(hours=1))
    assert archive.claim_due("n", ["a1"], LEASE) == []
    archive.register_source("a1", "feed", "http://127.0.0.3:8001/moved.xml")
    assert [c.source for c in archive.claim_due("n", ["a1"], LEASE)] == ["a1"]
