"""Delivering the outbox: every due row goes to its channel; the archive keeps the state.

- The payload is rendered and stored BEFORE the first send, so every retry sends the same
  bytes under the same delivery id.
- Each channel sends from its own worker thread, so a slow or dead channel never delays the
  others; the archive is written only from the calling thread (one writer), each outcome as
  soon as it is known. A process killed mid-batch loses nothing: a row is 'sent' only after
  its send returned, so on restart only the sends that were in flight may repeat.
- A failed send is retried with backoff and jitter, honouring Retry-After, for 24 hours.
- Alerts a pass holds until it ends (scheduler.service.holds) are not due before; those of a pass
  whose process died are released first.
- Held alerts (a rule's digest, or past its `max_per_hour`) become one digest delivery per
  rule, channel and period once the period has closed (`make_digests`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.archive import Storage
from crawler.clock import iso
from crawler.model import Channel
from crawler.records import Delivery
from scheduler.config.secrets import channel_secrets, redact
from scheduler.delivery.notify import DeliveryError, Message, Sender, registry
from scheduler.delivery.render import (
    alert_payload,
    article_fields,
    article_view,
    digest_payload,
    member_fields,
    story_view,
)
from scheduler.service.holds import release_orphans
from scheduler.service.schedule import retry_at

log = logging.getLogger(__name__)


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    outcomes: list[tuple[str, str, str]] = field(default_factory=list)  # rule, channel, status

    def add(self, row: Delivery, status: str) -> None:
        setattr(self, status, getattr(self, status) + 1)
        rule = row.rule or row.event  # source-health notices have no rule
        self.outcomes.append((rule, row.channel, status))


def render(archive: Storage, row: Delivery) -> dict[str, Any]:
    """The payload of an alert row, from the archive as it is now."""
    article = archive.article(row.article_id) if row.article_id is not None else None
    if row.article_id is None or article is None:
        raise LookupError(f"article {row.article_id} is no longer in the archive")
    story = archive.article_story(row.article_id)
    also = archive.also_reported_by(story, row.article_id)
    return alert_payload(
        delivery=row.delivery,
        rule=str(row.rule),
        matched=list(row.matched),
        article=article_fields(article),
        story_id=story,
        also_reported_by=[member_fields(m) for m in also],
        created=iso(row.created),
    )


def make_digests(archive: Storage, clock: Callable[[], datetime]) -> int:
    """Turn the held alerts of every closed period into digest deliveries; how many made."""
    made = 0
    for group in archive.due_digests(clock()):
        alerts = []
        for outbox_id in group.ids:
            row = archive.delivery(outbox_id)
            if row is None or row.article_id is None:
                continue
            article = archive.article(row.article_id)
            if article is None:
                continue
            matched = list(row.matched)
            story = archive.article_story(row.article_id)
            also = archive.also_reported_by(story, article.id)
            alerts.append(
                {
                    "rule": row.rule,
                    "matched": matched,
                    "article": article_view(article_fields(article), matched),
                    "story": story_view(story, [member_fields(m) for m in also]),
                }
            )
        delivery = str(uuid.uuid4())
        payload = digest_payload(
            delivery=delivery,
            rule=group.rule,
            start=iso(group.hold_from),
            end=iso(group.hold_until),
            alerts=alerts,
        )
        archive.add_digest(
            group.rule,
            group.channel,
            delivery,
            json.dumps(payload, ensure_ascii=False),
            group.ids,
            clock(),
        )
        made += 1
    return made


@dataclass(frozen=True)
class _Outcome:
    row: Delivery
    error: DeliveryError | Exception | None
    # set once the outcome is committed: a channel's thread sends its next row only then, so
    # a crash can repeat at most the one send in flight (never a sent row not yet recorded)
    recorded: threading.Event = field(default_factory=threading.Event)


def deliver_due(
    archive: Storage,
    channels: Mapping[str, Channel],
    clock: Callable[[], datetime],
    senders: Mapping[str, Sender] | None = None,
    limit: int = 500,
) -> DeliveryReport:
    """Make the digests that are due, then send every due row; returns what happened."""
    batch = _Batch(archive, channels, clock, senders, limit)
    try:
        while batch.running:
            batch.record(batch.outcomes.get())
    except BaseException:
        batch.abandon()
        raise
    return batch.finish()


async def deliver_due_async(
    archive: Storage,
    channels: Mapping[str, Channel],
    clock: Callable[[], datetime],
    senders: Mapping[str, Sender] | None = None,
    limit: int = 500,
) -> DeliveryReport:
    """`deliver_due` for the service: the event loop keeps running while channels send."""
    batch = _Batch(archive, channels, clock, senders, limit)
    try:
        while batch.running:
            batch.record(await asyncio.to_thread(batch.outcomes.get))
    except BaseException:
        batch.abandon()
        raise
    return batch.finish()


class _Batch:
    """One delivery round: rows grouped by channel, one sending thread per channel, outcomes
    recorded by the caller's thread (the archive's one writer) as they come."""

    def __init__(
        self,
        archive: Storage,
        channels: Mapping[str, Channel],
        clock: Callable[[], datetime],
        senders: Mapping[str, Sender] | None,
        limit: int,
    ) -> None:
        self.archive, self.clock = archive, clock
        self.secrets = channel_secrets(channels)  # masked in the errors kept for `alerts`
        senders = senders if senders is not None else registry()
        self.report = DeliveryReport()
        release_orphans(archive, clock())  # alerts of passes whose process died
        make_digests(archive, clock)
        by_channel: dict[str, list[tuple[Delivery, Message]]] = {}
        for row in archive.due_deliveries(clock(), limit=limit):
            channel = channels.get(row.channel)
            if channel is None or channel.type not in senders:
                why = (
                    f"channel {row.channel!r} is not in the config any more; add it back "
                    "and run `newswatch alerts retry --failed`"
                    if channel is None
                    else f"channel type {channel.type!r} cannot send"
                )
                archive.mark_attempt_failed(row.id, clock(), why, None)
                log.error("delivery %s failed: %s", row.delivery, why)
                self.report.add(row, "failed")
                continue
            try:
                message = _message(archive, row)
            except Exception as exc:  # a vanished article must not stop the other rows
                error = f"{type(exc).__name__}: {exc}"
                archive.mark_attempt_failed(row.id, clock(), error, None)
                log.exception("delivery %s cannot be rendered", row.delivery)
                self.report.add(row, "failed")
                continue
            by_channel.setdefault(row.channel, []).append((row, message))

        self.outcomes: queue.Queue[_Outcome | None] = queue.Queue()
        self.abandoned = threading.Event()  # the recording side failed: send nothing more

        def work(channel: Channel, batch: list[tuple[Delivery, Message]]) -> None:
            send = senders[channel.type]
            try:
                for row, message in batch:
                    if self.abandoned.is_set():
                        return
                    try:
                        send(channel, message)
                    except Exception as exc:
                        outcome = _Outcome(row, exc)
                    else:
                        outcome = _Outcome(row, None)
                    self.outcomes.put(outcome)
                    while not outcome.recorded.wait(0.5):
                        if self.abandoned.is_set():
                            return
            finally:
                self.outcomes.put(None)

        self.threads = [
            threading.Thread(
                target=work, args=(channels[name], rows), name=f"deliver-{name}", daemon=True
            )
            for name, rows in by_channel.items()
        ]
        for thread in self.threads:
            thread.start()
        self.running = len(self.threads)

    def record(self, outcome: _Outcome | None) -> None:
        if outcome is None:
            self.running -= 1
            return
        self.report.add(outcome.row, _record(self.archive, outcome, self.clock, self.secrets))
        outcome.recorded.set()  # not when recording failed: then the batch is abandoned

    def abandon(self) -> None:
        """The recording side stopped (an archive error, a cancelled task): the channels'
        threads send nothing more; what they did not send stays due."""
        self.abandoned.set()

    def finish(self) -> DeliveryReport:
        for thread in self.threads:
            thread.join()
        return self.report


def _message(archive: Storage, row: Delivery) -> Message:
    payload = row.payload
    if payload is None:
        archive.set_payload(row.id, json.dumps(render(archive, row), ensure_ascii=False))
        payload = (archive.delivery(row.id) or row).payload
    if payload is None:
        raise LookupError(f"delivery {row.delivery} is no longer in the outbox")
    return Message(row.event, row.delivery, json.loads(payload), payload.encode("utf-8"))


def _record(
    archive: Storage, outcome: _Outcome, clock: Callable[[], datetime], secrets: tuple[str, ...]
) -> str:
    row, error = outcome.row, outcome.error
    now = clock()
    if error is None:
        archive.mark_sent(row.id, now)
        return "sent"
    if isinstance(error, DeliveryError):
        text = redact(str(error), secrets)
        when = retry_at(row.attempts + 1, now, row.expires, error.retry_after, random.random())
        archive.mark_attempt_failed(row.id, now, text, when)
        if when is None:
            log.error("delivery %s to %s failed for good: %s", row.delivery, row.channel, text)
            return "failed"
        log.warning(
            "delivery %s to %s will be retried at %s: %s",
            row.delivery,
            row.channel,
            iso(when),
            text,
        )
        return "retrying"
    # a bug in a sender: recorded on the row, never retried blindly
    text = redact(f"{type(error).__name__}: {error}", secrets)
    archive.mark_attempt_failed(row.id, now, text, None)
    log.error("delivery %s failed: %s", row.delivery, text)
    return "failed"
