"""Sources and their runs: conditional-GET validators, runs, health, due times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crawler.archive.postgres.base import PostgresBase, ts
from crawler.archive.rows import to_run, to_source_state, to_time
from crawler.decide.alerting import RETRY_WINDOW
from crawler.decide.urls import host_of
from crawler.records import Run, RunRecord, SourceState

LEASE_COLUMNS = ("lease_owner", "lease_token", "lease_until")  # claims.py's own columns


def _source_state(row: dict[str, Any]) -> SourceState:
    """A `sources` row as a record (the lease columns are the claims' own: not in it)."""
    return to_source_state(row)


class SourcesMixin(PostgresBase):
    def source_state(self, name: str) -> SourceState | None:
        row = self._one("SELECT * FROM sources WHERE name = %s", (name,))
        return _source_state(row) if row is not None else None

    def source_states(self) -> dict[str, SourceState]:
        return {row["name"]: _source_state(row) for row in self._all("SELECT * FROM sources")}

    def _ensure_source(self, name: str) -> None:
        self._execute(
            "INSERT INTO sources (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,)
        )

    def register_source(self, name: str, kind: str, url: str) -> None:
        with self._transaction():
            self._ensure_source(name)
            self._execute(
                """UPDATE sources SET kind = %s, url = %s, host = %s,
                       -- a changed URL is a new source: due now
                       next_due = CASE WHEN url = %s THEN next_due END
                   WHERE name = %s""",
                (kind, url, host_of(url), url, name),
            )

    def save_validators(
        self, name: str, etag: str | None, last_modified: str | None, body_hash: str | None
    ) -> None:
        """Remember what the next conditional GET sends (only after the body was processed)."""
        with self._transaction():
            self._ensure_source(name)
            self._execute(
                "UPDATE sources SET etag = %s, last_modified = %s, body_hash = %s WHERE name = %s",
                (etag, last_modified, body_hash, name),
            )

    def record_run(self, run: RunRecord, next_due: datetime | None) -> None:
        """Store one pass of one source and update its health."""
        failed = run.status == "error"
        finished = run.finished or run.started
        with self._transaction():
            self._ensure_source(run.source)
            self._execute(
                """INSERT INTO runs (source, started, finished, status, http_status, fetched,
                       new, seen, off_topic, errors, error_class, error, warning, duration, pages,
                       node)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                (
                    run.source,
                    ts(run.started),
                    ts(finished),
                    run.status,
                    run.http_status,
                    run.fetched,
                    run.new,
                    run.seen,
                    run.off_topic,
                    run.errors,
                    run.error_class,
                    run.error,
                    run.warning,
                    round((finished - run.started).total_seconds(), 3),
                    run.pages,
                    run.node,
                ),
            )
            self._execute(
                "UPDATE sources SET not_before = %s WHERE name = %s",
                (ts(run.not_before), run.source),
            )
            if failed:
                self._execute(
                    """UPDATE sources SET last_run = %s, last_status = %s, last_error = %s,
                           last_error_class = %s, consecutive_failures = consecutive_failures + 1,
                           next_due = %s WHERE name = %s""",
                    (
                        ts(run.started),
                        run.status,
                        run.error,
                        run.error_class,
                        ts(next_due),
                        run.source,
                    ),
                )
            else:
                self._execute(
                    """UPDATE sources SET last_run = %s, last_success = %s, last_status = %s,
                           last_warning = %s, consecutive_failures = 0, next_due = %s
                       WHERE name = %s""",
                    (
                        ts(run.started),
                        ts(finished),
                        run.status,
                        run.warning,
                        ts(next_due),
                        run.source,
                    ),
                )

    def runs(self, source: str | None = None, limit: int = 100) -> list[Run]:
        """The latest runs, newest first (of one source, or of all)."""
        if source:
            rows = self._all(
                "SELECT * FROM runs WHERE source = %s ORDER BY id DESC LIMIT %s", (source, limit)
            )
        else:
            rows = self._all("SELECT * FROM runs ORDER BY id DESC LIMIT %s", (limit,))
        return [to_run(row) for row in rows]

    def last_runs(self) -> dict[str, Run]:
        """The latest run of each source."""
        rows = self._all(
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY source)"
        )
        return {row["source"]: to_run(row) for row in rows}

    def recent_first_seen(self, source: str, limit: int = 20) -> list[datetime]:
        """When the source's latest new articles arrived (for its learned cadence)."""
        rows = self._all(
            "SELECT first_seen FROM articles WHERE source = %s ORDER BY first_seen DESC LIMIT %s",
            (source, limit),
        )
        return [to_time(row["first_seen"]) for row in rows]

    def set_health(
        self, source: str, state: str, now: datetime, notices: Sequence[tuple[str, str, str]]
    ) -> bool:
        """Record a source's health state and queue its notices, together; only if the state
        recorded is another (False: it already is `state`, so another process or node
        recorded this change and queued its notices: a change gives its notices once).

        `notices`: (channel, delivery id, payload JSON) for each `[health] notify` channel.
        """
        with self._transaction():
            self._ensure_source(source)
            changed = self._execute(
                "UPDATE sources SET health_state = %s, health_since = %s "
                "WHERE name = %s AND health_state IS DISTINCT FROM %s",
                (state, ts(now), source, state),
            )
            if not changed:
                return False
            for channel, delivery, payload in notices:
                self._execute(
                    """INSERT INTO outbox (delivery, event, channel, payload, created, expires,
                           next_attempt) VALUES (%s, 'source-health', %s, %s, %s, %s, %s)""",
                    (delivery, channel, payload, ts(now), ts(now + RETRY_WINDOW), ts(now)),
                )
        return True

    def articles_since(self, since: datetime) -> dict[str, int]:
        """Articles first seen since `since`, per source."""
        rows = self._all(
            "SELECT source, count(*) AS n FROM articles WHERE first_seen >= %s GROUP BY source",
            (ts(since),),
        )
        return {row["source"]: int(row["n"]) for row in rows}
