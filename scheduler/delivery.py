"""Delivering the outbox: every due row goes to its channel; the archive keeps the state.

The payload is rendered and stored BEFORE the first send, so every retry sends the same bytes
under the same delivery id. A failing channel is recorded on its row and retried with backoff;
it never stops the other rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crawler.archive import Archive, parse_iso
from crawler.model import Channel
from scheduler.notify import DeliveryError, Message, Sender, registry
from scheduler.render import alert_payload
from scheduler.schedule import retry_at

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0


def render(archive: Archive, row: dict[str, Any]) -> dict[str, Any]:
    """The payload of an outbox row, from the archive as it is now."""
    article = archive.article(row["article_id"]) if row["article_id"] is not None else None
    if article is None:
        raise LookupError(f"article {row['article_id']} is no longer in the archive")
    also = archive.also_reported_by(row["story_id"], row["article_id"])
    return alert_payload(
        delivery=row["delivery"],
        rule=row["rule"],
        matched=json.loads(row["matched"] or "[]"),
        article=article,
        story_id=row["story_id"],
        also_reported_by=also,
        created=row["created"],
    )


def deliver_due(
    archive: Archive,
    channels: Mapping[str, Channel],
    clock: Callable[[], datetime],
    senders: Mapping[str, Sender] | None = None,
    limit: int = 500,
) -> DeliveryReport:
    senders = senders if senders is not None else registry()
    report = DeliveryReport()
    for row in archive.due_deliveries(clock(), limit=limit):
        outcome = deliver_one(archive, row, channels, senders, clock)
        setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def deliver_one(
    archive: Archive,
    row: dict[str, Any],
    channels: Mapping[str, Channel],
    senders: Mapping[str, Sender],
    clock: Callable[[], datetime],
) -> str:
    """Attempt one delivery; returns "sent", "retrying" or "failed"."""
    channel = channels.get(row["channel"])
    if channel is None or channel.type not in senders:
        why = (
            f"channel {row['channel']!r} is not in the config any more; add it back and run "
            "`newswatch alerts retry --failed`"
            if channel is None
            else f"channel type {channel.type!r} cannot send yet"
        )
        archive.mark_attempt_failed(row["id"], clock(), why, None)
        log.error("delivery %s failed: %s", row["delivery"], why)
        return "failed"
    try:
        if row["payload"] is None:
            payload = render(archive, row)
            archive.set_payload(row["id"], json.dumps(payload, ensure_ascii=False))
            row = archive.delivery(row["id"]) or row
        body = row["payload"].encode("utf-8")
        message = Message(row["event"], row["delivery"], json.loads(row["payload"]), body)
        senders[channel.type](channel, message)
    except DeliveryError as exc:
        now = clock()
        when = retry_at(row["attempts"] + 1, now, parse_iso(row["expires"]), exc.retry_after)
        archive.mark_attempt_failed(row["id"], now, str(exc), when)
        if when is None:
            log.error("delivery %s to %s failed for good: %s", row["delivery"], channel.name, exc)
            return "failed"
        log.warning("delivery %s to %s will be retried: %s", row["delivery"], channel.name, exc)
        return "retrying"
    except Exception as exc:  # a bug or a vanished article must not stop the other rows
        archive.mark_attempt_failed(row["id"], clock(), f"{type(exc).__name__}: {exc}", None)
        log.exception("delivery %s failed", row["delivery"])
        return "failed"
    archive.mark_sent(row["id"], clock())
    return "sent"
