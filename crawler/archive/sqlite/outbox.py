"""The outbox: alerts queued (held by their pass until it ends), digests, deliveries and
their outcomes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from crawler.archive.rows import to_delivery, to_due_digest, to_pass
from crawler.archive.sqlite.base import SqliteBase
from crawler.clock import iso
from crawler.decide.alerting import (
    RETRY_WINDOW,
    QueuedAlert,
    collapse,
    hold_until,
    hour_start,
    period_start,
)
from crawler.records import AlertIn, Delivery, DueDigest, Pass


class OutboxMixin(SqliteBase):
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
    ) -> int:
        """Queue one digest delivery for the held alerts `member_ids`, in one transaction."""
        with self.transaction():
            cursor = self.db.execute(
                """INSERT INTO outbox (delivery, event, rule, channel, payload, created, expires,
                       next_attempt)
                   VALUES (?, 'digest', ?, ?, ?, ?, ?, ?)""",
                (delivery, rule, channel, payload, iso(now), iso(now + RETRY_WINDOW), iso(now)),
            )
            digest_id = int(cursor.lastrowid or 0)
            marks = ",".join("?" for _ in member_ids)
            self.db.execute(
                f"UPDATE outbox SET status = 'digested', digest_id = ? "
                f"WHERE status = 'held' AND id IN ({marks})",
                (digest_id, *member_ids),
            )
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

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        with self.transaction():
            self.db.execute(
                """UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent = ?,
                       last_attempt = ?, last_error = NULL WHERE id = ?""",
                (iso(now), iso(now), outbox_id),
            )

    def mark_attempt_failed(
        self, outbox_id: int, now: datetime, error: str, next_attempt: datetime | None
    ) -> None:
        """A failed send: retry at `next_attempt`, or give up (status failed) when it is None."""
        with self.transaction():
            if next_attempt is None:
                self.db.execute(
                    """UPDATE outbox SET status = 'failed', attempts = attempts + 1,
                           last_attempt = ?, last_error = ? WHERE id = ?""",
                    (iso(now), error, outbox_id),
                )
            else:
                self.db.execute(
                    """UPDATE outbox SET attempts = attempts + 1, last_attempt = ?,
                           last_error = ?, next_attempt = ? WHERE id = ?""",
                    (iso(now), error, iso(next_attempt), outbox_id),
                )

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
