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

SLOT_MEMORY = timedelta(days=7)  # how long a claimed period slot is remembered


def _fence(token: str | None) -> tuple[str, tuple[str, ...]]:
    return (" AND lease_token = %s", (token,)) if token is not None else ("", ())


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
    ) -> int | None:
        """Queue one digest delivery for the held alerts `member_ids`, in one transaction;
        its id, or None when another node made this digest first (none of the alerts was
        still held: the second transaction waits on the rows' locks, then finds them
        digested). A digest is made once however many nodes try."""
        with self._transaction() as conn:
            row = conn.execute(
                """INSERT INTO outbox (delivery, event, rule, channel, payload, created, expires,
                       next_attempt)
                   VALUES (%s, 'digest', %s, %s, %s, %s, %s, %s) RETURNING id""",
                (delivery, rule, channel, payload, ts(now), ts(now + RETRY_WINDOW), ts(now)),
            ).fetchone()
            assert row is not None
            digest_id = int(row["id"])
            taken = conn.execute(
                "UPDATE outbox SET status = 'digested', digest_id = %s "
                "WHERE status = 'held' AND id = ANY(%s::bigint[])",
                (digest_id, list(member_ids)),
            ).rowcount
            if not taken:
                conn.execute("DELETE FROM outbox WHERE id = %s", (digest_id,))
                return None
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

    def claim_deliveries(
        self, owner: str, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]:
        """Lease up to `limit` due rows (pending, `next_attempt` passed, no pass holding them)
        that no node holds (or whose lease ran out) to `owner`, under one new token (each
        row's `lease_token`), in one statement (``FOR UPDATE SKIP LOCKED``: two nodes never
        wait for each other nor get the same row). Lease times are the database's now()."""
        rows = self._all(
            """UPDATE outbox SET lease_owner = %s, lease_token = %s, lease_until = now() + %s
               WHERE id IN (
                   SELECT id FROM outbox
                   WHERE status = 'pending' AND next_attempt <= %s AND pass_id IS NULL
                       AND (lease_until IS NULL OR lease_until <= now())
                   ORDER BY next_attempt, id LIMIT %s
                   FOR UPDATE SKIP LOCKED)
               RETURNING *""",
            (owner, str(uuid.uuid4()), lease, ts(now), limit),
        )
        deliveries = [to_delivery(row) for row in rows]
        return sorted(deliveries, key=lambda d: (d.next_attempt, d.id))

    def renew_deliveries(self, token: str, lease: timedelta) -> int:
        """Extend the leases of the rows still claimed under `token`; how many."""
        return self._execute(
            "UPDATE outbox SET lease_until = now() + %s WHERE lease_token = %s", (lease, token)
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
        return self._execute(
            "UPDATE outbox SET lease_owner = NULL, lease_token = NULL, lease_until = NULL "
            "WHERE lease_token = %s",
            (token,),
        )

    def mark_sent(self, outbox_id: int, now: datetime, token: str | None = None) -> bool:
        """The row was sent. With `token`: only while the row is still claimed under it (a
        node whose lease was taken over records nothing); True if recorded."""
        fence, params = _fence(token)
        return (
            self._execute(
                f"""UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent = %s,
                       last_attempt = %s, last_error = NULL, lease_owner = NULL,
                       lease_token = NULL, lease_until = NULL WHERE id = %s{fence}""",
                (ts(now), ts(now), outbox_id, *params),
            )
            > 0
        )

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
        return (
            self._execute(
                f"""UPDATE outbox SET status = {status}, attempts = attempts + 1,
                       last_attempt = %s, last_error = %s,
                       next_attempt = coalesce(%s, next_attempt),
                       lease_owner = NULL, lease_token = NULL, lease_until = NULL
                   WHERE id = %s{fence}""",
                (ts(now), error, ts(next_attempt), outbox_id, *params),
            )
            > 0
        )

    def claim_slot(self, job: str, period: str, owner: str, now: datetime) -> bool:
        """Claim `job`'s run for `period` (a once-per-period job: pruning, health notices);
        True for the one node that got it (``INSERT ... ON CONFLICT DO NOTHING RETURNING``).
        Slots older than a week are forgotten."""
        with self._transaction():
            self._execute(
                "DELETE FROM period_slots WHERE job = %s AND claimed < %s",
                (job, ts(now - SLOT_MEMORY)),
            )
            row = self._one(
                """INSERT INTO period_slots (job, period, owner, claimed)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING owner""",
                (job, period, owner, ts(now)),
            )
        return row is not None

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
