"""One delivery node for tests: delivery rounds on an archive until its outbox has nothing
pending, then print how many rows this node sent as JSON. Several of these run side by side on
one archive (tests/test_outbox_claims.py).

Usage: python delivernode.py WHERE HOOK_URL OWNER LEASE_SECONDS LIMIT
WHERE is an SQLite file's path or a postgresql:// URL; OWNER is the claims' owner
(``host:pid``: another host's name makes the node's claims end only with their lease)."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

from crawler.archive import open_archive
from crawler.model import Channel
from scheduler.delivery.outbox import deliver_due


def main(argv: list[str]) -> int:
    where, hook_url, owner, lease, limit = argv
    if where.startswith("postgresql://"):
        archive = open_archive(url=where)
    else:
        archive = open_archive(path=where)
    channels = {"hook": Channel("hook", "webhook", {"url": hook_url, "timeout": 10.0})}
    sent, rounds = 0, 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            report = deliver_due(
                archive,
                channels,
                lambda: datetime.now(UTC),
                limit=int(limit),
                lease=timedelta(seconds=float(lease)),
                owner=owner,
            )
            sent += report.sent
            rounds += 1
            if not archive.deliveries("pending"):
                break
            time.sleep(0.05)
    finally:
        archive.close()
    json.dump({"sent": sent, "rounds": rounds}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
