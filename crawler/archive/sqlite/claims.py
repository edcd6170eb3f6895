"""Claims with leases on SQLite: the same operations as PostgreSQL's (`ClaimsStore`,
`crawler.archive.postgres.claims`), each under ``BEGIN IMMEDIATE``, so that `crawl` and `run`
take one code path on both engines and two processes on one file never crawl one source
together. Time is this machine's clock (every process on the file runs on it); leases are
stored as UTC ISO text with microseconds (`_stamp`), compared only with each other."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from crawler.archive.sqlite.sources import SourcesMixin
from crawler.clock import iso
from crawler.records import Claim, RunRecord


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class ClaimsMixin(SourcesMixin):
    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A write transaction taken at once (BEGIN IMMEDIATE), so what it reads stays true
        until it commits; nested in a transaction already open, a savepoint of it."""
        if self.db.conn.in_transaction:
            with self.transaction():
                yield
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def claim_due(
        self,
        owner: str,
        sources: Sequence[str] | None,
        lease: timedelta,
        limit: int = 100,
        early: Mapping[str, timedelta] | None = None,
    ) -> list[Claim]:
        """As `crawler.archive.postgres.claims.ClaimsMixin.claim_due`."""
        now = datetime.now(UTC)
        until = _stamp(now + lease)
        with self._immediate():
            if sources is not None:
                for name in sources:
                    self._ensure_source(name)
            rows = self._all(
                """SELECT name, host, next_due, not_before, lease_owner, lease_until
                   FROM sources"""
            )
            stamp = _stamp(now)
            busy = {
                r["host"]
                for r in rows
                if r["host"]
                and r["lease_owner"] not in (None, owner)
                and r["lease_until"]
                and r["lease_until"] > stamp
            }
            wanted = None if sources is None else set(sources)
            due = []
            for r in rows:
                if wanted is not None and r["name"] not in wanted:
                    continue
                ahead = (early or {}).get(r["name"], timedelta(0))
                if r["next_due"] is not None and r["next_due"] > iso(now + ahead):
                    continue
                if r["not_before"] is not None and r["not_before"] > iso(now):
                    continue
                if r["lease_until"] is not None and r["lease_until"] > stamp:
                    continue
                if r["host"] in busy:
                    continue
                due.append(r)
            due.sort(key=lambda r: (r["next_due"] is not None, r["next_due"] or "", r["name"]))
            claims = []
            for r in due[:limit]:
                token = str(uuid.uuid4())
                self.db.execute(
                    """UPDATE sources SET lease_owner = ?, lease_token = ?, lease_until = ?
                       WHERE name = ?""",
                    (owner, token, until, r["name"]),
                )
                claims.append(Claim(r["name"], owner, token, _parse(until)))
        return claims

    def renew_claims(self, claims: Sequence[Claim], lease: timedelta) -> list[Claim]:
        """As on PostgreSQL: the claims renewed; one missing was lost."""
        now = datetime.now(UTC)
        until = _stamp(now + lease)
        renewed = []
        with self._immediate():
            for claim in claims:
                changed = self.db.execute(
                    """UPDATE sources SET lease_until = ?
                       WHERE name = ? AND lease_token = ? AND lease_until > ?""",
                    (until, claim.source, claim.token, _stamp(now)),
                ).rowcount
                if changed:
                    renewed.append(Claim(claim.source, claim.owner, claim.token, _parse(until)))
        return sorted(renewed, key=lambda c: c.source)

    def finish_claim(self, claim: Claim, run: RunRecord, next_due: datetime | None) -> bool:
        """Record the run and end the lease together, only under the claim's live token."""
        with self._immediate():
            ended = self.db.execute(
                """UPDATE sources SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
                   WHERE name = ? AND lease_token = ? AND lease_until > ?""",
                (claim.source, claim.token, _stamp(datetime.now(UTC))),
            ).rowcount
            if not ended:
                return False
            self.record_run(run, next_due)
        return True

    def release_claim(self, claim: Claim) -> bool:
        """Give the source back unworked; False if the lease was no longer this claim's."""
        with self._immediate():
            released = self.db.execute(
                """UPDATE sources SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
                   WHERE name = ? AND lease_token = ?""",
                (claim.source, claim.token),
            ).rowcount
        return released > 0
