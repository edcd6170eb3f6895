"""Faults on `newswatch run` nodes sharing one PostgreSQL archive, with real processes
(tests/multinode.py): a node SIGKILLed mid-pass, PostgreSQL restarted mid-pass, a node's sessions
terminated (``pg_terminate_backend``). After each: no alert lost, none doubled beyond a send in
flight (the same delivery id again), and every source polled once per due time, counted at the
feed hosts and at the webhook receiver.

Each fault runs with one node (a node and its archive surviving the fault) and with three (the
others taking over: the sources are claimed with leases, `[service] lease` short here), the
items added to the feeds before the fault (its pass is in flight when the fault hits) and
after it.
"""

from __future__ import annotations

import itertools
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pgserver
import psycopg
import pytest
from multinode import Cluster, FeedHosts, alerted_titles, cluster, deliveries, node_of
from servers import WebhookReceiver

from crawler.archive import open_archive

EVERY = 3.0  # seconds between a source's polls
DELAY = 1.0  # seconds each feed host takes to answer: a pass is in flight for that long
FEEDS = 6
LEASE = "5s"  # a node's hold on the sources it polls, renewed while it works
ARCHIVE_PAUSE = 30.0  # the service's pause after the archive failed (scheduler.service.main)


def wait(check: Callable[[], bool], timeout: float, what: str, running: Cluster) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{running.output()}")
        time.sleep(0.2)


def node_pids_ports(pid: int) -> set[int]:
    """The local TCP ports of process `pid`'s sockets (its sessions' client ports)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def terminate_sessions(admin_url: str, database: str, pid: int) -> int:
    """pg_terminate_backend on every session process `pid` has in `database`; how many."""
    ports = sorted(node_pids_ports(pid))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = %s AND client_port = ANY(%s::int[])",
            (database, ports),
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="module")
def throwaway() -> Iterator[pgserver.Throwaway]:
    """A PostgreSQL cluster of this module's own, the only one a test may restart."""
    if pgserver.server_binaries() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL restart test cannot run under CI: {pgserver.HOW_TO_ENABLE}")
        pytest.skip(pgserver.HOW_TO_ENABLE)
    server = pgserver.Throwaway().start()
    try:
        yield server
    finally:
        server.stop()


def run_fault(
    tmp_path: Path,
    url: str,
    nodes: int,
    fault: Callable[[Cluster, str], None],
    recovery: float,
) -> None:
    """Three passes' worth of items around one fault on the node that is polling; the checks."""
    open_archive(url=url).close()
    with FeedHosts(FEEDS, hosts=3, delay=DELAY) as feeds, WebhookReceiver() as webhook:
        with cluster(tmp_path, f'url = "{url}"', feeds, webhook, nodes, f"{EVERY:g}s") as running:
            running.lease = LEASE
            started = time.time()
            running.start_all()
            wait(lambda: all(feeds.polls(f) for f in range(FEEDS)), 60, "the first polls", running)
            before = [feeds.add_item(f) for f in range(FEEDS)]
            added = time.time()
            # the fault hits while a pass that reads the new items is in flight
            wait(lambda: bool(feeds.all_polls(added)), 30, "a poll of the new items", running)
            victim = node_of(feeds.all_polls(added)[0])
            assert victim is not None
            fault(running, victim)
            faulted = time.time()
            after = [feeds.add_item(f) for f in range(FEEDS)]
            titles = {item.title for item in before + after}
            wait(
                lambda: titles <= set(alerted_titles(webhook)),
                recovery + 60,
                "every item alerted",
                running,
            )
            time.sleep(EVERY + DELAY)  # a double would come now
            codes = running.stop_all()
            stopped = time.time()
        output = running.output()
    assert "Traceback" not in output, output
    for name, code in codes.items():
        assert code in (0, -9), f"{name} exited {code}\n{output}"
    # nothing lost, nothing doubled beyond a send in flight (the same delivery id again)
    alerted = alerted_titles(webhook)
    assert titles <= set(alerted)
    by_id = deliveries(webhook)
    assert len(by_id) == len(titles), (by_id, alerted)
    resent = [delivery for delivery, count in by_id.items() if count > 1]
    assert len(resent) <= 1 and all(by_id[d] == 2 for d in resent), by_id
    # every source polled once per due time: never twice within a due time, never starved
    for feed in range(FEEDS):
        times = sorted(r.time for r in feeds.polls(feed, started))
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert gaps, f"feed {feed} polled {len(times)} times"
        # a poll of the pass the fault cut short may be made again at once (its run was never
        # recorded): the poll in flight, as a delivery in flight may be sent again
        redo = [g for a, g in zip(times, gaps, strict=False) if not added <= a <= faulted]
        assert min(redo, default=EVERY) >= EVERY / 2, (feed, [round(g, 1) for g in gaps])
        late = [g for a, g in zip(times, gaps, strict=False) if not faulted - 5 <= a <= faulted]
        assert max(late, default=0) <= EVERY * 1.1 + DELAY + 3, (feed, gaps)
        assert max(gaps) <= EVERY * 1.1 + DELAY + recovery, (feed, gaps)
        assert stopped - times[-1] <= EVERY * 1.1 + DELAY + EVERY + 3


def sigkill(running: Cluster, victim: str) -> None:
    running.kill(victim)
    if len(running.running) == 1:
        running.start(0)  # the only node: started again, as systemd or a container would


def sessions_terminated(admin_url: str) -> Callable[[Cluster, str], None]:
    def fault(running: Cluster, victim: str) -> None:
        database = running.archive.split("/")[-1].split("?")[0].rstrip('"')
        pid = running.running[victim].process.pid
        assert terminate_sessions(admin_url, database, pid) >= 1

    return fault


def pg_restart(server: pgserver.Throwaway) -> Callable[[Cluster, str], None]:
    def fault(running: Cluster, victim: str) -> None:
        server.restart()

    return fault


NODES = [1, 3]  # one node surviving the fault; three, the others taking over


@pytest.mark.parametrize("nodes", NODES)
def test_a_node_sigkilled_mid_pass_loses_and_doubles_nothing(
    tmp_path: Path, postgres_url: str, nodes: int
) -> None:
    run_fault(tmp_path, postgres_url, nodes, sigkill, recovery=ARCHIVE_PAUSE + 120)


@pytest.mark.parametrize("nodes", NODES)
def test_a_node_whose_sessions_are_terminated_loses_and_doubles_nothing(
    tmp_path: Path, postgres_server: pgserver.Server, postgres_url: str, nodes: int
) -> None:
    fault = sessions_terminated(postgres_server.url)
    run_fault(tmp_path, postgres_url, nodes, fault, recovery=ARCHIVE_PAUSE + 10)


@pytest.mark.parametrize("nodes", NODES)
def test_postgresql_restarted_mid_pass_loses_and_doubles_nothing(
    tmp_path: Path, throwaway: pgserver.Throwaway, nodes: int
) -> None:
    with pgserver.fresh_database(throwaway.url) as url:
        run_fault(tmp_path, url, nodes, pg_restart(throwaway), recovery=ARCHIVE_PAUSE + 10)


def test_the_harness_sees_which_node_polled(tmp_path: Path) -> None:
    """The harness itself: a node's User-Agent names it at the feed host."""
    with FeedHosts(1, hosts=1) as feeds:
        agent = {"User-Agent": "newswatch-cluster-test (node-7)"}
        request = urllib.request.Request(feeds.url(0), headers=agent)
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert b"Feed 0" in answer.read()
        urllib.request.urlopen(feeds.url(0), timeout=5).close()  # not a node's
        assert [node_of(r) for r in feeds.polls(0)] == ["node-7"]
