"""The outbox: alerts queued (held by their pass until it ends), digests, deliveries and
their outcomes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from crawler.archive.postgres.base import PostgresBase, ts
from crawler.archive.rows import to_delivery, to_due_digest, to_pass
from crawler.decide.alerting import (
    RETRY_WINDOW,
    QueuedAlert,
    collapse,
    hold_until,
    hour_start,
    period_start,
)
from crawler.records import AlertIn, Delivery, DueDigest, Pass


class OutboxMixin(PostgresBase):
    def _queue_alert(
        self, alert: AlertIn, article_id: int, story_id: int, now: datetime, hold: str | None
    ) -> None:
        """Queue one alert, unless this rule already alerted this channel about the story.

        The story is looked up through the articles (a story can absorb another when a copy
        links them), so a rule alerts at most once per story. A rule with a digest, or past its
        `max_per_hour`, holds the alert for its digest (status 'held').
        """
        already = self._one(
            """SELECT 1 AS found FROM outbox o JOIN articles a ON a.id = o.article_id
               WHERE o.rule = %s AND o.channel = %s AND a.story_id = %s LIMIT 1""",
            (alert.rule, alert.channel, story_id),
        )
        if already is not None:
            return
        hour = hour_start(now)
        sent = self._one(
            """SELECT count(*) AS n FROM outbox WHERE rule = %s AND channel = %s
                   AND event = 'alert' AND hold_until IS NULL AND status != 'merged'
                   AND created >= %s""",
            (alert.rule, alert.channel, ts(hour)),
        )
        until = hold_until(now, alert.digest, alert.max_per_hour, int(sent["n"] if sent else 0))
        since = period_start(until, alert.digest) if until is not None else None
        self._execute(
            """INSERT INTO outbox (delivery, event, rule, channel, article_id, story_id,
                   matched, created, expires, next_attempt, status, hold_from, hold_until,
                   pass_id)
               VALUES (%s, 'alert', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT DO NOTHING""",
            (
                str(uuid.uuid4()),
                alert.rule,
                alert.channel,
                article_id,
                story_id,
                json.dumps(list(alert.matched)),
                ts(now),
                ts(now + RETRY_WINDOW),
                ts(now),
                "held" if until is not None else "pending",
                ts(since),
                ts(until),
                hold,
            ),
        )

    def begin_pass(self, owner: str, now: datetime, lease: timedelta) -> str:
        """A pass that holds the alerts it queues until `end_pass`; returns its id."""
        pass_id = str(uuid.uuid4())
        self._execute(
            "INSERT INTO passes (id, owner, started, lease_until) VALUES (%s, %s, %s, %s)",
            (pass_id, owner, ts(now), ts(now + lease)),
        )
        return pass_id

    def renew_pass(self, pass_id: str, now: datetime, lease: timedelta) -> None:
        self._execute(
            "UPDATE passes SET lease_until = %s WHERE id = %s", (ts(now + lease), pass_id)
        )

    def passes(self) -> list[Pass]:
        """The passes holding alerts, oldest first."""
        return [to_pass(row) for row in self._all("SELECT * FROM passes ORDER BY started, id")]

    def end_pass(self, pass_id: str) -> tuple[int, int]:
        """Release the alerts the pass held, one per (rule, channel, story) as the stories are
        now: the others become 'merged' into the one that stands for them (an alert of an
        earlier pass, if the story had one). Returns (released, merged)."""
        with self._transaction():
            held = [
                QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                for r in self._all(
                    """SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                       LEFT JOIN articles a ON a.id = o.article_id WHERE o.pass_id = %s
                       ORDER BY o.id""",
                    (pass_id,),
                )
            ]
            stories = sorted({a.story for a in held if a.story is not None})
            earlier = [
                QueuedAlert(r["id"], r["rule"], r["channel"], r["story_id"])
                for r in self._all(
                    """SELECT o.id, o.rule, o.channel, a.story_id FROM outbox o
                       JOIN articles a ON a.id = o.article_id
                       WHERE a.story_id = ANY(%s::bigint[]) AND o.event = 'alert'
                           AND o.pass_id IS NULL AND o.status != 'merged'
                       ORDER BY o.id""",
                    (stories,),
                )
            ]
            merged = collapse(held, earlier)
            for outbox_id, into in merged.items():
                self._execute(
                    "UPDATE outbox SET status = 'merged', merged_into = %s WHERE id = %s",
                    (into, outbox_id),
                )
            self._execute("UPDATE outbox SET pass_id = NULL WHERE pass_id = %s", (pass_id,))
            self._execute("DELETE FROM passes WHERE id = %s", (pass_id,))
        return len(held) - len(merged), len(merged)

    def due_digests(self, now: datetime) -> list[DueDigest]:
        """Held alerts whose period has closed, one group per (rule, channel, period)."""
        rows = self._all(
            """SELECT rule, channel, hold_from, hold_until, array_agg(id ORDER BY id) AS ids
               FROM outbox WHERE status = 'held' AND hold_until <= %s AND pass_id IS NULL
               GROUP BY rule, channel, hold_from, hold_until ORDER BY hold_until, rule""",
            (ts(now),),
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
        with self._transaction():
            row = self._one(
                """INSERT INTO outbox (delivery, event, rule, channel, payload, created, expires,
                       next_attempt)
                   VALUES (%s, 'digest', %s, %s, %s, %s, %s, %s) RETURNING id""",
                (delivery, rule, channel, payload, ts(now), ts(now + RETRY_WINDOW), ts(now)),
            )
            assert row is not None
            digest_id = int(row["id"])
            self._execute(
                "UPDATE outbox SET status = 'digested', digest_id = %s "
                "WHERE status = 'held' AND id = ANY(%s::bigint[])",
                (digest_id, list(member_ids)),
            )
            return digest_id

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._all(
            "SELECT * FROM outbox WHERE status = 'pending' AND next_attempt <= %s "
            "AND pass_id IS NULL ORDER BY next_attempt, id LIMIT %s",
            (ts(now), limit),
        )
        return [to_delivery(row) for row in rows]

    def delivery(self, outbox_id: int) -> Delivery | None:
        row = self._one("SELECT * FROM outbox WHERE id = %s", (outbox_id,))
        return to_delivery(row) if row is not None else None

    def set_payload(self, outbox_id: int, payload: str) -> None:
        """Freeze the body before the first send, so every retry sends the same bytes."""
        self._execute(
            "UPDATE outbox SET payload = %s WHERE id = %s AND payload IS NULL",
            (payload, outbox_id),
        )

    def mark_sent(self, outbox_id: int, now: datetime) -> None:
        self._execute(
            """UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent = %s,
                   last_attempt = %s, last_error = NULL WHERE id = %s""",
            (ts(now), ts(now), outbox_id),
        )

    def mark_attempt_failed(
        self, outbox_id: int, now: datetime, error: str, next_attempt: datetime | None
    ) -> None:
        """A failed send: retry at `next_attempt`, or give up (status failed) when it is None."""
        if next_attempt is None:
            self._execute(
                """UPDATE outbox SET status = 'failed', attempts = attempts + 1,
                       last_attempt = %s, last_error = %s WHERE id = %s""",
                (ts(now), error, outbox_id),
            )
        else:
            self._execute(
                """UPDATE outbox SET attempts = attempts + 1, last_attempt = %s,
                       last_error = %s, next_attempt = %s WHERE id = %s""",
                (ts(now), error, ts(next_attempt), outbox_id),
            )

    def retry_deliveries(self, now: datetime, ids: Sequence[int] | None) -> int:
        """Put failed deliveries back in the queue (all failed ones when `ids` is None).

        The retry window starts again from now; the delivery id stays the same.
        """
        times = (ts(now), ts(now + RETRY_WINDOW))
        if ids is None:
            return self._execute(
                "UPDATE outbox SET status = 'pending', next_attempt = %s, expires = %s "
                "WHERE status = 'failed'",
                times,
            )
        return self._execute(
            "UPDATE outbox SET status = 'pending', next_attempt = %s, expires = %s "
            "WHERE status = 'failed' AND id = ANY(%s::bigint[])",
            (*times, list(ids)),
        )

    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[Delivery]:
        """The outbox, newest first (those of one status, or all)."""
        if status:
            rows = self._all(
                "SELECT * FROM outbox WHERE status = %s ORDER BY id DESC LIMIT %s",
                (status, limit),
            )
        else:
            rows = self._all("SELECT * FROM outbox ORDER BY id DESC LIMIT %s", (limit,))
        return [to_delivery(row) for row in rows]
