"""Claims with leases: a due source is worked on by one node at a time.

`claim_due` leases the due sources nobody holds, in one statement::

    UPDATE sources SET lease_owner, lease_token (new), lease_until = now() + lease
    WHERE name IN (SELECT name ... due, not leased ... FOR UPDATE SKIP LOCKED) RETURNING ...

so two nodes claiming at the same moment never wait for each other and never get the same
source. Time is the database's `now()`, never a node's clock. The token fences the work:
`finish_claim` records the run only while the lease still carries the same token, so a node
whose lease ran out (and another node took the source over) cannot overwrite the newer run.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from crawler.archive.postgres.sources import SourcesMixin
from crawler.records import Claim, RunRecord


def _claim(row: dict[str, object]) -> Claim:
    until = row["lease_until"]
    assert isinstance(until, datetime)
    return Claim(
        str(row["name"]), str(row["lease_owner"]), str(row["lease_token"]), until.astimezone(UTC)
    )


class ClaimsMixin(SourcesMixin):
    def claim_due(
        self,
        owner: str,
        sources: Sequence[str] | None,
        lease: timedelta,
        limit: int = 100,
    ) -> list[Claim]:
        """Lease up to `limit` of `sources` (None: of every source the archive knows) that are
        due now (never run, or `next_due` and a server's Retry-After passed) and not leased by
        a node (or their lease ran out), to `owner`; the claims, most overdue first. A source
        named but not yet in the archive is added."""
        among, params = "", [owner, lease]
        if sources is not None:
            among = "name = ANY(%s::text[]) AND"
            params.append(list(sources))
        params.append(limit)
        if sources is not None:  # one statement of its own: the claim below is one too
            self._execute(
                "INSERT INTO sources (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (list(sources),),
            )
        rows = self._all(
            f"""UPDATE sources SET lease_owner = %s, lease_token = gen_random_uuid()::text,
                   lease_until = now() + %s
               WHERE name IN (
                   SELECT name FROM sources
                   WHERE {among} (next_due IS NULL OR next_due <= now())
                       AND (not_before IS NULL OR not_before <= now())
                       AND (lease_until IS NULL OR lease_until <= now())
                   ORDER BY next_due NULLS FIRST, name
                   LIMIT %s
                   FOR UPDATE SKIP LOCKED)
               RETURNING name, lease_owner, lease_token, lease_until, next_due""",
            params,
        )
        rows.sort(key=lambda r: (r["next_due"] is not None, r["next_due"] or 0, r["name"]))
        return [_claim(row) for row in rows]

    def renew_claims(self, claims: Sequence[Claim], lease: timedelta) -> list[Claim]:
        """Extend the leases still held under their tokens (to now() + `lease`); the claims
        renewed. A claim missing from the answer was lost: stop its work."""
        if not claims:
            return []
        rows = self._all(
            """UPDATE sources SET lease_until = now() + %s
               WHERE lease_token = ANY(%s::text[]) AND lease_until > now()
               RETURNING name, lease_owner, lease_token, lease_until""",
            (lease, [c.token for c in claims]),
        )
        return sorted((_claim(row) for row in rows), key=lambda c: c.source)

    def finish_claim(self, claim: Claim, run: RunRecord, next_due: datetime | None) -> bool:
        """Record the source's run and end the lease, together, if the lease is still this
        claim's (same token, not run out); else record nothing and return False."""
        with self._transaction():
            ended = self._execute(
                """UPDATE sources SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
                   WHERE name = %s AND lease_token = %s AND lease_until > now()""",
                (claim.source, claim.token),
            )
            if not ended:
                return False
            self.record_run(run, next_due)
        return True

    def release_claim(self, claim: Claim) -> bool:
        """Give the source back unworked (it stays due); False if the lease was no longer
        this claim's."""
        released = self._execute(
            """UPDATE sources SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
               WHERE name = %s AND lease_token = %s""",
            (claim.source, claim.token),
        )
        return released > 0
