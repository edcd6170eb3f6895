"""The outbox: alerts queued (held by their pass until it ends), digests, deliveries and
their outcomes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta

from crawler.archive.rows import to_delivery, to_due_digest, to_pass
from crawler.archive.sqlite.base import SqliteBase
from crawler.clock import iso, iso_or_none
from crawler.decide.alerting import (
    RETRY_WINDOW,
    QueuedAlert,
    collapse,
    hold_until,
    hour_start,
    period_start,
)
from crawler.records import AlertIn, Delivery, DueDigest, Pass

SLOT_MEMORY = timedelta(days=7)  # how long a claimed period slot is remembered
_NOW = "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"


def _seconds(lease: timedelta) -> int:
    return max(1, int(lease.total_seconds() + 0.999))


def _fence(token: str | None) -> tuple[str, tuple[str, ...]]:
    return (" AND lease_token = ?", (token,)) if token is not None else ("", ())


class OutboxMixin(SqliteBase):
    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A transaction that takes the write lock at once (BEGIN IMMEDIATE): what it reads
        no other process changes before it commits. Nested: a savepoint of the outer one."""
        if self.db.conn.in_transaction:
            with self.db.atomic():
                yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _queue_alert(
        self, alert: AlertIn, article_id: int, story_id: int, now: datetime, hold: str | None
    ) -> None:
        """Queue one alert, unless this rule already alerted this channel about the story.

        The story is looked up through the articles (a story can absorb another when a copy
        links them), so a rule alerts at most once per story. A rule with a digest, or past its
        `max_per_hour`, holds the alert for its digest (status 'held').
        """
        already = self._one(
            """SELECT 1 FROM outbox o JOIN articles a ON a.id = o.article_id
               WHERE o.rule = ? AND o.channel = ? AND a.story_id = ? LIMIT 1""",
            (alert.rule, alert.channel, story_id),
        )
        if already is not None:
            return
        hour = hour_start(now)
        sent = self.db.execute(
            """SELECT count(*) FROM outbox WHERE rule = ? AND channel = ? AND event = 'alert'
                   AND hold_until IS NULL AND status != 'merged' AND created >= ?""",
            (alert.rule, alert.channel, iso(hour)),
        ).fetchone()[0]
        until = hold_until(now, alert.digest, alert.max_per_hour, int(sent))
        since = period_start(until, alert.digest) if until is not None else None
        self.db.execute(
            """INSERT OR IGNORE INTO outbox (delivery, event, rule, channel, article_id, story_id,
                   matched, created, expires, next_attempt, status, hold_from, hold_until,
                   pass_id)
               VALUES (?, 'alert', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                str(uuid.uuid4()),
                alert.rule,
                alert.channel,
                article_id,
                story_id,
                json.dumps(list(alert.matched)),
                iso(now),
                iso(now + RETRY_WINDOW),
                iso(now),
                "held" if until is not None else "pending",
                iso(since) if since is not None else None,
                iso(until) if until is not None else None,
                hold,
            ),
        )

    def begin_pass(self, owner: str, now: datetime, lease: timedelta) -> str:
        """A pass that holds the alerts it queues until `end_pass`; returns its id."""
        pass_id = str(uuid.uuid4())
        with self.transaction():
            self.db.execute(
                "INSERT INTO passes (id, owner, started, lease_until) VALUES (?, ?, ?, ?)",
                (pass_id, owner, iso(now), iso(now + lease)),
            )
        return pass_id

    def renew_pass(self, pass_id: str, now: datetime, lease: timedelta) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE passes SET lease_until = ? WHERE id = ?", (iso(now + lease), pass_id)
            )

    def passes(self) -> list[Pass]:
        """The passes holding alerts, oldest first."""
        return [to_pass(row) for row in self._all("SELECT * FROM passes ORDER BY started")]

    def end_pass(self, pass_id: str) -> tuple[int, int]:
        """Release the alerts the pass held, one per (rule, channel, story) as the stories are
        now: the others become 'merged' into the one that stands for them (an alert of an
        earlier pass, if the story had one). Returns (released, merged)."""
        with self.transaction():
            held = [
                QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                for r in self._all(
                    """SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                       LEFT JOIN articles a ON a.id = o.article_id WHERE o.pass_id = ?""",
                    (pass_id,),
                )
            ]
            stories = sorted({a.story for a in held if a.story is not None})
            earlier: list[QueuedAlert] = []
            for start in range(0, len(stories), 500):
                chunk = stories[start : start + 500]
                marks = ",".join("?" for _ in chunk)
                earlier += [
                    QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                    for r in self._all(
                        f"""SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                            JOIN articles a ON a.id = o.article_id
                            WHERE a.story_id IN ({marks}) AND o.event = 'alert'
                                AND o.pass_id IS NULL AND o.status != 'merged'""",
                        chunk,
                    )
                ]
            merged = collapse(held, earlier)
            self.db.conn.executemany(
                "UPDATE outbox SET status = 'merged', merged_into = ? WHERE id = ?",
                [(into, outbox_id) for outbox_id, into in merged.items()],
            )
            self.db.execute("UPDATE outbox SET pass_id = NULL WHERE pass_id = ?", (pass_id,))
            self.db.execute("DELETE FROM passes WHERE id = ?", (pass_id,))
        return len(held) - len(merged), len(merged)

    def due_digests(self, now: datetime) -> list[DueDigest]:
        """Held alerts whose period has closed, one group per (rule, channel, period)."""
        rows = self._all(
            """SELECT rule, channel, hold_from, hold_until, group_concat(id) AS ids
               FROM outbox WHERE status = 'held' AND hold_until <= ? AND pass_id IS NULL
               GROUP BY rule, channel, hold_from, hold_until ORDER BY hold_until, rule""",
            (iso(now),),
        )
        return [to_due_digest(row) for row in rows]

    def add_digest(
        self,
        rule: str,
        channel: str,
        delivery: str,
        payload: str,
        member_ids: Sequence[int],
        now: datetime,
    ) -> int | None:
        """Queue one digest delivery for the held alerts `member_ids`, in one transaction;
        its id, or None when another process made this digest first (none of the alerts was
        still held): a digest is made once however many processes try."""
        with self._immediate():
            cursor = self.db.execute(
                """INSERT INTO outbox (delivery, event, rule, channel, payload, created, expires,
                       next_attempt)
                   VALUES (?, 'digest', ?, ?, ?, ?, ?, ?)""",
                (delivery, rule, channel, payload, iso(now), iso(now + RETRY_WINDOW), iso(now)),
            )
            digest_id = int(cursor.lastrowid or 0)
            marks = ",".join("?" for _ in member_ids)
            taken = self.db.execute(
                f"UPDATE outbox SET status = 'digested', digest_id = ? "
                f"WHERE status = 'held' AND id IN ({marks})",
                (digest_id, *member_ids),
            ).rowcount
            if not taken:
                self.db.execute("DELETE FROM outbox WHERE id = ?", (digest_id,))
                return None
            return digest_id

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt <= ? "
            "AND pass_id IS NULL ORDER BY next_attempt, id LIMIT ?",
            (iso(now), limit),
        )
        return [to_delivery(row) for row in rows]

    def delivery(self, outbox_id: int) -> Delivery | None:
        row = self._one("SELECT * FROM outbox WHERE id = ?", (outbox_id,))
        return to_delivery(row) if row is not None else None

    def set_payload(self, outbox_id: int, payload: str) -> None:
        """Freeze the body before the first send, so every retry sends the same bytes."""
        with self.transaction():
            self.db.execute(
                "UPDATE outbox SET payload = ? WHERE id = ? AND payload IS NULL",
                (payload, outbox_id),
            )

    def claim_deliveries(
        self, owner: str, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]:
        """Lease up to `limit` due rows (pending, `next_attempt` passed, no pass holding them)
        that no process holds (or whose lease ran out) to `owner`, under one new token (each
        row's `lease_token`); the rows, in the order `due_deliveries` gives. Under BEGIN
        IMMEDIATE, so two processes never get the same row. Lease times are this machine's
        clock (``'now'``), as for every process on one SQLite file."""
        token = str(uuid.uuid4())
        with self._immediate():
            rows = self._all(
                f"""UPDATE outbox SET lease_owner = ?, lease_token = ?,
                       lease_until = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?)
                   WHERE id IN (
                       SELECT id FROM outbox
                       WHERE status = 'pending' AND next_attempt <= ? AND pass_id IS NULL
                           AND (lease_until IS NULL OR lease_until <= {_NOW})
                       ORDER BY next_attempt, id LIMIT ?)
                   RETURNING *""",
                (owner, token, f"+{_seconds(lease)} seconds", iso(now), limit),
            )
        deliveries = [to_delivery(row) for row in rows]
        return sorted(deliveries, key=lambda d: (d.next_attempt, d.id))

    def renew_deliveries(self, token: str, lease: timedelta) -> int:
        """Extend the leases of the rows still claimed under `token`; how many."""
        with self._immediate():
            return int(
                self.db.execute(
                    "UPDATE outbox SET lease_until = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', ?) "
                    "WHERE lease_token = ?",
                    (f"+{_seconds(lease)} seconds", token),
                ).rowcount
            )

    def delivery_claims(self) -> list[tuple[str, str]]:
        """The claims on outbox rows that are held: (owner, token) each, oldest first."""
        rows = self._all(
            "SELECT lease_owner, lease_token, min(id) AS first FROM outbox "
            "WHERE lease_token IS NOT NULL GROUP BY lease_owner, lease_token ORDER BY first"
        )
        return [(str(r["lease_owner"]), str(r["lease_token"])) for r in rows]

    def release_deliveries(self, token: str) -> int:
        """Give back the rows still claimed under `token`, unsent (they stay due)."""
        with self._immediate():
            return int(
                self.db.execute(
                    "UPDATE outbox SET lease_owner = NULL, lease_token = NULL, "
                    "lease_until = NULL WHERE lease_token = ?",
                    (token,),
                ).rowcount
            )

    def mark_sent(self, outbox_id: int, now: datetime, token: str | None = None) -> bool:
        """The row was sent. With `token`: only while the row is still claimed under it (a
        process whose lease was taken over records nothing); True if recorded."""
        fence, params = _fence(token)
        with self._immediate():
            cursor = self.db.execute(
                f"""UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent = ?,
                       last_attempt = ?, last_error = NULL, lease_owner = NULL,
                       lease_token = NULL, lease_until = NULL WHERE id = ?{fence}""",
                (iso(now), iso(now), outbox_id, *params),
            )
            return cursor.rowcount > 0

    def mark_attempt_failed(
        self,
        outbox_id: int,
        now: datetime,
        error: str,
        next_attempt: datetime | None,
        token: str | None = None,
    ) -> bool:
        """A failed send: retry at `next_attempt`, or give up (status failed) when it is None.
        With `token`, only while the row is still claimed under it; True if recorded."""
        fence, params = _fence(token)
        status = "'failed'" if next_attempt is None else "status"
        with self._immediate():
            cursor = self.db.execute(
                f"""UPDATE outbox SET status = {status}, attempts = attempts + 1,
                       last_attempt = ?, last_error = ?, next_attempt = coalesce(?, next_attempt),
                       lease_owner = NULL, lease_token = NULL, lease_until = NULL
                   WHERE id = ?{fence}""",
                (iso(now), error, iso_or_none(next_attempt), outbox_id, *params),
            )
            return cursor.rowcount > 0

    def claim_slot(self, job: str, period: str, owner: str, now: datetime) -> bool:
        """Claim `job`'s run for `period` (a once-per-period job: pruning, health notices);
        True for the one process that got it. Slots older than a week are forgotten."""
        with self._immediate():
            self.db.execute(
                "DELETE FROM period_slots WHERE job = ? AND claimed < ?",
                (job, iso(now - SLOT_MEMORY)),
            )
            row = self._one(
                """INSERT INTO period_slots (job, period, owner, claimed) VALUES (?, ?, ?, ?)
                   ON CONFLICT DO NOTHING RETURNING owner""",
                (job, period, owner, iso(now)),
            )
            return row is not None

    def retry_deliveries(self, now: datetime, ids: Sequence[int] | None) -> int:
        """Put failed deliveries back in the queue (all failed ones when `ids` is None).

        The retry window starts again from now; the delivery id stays the same.
        """
        times = (iso(now), iso(now + RETRY_WINDOW))
        with self.transaction():
            if ids is None:
                cursor = self.db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt = ?, expires = ? "
                    "WHERE status = 'failed'",
                    times,
                )
            else:
                marks = ",".join("?" for _ in ids)
                cursor = self.db.execute(
                    "UPDATE outbox SET status = 'pending', next_attempt = ?, expires = ? "
                    f"WHERE status = 'failed' AND id IN ({marks})",
                    (*times, *ids),
                )
            return int(cursor.rowcount)

    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[Delivery]:
        """The outbox, newest first (those of one status, or all)."""
        if status:
            rows = self._all(
                "SELECT * FROM outbox WHERE status = ? ORDER BY id DESC LIMIT ?", (status, limit)
            )
        else:
            rows = self._all("SELECT * FROM outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [to_delivery(row) for row in rows]
