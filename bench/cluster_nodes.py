"""The parts of `bench/cluster.py` that run `newswatch run` nodes: polls per hour of one node,
scaling over 1, 2 and 3 nodes, failover after a SIGKILL, and alert latency.

The nodes, feed hosts and webhook are those of the fault tests (`tests/multinode.py`): real
`newswatch run` processes, each with its own config (the same archive, sources and rule; its
own ``listen`` port, User-Agent and ``[service] node``), and RSS feeds on loopback hosts
127.0.0.2, 127.0.0.3, ... that answer after a set delay (conditional GET: a 304 while a feed is
unchanged). Every poll is counted where it arrives, with the node that sent it (its User-Agent).
The config: ``[crawl] delay = "0s"``, ``fetch_articles = false``, ``obey_robots = false``,
``per_host`` as given; every source on the same ``every``.
"""

from __future__ import annotations

import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from multinode import Cluster, FeedHosts, alerted_titles, cluster, node_key_known, node_of
from servers import WebhookReceiver

RSS_FETCHER_PER_HOUR = 22_000  # Media Cloud's rss-fetcher on one server (issue "Several nodes")
SCALING_TARGET = 1.8
FAILOVER_TARGET_S = 120.0


@contextlib.contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A database of its own on the server at `admin_url`; its URL. Dropped afterwards."""
    name = f"nw_bench_cluster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_first_polls(feeds: FeedHosts, running: Cluster, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not all(feeds.polls(f) for f in range(feeds.count)):
        if time.monotonic() > deadline:
            raise SystemExit(f"the nodes did not poll every feed in time\n{running.output()}")
        time.sleep(0.5)


def polls_per_hour(
    admin_url: str, nodes: int, sources: int, hosts: int, delay: float, every: str,
    per_host: int, seconds: float,
) -> tuple[float, dict[str, float], float]:  # fmt: skip
    """(polls an hour of all nodes together, per node, CPU seconds per poll) over `seconds`
    after every feed was polled once."""
    with (
        database(admin_url) as url,
        tempfile.TemporaryDirectory(prefix="nw-cluster-") as folder,
        FeedHosts(sources, hosts=hosts, delay=delay) as feeds,
        WebhookReceiver() as webhook,
        cluster(Path(folder), f'url = "{url}"', feeds, webhook, nodes, every) as running,
    ):
        running.per_host = per_host
        running.start_all()
        wait_first_polls(feeds, running)
        pids = [s.process.pid for s in running.running.values()]
        cpu = sum(cpu_seconds(p) for p in pids)
        start = time.time()
        time.sleep(seconds)
        end = time.time()
        cpu = sum(cpu_seconds(p) for p in pids) - cpu
        window = [r for r in feeds.all_polls(start) if r.time < end]
        running.stop_all()
    per_node: dict[str, float] = {}
    for r in window:
        node = node_of(r) or "?"
        per_node[node] = per_node.get(node, 0) + 3600 / (end - start)
    return len(window) * 3600 / (end - start), per_node, cpu / max(1, len(window))


def polls(admin_url: str, sources: int, hosts: int, seconds: float) -> bool:
    total, _, cpu = polls_per_hour(admin_url, 1, sources, hosts, 0.1, "1s", 8, seconds)
    print(
        f"polls: one node, {sources} feeds on {hosts} hosts answering after 100 ms, every 1 s, "
        f"per_host 8: {total:,.0f} polls an hour ({total / 3600:.1f}/s, {cpu * 1e3:.1f} ms CPU "
        f"per poll); rss-fetcher: ~{RSS_FETCHER_PER_HOUR:,} fetches an hour on one server: "
        f"x{total / RSS_FETCHER_PER_HOUR:.1f}"
    )
    return True


def scaling(
    admin_url: str,
    counts: list[int],
    sources: int,
    hosts: int,
    per_host: int,
    seconds: float,
    every: str = "1s",
) -> bool:
    if not node_key_known():
        print(
            "scaling: this newswatch has no [service] node yet (the claims are not in): every "
            "node polls every source, so the figures below count repeated polls, not scaling"
        )
    results: dict[int, float] = {}
    for n in counts:
        total, per_node, cpu = polls_per_hour(
            admin_url, n, sources, hosts, 0.2, every, per_host, seconds
        )
        results[n] = total
        share = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(per_node.items()))
        print(
            f"scaling: {n} node(s), {sources} feeds on {hosts} hosts answering after 200 ms, "
            f"every {every}, per_host {per_host}: {total:,.0f} polls an hour ({share}); "
            f"{cpu * 1e3:.1f} ms CPU per poll",
            flush=True,
        )
    if 1 in results and 2 in results:
        ratio = results[2] / results[1]
        verdict = "met" if ratio >= SCALING_TARGET else "MISSED"
        print(f"scaling target: 2 nodes / 1 node = x{ratio:.2f} (target >= {SCALING_TARGET}) "
              f"{verdict}")  # fmt: skip
        return ratio >= SCALING_TARGET
    return True


def failover(admin_url: str, nodes: int, sources: int, lease: str, every: str) -> bool:
    """SIGKILL the node whose poll came last; time until each feed it polled in its last
    second is polled by another node."""
    if not node_key_known():
        print(
            "failover: this newswatch has no [service] node yet (the claims are not in): the "
            "other nodes poll every source anyway, so the figure below is no failover"
        )
    with (
        database(admin_url) as url,
        tempfile.TemporaryDirectory(prefix="nw-cluster-") as folder,
        FeedHosts(sources, hosts=4, delay=2.0) as feeds,
        WebhookReceiver() as webhook,
        cluster(Path(folder), f'url = "{url}"', feeds, webhook, nodes, every) as running,
    ):
        running.lease = lease
        running.start_all()
        wait_first_polls(feeds, running)
        time.sleep(5)
        last = feeds.all_polls(time.time() - 1.5)  # still being answered (2 s each)
        while not last:
            time.sleep(0.2)
            last = feeds.all_polls(time.time() - 1.5)
        victim = node_of(max(last, key=lambda r: r.time)) or "?"
        held = {
            feed
            for feed in range(sources)
            for r in feeds.polls(feed, time.time() - 1.5)
            if node_of(r) == victim
        }
        running.kill(victim)
        killed = time.time()
        taken: dict[int, float] = {}
        deadline = killed + 3 * FAILOVER_TARGET_S
        while len(taken) < len(held) and time.time() < deadline:
            for feed in held - set(taken):
                others = [r.time for r in feeds.polls(feed, killed) if node_of(r) != victim]
                if others:
                    taken[feed] = min(others) - killed
            time.sleep(0.2)
        running.stop_all()
    worst = max(taken.values(), default=float("inf"))
    if len(taken) < len(held):
        worst = float("inf")
    median = statistics.median(taken.values()) if taken else float("inf")
    ok = worst <= FAILOVER_TARGET_S
    print(
        f"failover: {nodes} nodes, lease {lease}, every {every}; {victim} SIGKILLed while "
        f"polling {len(held)} feeds; polled by another node after median {median:.1f} s, "
        f"at most {worst:.1f} s (target <= {FAILOVER_TARGET_S:.0f} s) "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


def latency_run(
    archive: str, nodes: int, items: int, every: str, seed: int
) -> list[tuple[float, float]]:
    """For each item: seconds from its appearance in a feed to its alert at the webhook, and
    from the first poll that served it to the alert (the service's own part)."""
    rng = random.Random(seed)
    with (
        tempfile.TemporaryDirectory(prefix="nw-cluster-") as folder,
        FeedHosts(10, hosts=3, delay=0.1) as feeds,
        WebhookReceiver() as webhook,
        cluster(Path(folder), archive.replace("{folder}", folder), feeds, webhook, nodes, every)
        as running,
    ):  # fmt: skip
        running.start_all()
        wait_first_polls(feeds, running)
        added = []
        for _ in range(items):
            time.sleep(rng.uniform(0.5, 2.0))
            added.append(feeds.add_item(rng.randrange(feeds.count)))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if {i.title for i in added} <= set(alerted_titles(webhook)):
                break
            time.sleep(0.2)
        running.stop_all()
        first: dict[str, float] = {}
        for r in webhook.requests:
            article = r.json.get("article") if isinstance(r.json, dict) else None
            if isinstance(article, dict):
                first.setdefault(str(article.get("title")), r.time)
        found = []
        for i in added:
            if i.title not in first:
                found.append((float("inf"), float("inf")))
                continue
            poll = min((r.time for r in feeds.polls(i.feed, i.added)), default=i.added)
            found.append((first[i.title] - i.added, first[i.title] - poll))
    return found


def quantile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency(admin_url: str, items: int, every: str, seed: int) -> bool:
    rows = [("SQLite, 1 node", 'path = "{folder}/nw.db"', 1)]
    rows += [("PostgreSQL, 1 node", "", 1), ("PostgreSQL, 3 nodes", "", 3)]
    if not node_key_known():
        print(
            "latency: this newswatch has no [service] node yet (the claims are not in): the 3 "
            "nodes each poll every source"
        )
    for label, archive, nodes in rows:
        with contextlib.ExitStack() as stack:
            if not archive:
                archive = f'url = "{stack.enter_context(database(admin_url))}"'
            pairs = latency_run(archive, nodes, items, every, seed)
        times = sorted(t for t, _ in pairs)
        own = sorted(o for _, o in pairs)
        lost = sum(t == float("inf") for t in times)
        print(
            f"latency: {label}, every {every}: p50 {statistics.median(times):.1f} s, p95 "
            f"{quantile(times, 0.95):.1f} s over {len(times)} items ({lost} not alerted within "
            f"2 min); from the poll that served the item: p50 {statistics.median(own):.2f} s, "
            f"p95 {quantile(own, 0.95):.2f} s (the rest is the wait for the next poll: half of "
            "every on average)",
            flush=True,
        )
    return True
