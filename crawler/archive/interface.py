"""The storage interface: what the crawler, the service, the command line (and the web view to
come) ask of an archive, split by domain. An engine implements all of it
(`crawler.archive.sqlite.SqliteArchive`); callers type against `Storage`.

It takes and returns typed records (`crawler.records`), never an engine's rows or times as
text: what goes in (`ArticleIn`, `AlertIn`, `RunRecord`) and what comes back (`SourceState`,
`Run`, `Article` with its `StoryMember`s, `PendingPage`, `Pass`, `DueDigest`, `Delivery`,
`Stored`). Every time it is given (``now``, ``since``, ...) or returns is an aware UTC
`datetime`; only text a server sent stays text (the ``Last-Modified`` validator, and an
incoming `ArticleIn.published`, read back as `Article.published`, a datetime). An engine makes
the records from its rows with `crawler.archive.rows` (one function per record), so every
engine returns the same values.

Every method may raise `crawler.archive.StorageError` (never the engine's own error).
Storage calls are synchronous and short (one transaction each); how they stay off the event
loop once an engine talks over a network is in docs/architecture.md, "Storage and the event
loop".
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from crawler.decide import neardup
from crawler.records import (
    AlertIn,
    Article,
    ArticleIn,
    Claim,
    Delivery,
    DueDigest,
    Pass,
    PendingPage,
    Run,
    RunRecord,
    SourceState,
    Stored,
    StoryMember,
)


class SourcesStore(Protocol):
    """Sources and their runs: validators, runs, health, due times."""

    def source_state(self, name: str) -> SourceState | None: ...
    def source_states(self) -> dict[str, SourceState]: ...
    def register_source(self, name: str, kind: str, url: str) -> None: ...
    def save_validators(
        self, name: str, etag: str | None, last_modified: str | None, body_hash: str | None
    ) -> None: ...
    def record_run(self, run: RunRecord, next_due: datetime | None) -> None: ...
    def runs(self, source: str | None = None, limit: int = 100) -> list[Run]: ...
    def last_runs(self) -> dict[str, Run]: ...
    def recent_first_seen(self, source: str, limit: int = 20) -> list[datetime]: ...
    def set_health(
        self, source: str, state: str, now: datetime, notices: Sequence[tuple[str, str, str]]
    ) -> bool: ...
    def articles_since(self, since: datetime) -> dict[str, int]: ...


class ArticlesStore(Protocol):
    """Articles: identity, insert and update (with their alerts), pages to try again."""

    def is_known_url(self, url: str) -> bool: ...
    def mark_seen(self, url: str, source: str, reason: str, now: datetime) -> bool: ...
    def find_article(
        self, urls: Sequence[str], source: str, guid: str | None, fingerprint: str | None
    ) -> tuple[Article, str] | None: ...
    def store_article(
        self,
        article: ArticleIn,
        now: datetime,
        alerts_for: Callable[[int, int, str], Sequence[AlertIn]],
        hold: str | None = None,
    ) -> Stored: ...
    def add_pending_page(
        self, url: str, source: str, info: dict[str, Any], error: str, now: datetime
    ) -> None: ...
    def pending_pages(self, source: str, max_attempts: int) -> list[PendingPage]: ...
    def drop_pending_page(self, url: str) -> None: ...
    def article(self, article_id: int) -> Article | None: ...
    def count_articles(self) -> int: ...
    def iter_articles(
        self, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]: ...


class StoriesStore(Protocol):
    """Stories: an article's story, its other articles, rebuilding them all."""

    def article_story(self, article_id: int) -> int | None: ...
    def also_reported_by(self, story_id: int | None, article_id: int) -> list[StoryMember]: ...
    def story_articles(self, story_id: int) -> list[Article]: ...
    def rebuild_stories(
        self,
        compute: Callable[[Article], tuple[str | None, neardup.Sketch | None, str | None]],
        progress: Callable[[int, int], None] | None = None,
    ) -> int: ...


class OutboxStore(Protocol):
    """The outbox: passes holding alerts, digests, deliveries and their outcomes. Several
    processes (or nodes) deliver one archive: each claims its rows with a lease
    (`claim_deliveries`) and records an outcome only under the claim's token; a digest is
    made once (`add_digest` returns None to the one that came second); a once-per-period job
    runs where `claim_slot` said True."""

    def begin_pass(self, owner: str, now: datetime, lease: timedelta) -> str: ...
    def renew_pass(self, pass_id: str, now: datetime, lease: timedelta) -> None: ...
    def passes(self) -> list[Pass]: ...
    def end_pass(self, pass_id: str) -> tuple[int, int]: ...
    def due_digests(self, now: datetime) -> list[DueDigest]: ...
    def add_digest(
        self,
        rule: str,
        channel: str,
        delivery: str,
        payload: str,
        member_ids: Sequence[int],
        now: datetime,
    ) -> int | None: ...
    def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]: ...
    def claim_deliveries(
        self, owner: str, now: datetime, lease: timedelta, limit: int = 100
    ) -> list[Delivery]: ...
    def renew_deliveries(self, token: str, lease: timedelta) -> int: ...
    def release_deliveries(self, token: str) -> int: ...
    def delivery_claims(self) -> list[tuple[str, str]]: ...
    def delivery(self, outbox_id: int) -> Delivery | None: ...
    def set_payload(self, outbox_id: int, payload: str) -> None: ...
    def mark_sent(self, outbox_id: int, now: datetime, token: str | None = None) -> bool: ...
    def mark_attempt_failed(
        self,
        outbox_id: int,
        now: datetime,
        error: str,
        next_attempt: datetime | None,
        token: str | None = None,
    ) -> bool: ...
    def claim_slot(self, job: str, period: str, owner: str, now: datetime) -> bool: ...
    def retry_deliveries(self, now: datetime, ids: Sequence[int] | None) -> int: ...
    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[Delivery]: ...


class SearchStore(Protocol):
    """Search: the candidates of a full-text expression, confirmed by `crawler.query.search`."""

    def search_candidates(
        self, fts: str | None, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]: ...


class MaintenanceStore(Protocol):
    """Keeping the archive: pruning, checkpoints, health, closing."""

    def prune(self, before: datetime) -> int: ...
    def checkpoint(self) -> None: ...
    def writable(self) -> bool: ...
    def schema_version(self) -> int: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def close(self) -> None: ...


class ClaimsStore(Protocol):
    """Claims with leases: each due source worked on by one node at a time, and a host's
    sources by one node at a time (several nodes on one archive). Both engines: PostgreSQL
    with the database's time, SQLite under BEGIN IMMEDIATE with the machine's."""

    def claim_due(
        self,
        owner: str,
        sources: Sequence[str] | None,
        lease: timedelta,
        limit: int = 100,
        early: Mapping[str, timedelta] | None = None,
    ) -> list[Claim]: ...
    def renew_claims(self, claims: Sequence[Claim], lease: timedelta) -> list[Claim]: ...
    def finish_claim(self, claim: Claim, run: RunRecord, next_due: datetime | None) -> bool: ...
    def release_claim(self, claim: Claim) -> bool: ...


class Storage(
    SourcesStore,
    ArticlesStore,
    StoriesStore,
    OutboxStore,
    SearchStore,
    MaintenanceStore,
    ClaimsStore,
    Protocol,
):
    """Everything an archive engine offers."""
