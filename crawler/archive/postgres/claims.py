"""Claims with leases: a due source is worked on by one node at a time.

`claim_due` leases the due sources nobody holds, in one statement::

    UPDATE sources SET lease_owner, lease_token (new), lease_until = now() + lease
    WHERE name IN (SELECT name ... due, not leased ... FOR UPDATE SKIP LOCKED) RETURNING ...

so two nodes claiming at the same moment never get the same source. Claims also keep a host's
sources with one node at a time (a source whose host has a live lease of another node is not
claimed), which is how the per-host limit, delay, robots.txt and Retry-After hold across nodes;
to judge that without a race, claims are taken one after the other (a transaction-scoped
advisory lock for the one statement: a claim is a few milliseconds). Time is the database's
`now()`, never a node's clock. The token fences the work: `finish_claim` records the run only
while the lease still carries the same token, so a node whose lease ran out (and another node
took the source over) cannot overwrite the newer run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from crawler.archive.postgres.sources import SourcesMixin
from crawler.records import Claim, RunRecord

# the transaction-scoped advisory lock key that orders claims across nodes ("claims")
CLAIM_LOCK = 0x636C61696D73


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
        early: Mapping[str, timedelta] | None = None,
    ) -> list[Claim]:
        """Lease up to `limit` of `sources` (None: of every source the archive knows) that are
        due now (never run, or `next_due` and a server's Retry-After passed; `early`: how long
        before its `next_due` a source may be claimed) and not leased by a node (or their lease
        ran out), to `owner`; the claims, most overdue first. A source named but not yet in the
        archive is added. A source whose host has a source leased to another node is left: a
        host's sources are worked on by one node at a time (politeness across nodes)."""
        if sources is not None:  # one statement of its own: the claim below is one too
            self._execute(
                "INSERT INTO sources (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                (list(sources),),
            )
        if sources is None:
            among, params = "sources s", []
            margin = "interval '0 s'"
        else:
            names = list(sources)
            ahead = [(early or {}).get(n, timedelta(0)).total_seconds() for n in names]
            among = (
                "sources s JOIN unnest(%s::text[], %s::float8[]) AS c(name, ahead) "
                "ON c.name = s.name"
            )
            params = [names, ahead]
            margin = "make_interval(secs => c.ahead)"
        with self._transaction():
            # claims are taken one at a time across nodes (a transaction-scoped lock, safe
            # behind pgbouncer), so two nodes never lease two sources of one host together
            self._execute("SELECT pg_advisory_xact_lock(%s)", (CLAIM_LOCK,))
            rows = self._all(
                f"""UPDATE sources SET lease_owner = %s, lease_token = gen_random_uuid()::text,
                       lease_until = now() + %s
                   WHERE name IN (
                       SELECT s.name FROM {among}
                       WHERE (s.next_due IS NULL OR s.next_due <= now() + {margin})
                           AND (s.not_before IS NULL OR s.not_before <= now())
                           AND (s.lease_until IS NULL OR s.lease_until <= now())
                           AND NOT EXISTS (
                               SELECT 1 FROM sources o
                               WHERE o.host = s.host AND o.lease_owner <> %s
                                   AND o.lease_until > now())
                       ORDER BY s.next_due NULLS FIRST, s.name
                       LIMIT %s
                       FOR UPDATE OF s SKIP LOCKED)
                   RETURNING name, lease_owner, lease_token, lease_until, next_due""",
                [owner, lease, *params, owner, limit],
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
