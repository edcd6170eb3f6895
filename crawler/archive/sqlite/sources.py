"""Sources and their runs: conditional-GET validators, runs, health, due times."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from crawler.archive.rows import to_run, to_source_state, to_time
from crawler.archive.sqlite.base import SqliteBase
from crawler.clock import iso
from crawler.decide.alerting import (
    RETRY_WINDOW,
)
from crawler.decide.urls import host_of
from crawler.records import Run, RunRecord, SourceState


class SourcesMixin(SqliteBase):
    def source_state(self, name: str) -> SourceState | None:
        row = self._one("SELECT * FROM sources WHERE name = ?", (name,))
        return to_source_state(row) if row is not None else None

    def source_states(self) -> dict[str, SourceState]:
        return {row["name"]: to_source_state(row) for row in self._all("SELECT * FROM sources")}

    def _ensure_source(self, name: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO sources (name) VALUES (?)", (name,))

    def register_source(self, name: str, kind: str, url: str) -> None:
        with self.transaction():
            self._ensure_source(name)
            self.db.execute(
                """UPDATE sources SET kind = ?, url = ?, host = ?,
                       -- a changed URL is a new source: due now
                       next_due = CASE WHEN url = ? THEN next_due END
                   WHERE name = ?""",
                (kind, url, host_of(url), url, name),
            )

    def save_validators(
        self, name: str, etag: str | None, last_modified: str | None, body_hash: str | None
    ) -> None:
        """Remember what the next conditional GET sends (only after the body was processed)."""
        with self.transaction():
            self._ensure_source(name)
            self.db.execute(
                "UPDATE sources SET etag = ?, last_modified = ?, body_hash = ? WHERE name = ?",
                (etag, last_modified, body_hash, name),
            )

    def record_run(self, run: RunRecord, next_due: datetime | None) -> None:
        """Store one pass of one source and update its health."""
        failed = run.status == "error"
        finished = run.finished or run.started
        with self.transaction():
            self._ensure_source(run.source)
            self.db.execute(
                """INSERT INTO runs (source, started, finished, status, http_status, fetched, new,
                       seen, off_topic, errors, error_class, error, warning, duration, pages, node)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    run.source,
                    iso(run.started),
                    iso(finished),
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
            self.db.execute(
                "UPDATE sources SET not_before = ? WHERE name = ?",
                (iso(run.not_before) if run.not_before else None, run.source),
            )
            if failed:
                self.db.execute(
                    """UPDATE sources SET last_run = ?, last_status = ?, last_error = ?,
                           last_error_class = ?, consecutive_failures = consecutive_failures + 1,
                           next_due = ? WHERE name = ?""",
                    (
                        iso(run.started),
                        run.status,
                        run.error,
                        run.error_class,
                        iso(next_due) if next_due else None,
                        run.source,
                    ),
                )
            else:
                self.db.execute(
                    """UPDATE sources SET last_run = ?, last_success = ?, last_status = ?,
                           last_warning = ?, consecutive_failures = 0, next_due = ?
                       WHERE name = ?""",
                    (
                        iso(run.started),
                        iso(finished),
                        run.status,
                        run.warning,
                        iso(next_due) if next_due else None,
                        run.source,
                    ),
                )

    def runs(self, source: str | None = None, limit: int = 100) -> list[Run]:
        """The latest runs, newest first (of one source, or of all)."""
        if source:
            rows = self._all(
                "SELECT * FROM runs WHERE source = ? ORDER BY id DESC LIMIT ?", (source, limit)
            )
        else:
            rows = self._all("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))
        return [to_run(row) for row in rows]

    def last_runs(self) -> dict[str, Run]:
        """The latest run of each source."""
        rows = self._all(
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs GROUP BY source)"
        )
        return {row["source"]: to_run(row) for row in rows}

    def recent_first_seen(self, source: str, limit: int = 20) -> list[datetime]:
        """When the source's latest new articles arrived (for its learned cadence)."""
        rows = self.db.execute(
            "SELECT first_seen FROM articles WHERE source = ? ORDER BY first_seen DESC LIMIT ?",
            (source, limit),
        ).fetchall()
        return [to_time(r[0]) for r in rows]

    def set_health(
        self, source: str, state: str, now: datetime, notices: Sequence[tuple[str, str, str]]
    ) -> bool:
        """Record a source's health state and queue its notices, together; only if the state
        recorded is another (False: it already is `state`, so another process or node
        recorded this change and queued its notices: a change gives its notices once).

        `notices`: (channel, delivery id, payload JSON) for each `[health] notify` channel.
        """
        with self.transaction():
            self._ensure_source(source)
            changed = self.db.execute(
                "UPDATE sources SET health_state = ?, health_since = ? "
                "WHERE name = ? AND health_state IS NOT ?",
                (state, iso(now), source, state),
            ).rowcount
            if not changed:
                return False
            for channel, delivery, payload in notices:
                self.db.execute(
                    """INSERT INTO outbox (delivery, event, channel, payload, created, expires,
                           next_attempt) VALUES (?, 'source-health', ?, ?, ?, ?, ?)""",
                    (delivery, channel, payload, iso(now), iso(now + RETRY_WINDOW), iso(now)),
                )
        return True

    def articles_since(self, since: datetime) -> dict[str, int]:
        """Articles first seen since `since`, per source."""
        rows = self._all(
            "SELECT source, count(*) AS n FROM articles WHERE first_seen >= ? GROUP BY source",
            (iso(since),),
        )
        return {row["source"]: row["n"] for row in rows}
