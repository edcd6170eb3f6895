"""Delivering the outbox: every due row goes to its channel; the archive keeps the state.

- The payload is rendered and stored BEFORE the first send, so every retry sends the same
  bytes under the same delivery id.
- Each channel sends from its own worker thread, so a slow or dead channel never delays the
  others; the archive is written only from the calling thread (one writer), each outcome as
  soon as it is known. A process killed mid-batch loses nothing: a row is 'sent' only after
  its send returned, so on restart only the sends that were in flight may repeat.
- A failed send is retried with backoff and jitter, honouring Retry-After, for 24 hours.
- Several processes (or nodes) deliver one archive side by side: a round claims its rows with
  a lease (`DELIVERY_LEASE`, renewed while it sends) and records each outcome only under the
  claim's token, so each row is sent by one of them; a process killed mid-round leaves its
  rows to be taken over once the lease ran out (only the sends then in flight may repeat,
  under the same delivery id for receivers to drop).
- Alerts a pass holds until it ends (scheduler.service.holds) are not due before; those of a pass
  whose process died are released first.
- Held alerts (a rule's digest, or past its `max_per_hour`) become one digest delivery per
  rule, channel and period once the period has closed (`make_digests`), once however many
  processes try (`add_digest` answers None to the second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crawler.archive import Storage, StorageError
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
from scheduler.service.holds import owner_here, release_dead_claims, release_orphans
from scheduler.service.schedule import retry_at

log = logging.getLogger(__name__)

# A round's claim on its rows: renewed every third of it while the round runs, so it runs out
# only when the process stopped (then another process takes the rows over).
DELIVERY_LEASE = timedelta(minutes=2)


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
        digest_id = archive.add_digest(
            group.rule,
            group.channel,
            delivery,
            json.dumps(payload, ensure_ascii=False),
            group.ids,
            clock(),
        )
        made += digest_id is not None  # None: another process made this digest first
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
    lease: timedelta = DELIVERY_LEASE,
    owner: str | None = None,
) -> DeliveryReport:
    """Make the digests that are due, then claim and send the due rows; what happened."""
    batch = _Batch(archive, channels, clock, senders, limit, lease, owner)
    try:
        while batch.running:
            batch.record(batch.take())
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
    lease: timedelta = DELIVERY_LEASE,
    owner: str | None = None,
) -> DeliveryReport:
    """`deliver_due` for the service: the event loop keeps running while channels send."""
    batch = _Batch(archive, channels, clock, senders, limit, lease, owner)
    try:
        while batch.running:
            batch.record(await asyncio.to_thread(batch.take))
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
        lease: timedelta,
        owner: str | None,
    ) -> None:
        self.archive, self.clock, self.lease = archive, clock, lease
        self.secrets = channel_secrets(channels)  # masked in the errors kept for `alerts`
        senders = senders if senders is not None else registry()
        self.report = DeliveryReport()
        release_orphans(archive, clock())  # alerts of passes whose process died
        release_dead_claims(archive)  # deliveries claimed by a round whose process died
        make_digests(archive, clock)
        by_channel: dict[str, list[tuple[Delivery, Message]]] = {}
        rows = archive.claim_deliveries(owner or owner_here(), clock(), lease, limit=limit)
        self.token = rows[0].lease_token if rows else None
        self.renewed = time.monotonic()
        try:
            for row in rows:
                channel = channels.get(row.channel)
                if channel is None or channel.type not in senders:
                    why = (
                        f"channel {row.channel!r} is not in the config any more; add it back "
                        "and run `newswatch alerts retry --failed`"
                        if channel is None
                        else f"channel type {channel.type!r} cannot send"
                    )
                    archive.mark_attempt_failed(row.id, clock(), why, None, self.token)
                    log.error("delivery %s failed: %s", row.delivery, why)
                    self.report.add(row, "failed")
                    continue
                try:
                    message = _message(archive, row)
                except Exception as exc:  # a vanished article must not stop the other rows
                    error = f"{type(exc).__name__}: {exc}"
                    archive.mark_attempt_failed(row.id, clock(), error, None, self.token)
                    log.exception("delivery %s cannot be rendered", row.delivery)
                    self.report.add(row, "failed")
                    continue
                by_channel.setdefault(row.channel, []).append((row, message))
        except BaseException:  # an archive error: the rows claimed go back now
            self._give_back()
            raise

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

    def take(self) -> _Outcome | bool | None:
        """The next outcome (None: a channel's thread ended), or False when none came for a
        while (then `record` renews the claim)."""
        wait = max(0.1, self.lease.total_seconds() / 3 - (time.monotonic() - self.renewed))
        try:
            return self.outcomes.get(timeout=wait)
        except queue.Empty:
            return False

    def record(self, outcome: _Outcome | bool | None) -> None:
        if time.monotonic() - self.renewed >= self.lease.total_seconds() / 3:
            self._renew()
        if isinstance(outcome, bool):
            return
        if outcome is None:
            self.running -= 1
            return
        status = _record(self.archive, outcome, self.clock, self.secrets, self.token)
        self.report.add(outcome.row, status)
        outcome.recorded.set()  # not when recording failed: then the batch is abandoned

    def _renew(self) -> None:
        self.renewed = time.monotonic()
        if self.token is not None:
            self.archive.renew_deliveries(self.token, self.lease)

    def abandon(self) -> None:
        """The recording side stopped (an archive error, a cancelled task): the channels'
        threads send nothing more; what they did not send stays due (given back at once if
        the archive still answers, else once the lease ran out)."""
        self.abandoned.set()
        self._give_back()

    def _give_back(self) -> None:
        """Release the rows still claimed, if the archive answers (else their lease runs out)."""
        if self.token is not None:
            try:
                self.archive.release_deliveries(self.token)
            except StorageError:
                log.warning("the unsent deliveries are given back when their lease runs out")

    def finish(self) -> DeliveryReport:
        for thread in self.threads:
            thread.join()
        if self.token is not None:
            self.archive.release_deliveries(self.token)  # none left, unless one was skipped
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
    archive: Storage,
    outcome: _Outcome,
    clock: Callable[[], datetime],
    secrets: tuple[str, ...],
    token: str | None,
) -> str:
    row, error = outcome.row, outcome.error
    now = clock()
    if error is None:
        if not archive.mark_sent(row.id, now, token):
            log.warning(
                "delivery %s was sent after its claim ran out; another process had taken it "
                "over (receivers drop the repeat by its delivery id)",
                row.delivery,
            )
        return "sent"
    if isinstance(error, DeliveryError):
        text = redact(str(error), secrets)
        when = retry_at(row.attempts + 1, now, row.expires, error.retry_after, random.random())
        archive.mark_attempt_failed(row.id, now, text, when, token)
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
    archive.mark_attempt_failed(row.id, now, text, None, token)
    log.error("delivery %s failed: %s", row.delivery, text)
    return "failed"
