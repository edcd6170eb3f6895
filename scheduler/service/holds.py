"""Alerts held until their pass ends, so that one story gives one alert in any arrival order.

A crawl pass (`holding`) registers itself in the archive with an owner (``host:pid``) and a
lease it renews while it runs; the alerts it queues wait under its id and are released when it
ends, one per (rule, channel, story) as the stories stand then (`crawler.decide.alerting.collapse`
decides; the others are kept, marked 'merged'). What this costs: an alert waits for the end of
its pass (see docs/operations.md, "One alert per story").

A pass whose process died (killed mid-pass) holds its alerts until the next delivery round
sees it is orphaned (`release_orphans`): at once when its owner is a process of this host that
no longer runs, else when its lease has expired. Nothing queued is lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from crawler.archive import Storage, StorageError
from crawler.archive.aio import call

log = logging.getLogger(__name__)

PASS_LEASE = timedelta(seconds=60)  # a pass not renewed for this long is taken for dead
RENEW_SECONDS = 15.0


def owner_here() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def orphaned(
    owner: str, lease_until: datetime, now: datetime, host: str, alive: Callable[[int], bool]
) -> bool:
    """A pass nobody will end: its lease expired, or its owner ran on `host` and is gone."""
    return lease_until <= now or gone(owner, host, alive)


def gone(owner: str, host: str, alive: Callable[[int], bool]) -> bool:
    """The owner (``host:pid``) ran on `host` and no longer runs."""
    name, _, pid = owner.rpartition(":")
    return name == host and pid.isdigit() and not alive(int(pid))


def process_alive(pid: int) -> bool:
    """The process runs (a zombie, killed but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal said it exists
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def release_orphans(archive: Storage, now: datetime) -> int:
    """End the passes whose process died; how many (each delivery round asks)."""
    host = socket.gethostname()
    ended = 0
    for held in archive.passes():
        if orphaned(held.owner, held.lease_until, now, host, process_alive):
            released, merged = archive.end_pass(held.id)
            log.info(
                "released %d alerts (%d merged) of a pass that did not end (%s)",
                released + merged,
                merged,
                held.owner,
            )
            ended += 1
    return ended


def release_dead_claims(archive: Storage) -> int:
    """Give back the outbox rows claimed by a process of this host that no longer runs (killed
    mid-round), so they are sent now rather than once the lease ran out; how many claims."""
    host = socket.gethostname()
    released = 0
    for owner, token in archive.delivery_claims():
        if gone(owner, host, process_alive):
            rows = archive.release_deliveries(token)
            log.info("took over %d deliveries claimed by %s, which no longer runs", rows, owner)
            released += 1
    return released


@asynccontextmanager
async def holding(archive: Storage, clock: Callable[[], datetime]) -> AsyncIterator[str]:
    """A pass that holds its alerts: yields its id; on leaving, its alerts are released."""
    pass_id = await call(archive, archive.begin_pass, owner_here(), clock(), PASS_LEASE)
    renewer = asyncio.ensure_future(_renew(archive, pass_id, clock))
    try:
        yield pass_id
    finally:
        renewer.cancel()
        try:
            await call(archive, archive.end_pass, pass_id)
        except StorageError as exc:  # the next delivery round releases them after the lease
            log.error("could not release the alerts of this pass yet: %s", exc)


async def _renew(archive: Storage, pass_id: str, clock: Callable[[], datetime]) -> None:
    while True:
        await asyncio.sleep(RENEW_SECONDS)
        try:
            await call(archive, archive.renew_pass, pass_id, clock(), PASS_LEASE)
        except StorageError as exc:
            log.warning("could not renew this pass's lease: %s", exc)
