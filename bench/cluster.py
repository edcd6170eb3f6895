"""Several nodes on one PostgreSQL archive: what the cluster does, measured.

Usage::

    python bench/cluster.py dedup    [--url URL] [--sizes 10000,1000000] [--ops 1000] [--unsynced]
    python bench/cluster.py polls    [--url URL] [--sources 240] [--hosts 8] [--seconds 60]
    python bench/cluster.py scaling  [--url URL] [--nodes 1,2,3] [--seconds 60]
    python bench/cluster.py failover [--url URL] [--lease 60]
    python bench/cluster.py latency  [--url URL] [--items 20]

Each part prints its figures beside their target or baseline, measured in the same run:

- **dedup** (`bench/cluster_dedup.py`): storing one new article, its story lookup included,
  among 10,000 and 1,000,000 archived articles in PostgreSQL; p99 at most 10 ms at 1,000,000
  and flat (at most twice the p99 at 10,000); beside a one-row commit on the same server.
- **polls** (`bench/cluster_nodes.py`): polls per hour of one `newswatch run` node polling
  local feed hosts (127.0.0.2, ...) that answer after 100 ms, on a PostgreSQL archive, beside
  rss-fetcher's published ~22,000 fetches an hour on one server.
- **scaling**: 1, 2 and 3 nodes on one archive polling hosts that answer after 200 ms;
  polls per hour at 2 nodes at least 1.8 times those at 1.
- **failover**: the time from one node's SIGKILL until the sources it held are polled by
  another node (target: at most 2 minutes).
- **latency**: from an item appearing in a feed to the webhook receiving its alert, p50 and
  p95, on SQLite (one node) and on PostgreSQL with 1 and 3 nodes.

``--url`` is a PostgreSQL server where the user may create databases (default the local one);
every part creates its own database and drops it afterwards. All traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cluster_dedup
import cluster_nodes

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=("dedup", "polls", "scaling", "failover", "latency"))
    parser.add_argument("--url", default=LOCAL, help="PostgreSQL server (default %(default)s)")
    parser.add_argument("--sizes", default="10000,1000000", help="dedup: archive sizes")
    parser.add_argument("--ops", type=int, default=1000, help="dedup: timed articles per size")
    parser.add_argument(
        "--unsynced",
        action="store_true",
        help="dedup: measure again with synchronous_commit off (the WAL flush's share)",
    )
    parser.add_argument("--sources", type=int, default=0, help="feeds (default: per part)")
    parser.add_argument("--hosts", type=int, default=8, help="polls, scaling: feed hosts")
    parser.add_argument("--per-host", type=int, default=2, help="scaling: [crawl] per_host")
    parser.add_argument("--seconds", type=float, default=60, help="polls, scaling: window")
    parser.add_argument("--nodes", default="1,2,3", help="scaling: node counts")
    parser.add_argument("--lease", default="60s", help="failover: [service] lease")
    parser.add_argument(
        "--every", default="", help="scaling, failover, latency: every source's every"
    )
    parser.add_argument("--items", type=int, default=20, help="latency: items per setup")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.part == "dedup":
        sizes = [int(s) for s in args.sizes.split(",")]
        ok = cluster_dedup.run(args.url, sizes, args.ops, args.seed, args.unsynced)
    elif args.part == "polls":
        ok = cluster_nodes.polls(args.url, args.sources or 240, args.hosts, args.seconds)
    elif args.part == "scaling":
        counts = [int(n) for n in args.nodes.split(",")]
        ok = cluster_nodes.scaling(
            args.url,
            counts,
            args.sources or 400,
            args.hosts,
            args.per_host,
            args.seconds,
            args.every or "1s",
        )
    elif args.part == "failover":
        ok = cluster_nodes.failover(
            args.url, 3, args.sources or 60, args.lease, args.every or "10s"
        )
    else:
        ok = cluster_nodes.latency(args.url, args.items, args.every or "10s", args.seed)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
