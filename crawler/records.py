"""The records the pipeline hands to the archive and gets back (plain values, no storage).

Going in: `ArticleIn` is an article as extraction made it, `AlertIn` an alert to queue,
`RunRecord` one source's run of a pass. Coming back: `Stored` is what the archive did with an
article, and the frozen records below are what it keeps, as every engine returns them
(`crawler.archive.interface`): `SourceState`, `Run`, `Article` and its `StoryMember`s,
`PendingPage`, `Pass`, `DueDigest`, `Delivery`. Their times are aware UTC datetimes (shown as
UTC ISO 8601 with ``Z`` by `crawler.clock.iso`); `crawler.archive.rows` makes them from an
engine's row. A module that needs these types imports this one, not the archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.decide import neardup


@dataclass
class ArticleIn:
    """An article as the pipeline hands it to the archive."""

    url: str  # canonical
    source: str
    guid: str | None
    title: str | None
    author: str | None
    published: str | None
    language: str | None
    summary: str | None
    text: str | None
    fingerprint: str | None
    urls: tuple[str, ...] = ()  # every URL seen for it (raw and canonical)
    origin: str = "feed"  # "feed": from a feed entry only; "page": the article page was read
    description: str | None = None
    site_name: str | None = None
    sketch: neardup.Sketch | None = None  # near-duplicate sketch of the text (None: too short)
    title_key: str | None = None  # neardup.title_key(title), for lead-only rewrites


@dataclass(frozen=True)
class Stored:
    """What the archive did with an incoming article."""

    article_id: int
    story_id: int
    outcome: str  # "new" | "edited" | "duplicate" | "unchanged"
    duplicate_kind: str | None = None  # "url" | "guid" | "alias" | "fingerprint"
    joined_story: bool = False  # a new article recognised as a copy of an archived story


@dataclass(frozen=True)
class AlertIn:
    rule: str
    channel: str
    matched: tuple[str, ...]
    digest: str = "off"  # the rule's digest: off | hourly | daily
    max_per_hour: int | None = None


@dataclass
class RunRecord:
    """One source's run of a pass: the pass fills it in as it goes (`crawler.fetch.context`), the
    archive stores it (`record_run`). The last five fields are the pass's own bookkeeping."""

    source: str
    started: datetime
    finished: datetime | None = None  # set when the source's part of the pass ends
    status: str = "ok"  # ok | not_modified | warning | error
    http_status: int | None = None
    fetched: int = 0  # entries in the listing
    new: int = 0  # new articles archived
    seen: int = 0  # entries already known (duplicates, unchanged, seen before)
    off_topic: int = 0  # entries outside [topic], remembered as seen
    errors: int = 0  # entries that could not be processed
    error_class: str | None = None
    error: str | None = None
    warning: str | None = None
    pages: int = 0  # article pages fetched
    not_before: datetime | None = None  # the server asked us to wait until then (Retry-After)
    unstored: int = 0  # of the errors, items the archive failed to store (disk full, locked)
    truncated: bool = False  # more new pages than a pass takes: the rest come next pass
    retry_after: float | None = None  # seconds the server asked us to wait (429/503)
    validators: tuple[str | None, str | None, str | None] | None = None  # etag, lm, body hash
    duplicates: dict[str, int] = field(default_factory=dict)  # kind -> count
    node: str | None = None  # the node that ran it (`[service] node`), stored with the run

    def fail(self, error_class: str, message: str) -> None:
        self.status = "error"
        self.error_class = error_class
        self.error = message

    def warn(self, message: str) -> None:
        if self.status == "ok":
            self.status = "warning"
        self.warning = message


# ---------------------------------------------------------------------------------------------
# what the archive keeps, as it gives it back


@dataclass(frozen=True)
class SourceState:
    """A source as the archive knows it: validators, last run, health, due times.
    `SourceState(name)` is a source never seen (nothing recorded yet)."""

    name: str
    kind: str | None = None
    url: str | None = None  # the URL it was last crawled at (a changed URL is a new source)
    etag: str | None = None  # validators for the next conditional GET
    last_modified: str | None = None  # as the server sent it (HTTP date text)
    body_hash: str | None = None
    last_run: datetime | None = None
    last_success: datetime | None = None
    last_status: str | None = None  # ok | not_modified | warning | error
    last_error: str | None = None
    last_error_class: str | None = None
    last_warning: str | None = None
    consecutive_failures: int = 0
    next_due: datetime | None = None
    not_before: datetime | None = None  # a server's Retry-After
    health_state: str | None = None  # ok | failing | silent, as the service last judged it
    health_since: datetime | None = None


@dataclass(frozen=True)
class Run:
    """One source's run of a pass, as stored (`RunRecord` is the run being made)."""

    id: int
    source: str
    started: datetime
    finished: datetime
    status: str  # ok | not_modified | warning | error
    http_status: int | None
    fetched: int
    new: int
    seen: int
    off_topic: int
    errors: int
    error_class: str | None
    error: str | None
    warning: str | None
    duration: float  # seconds, to the millisecond
    pages: int
    node: str | None = None  # the node that ran it (None: before nodes were recorded)


@dataclass(frozen=True)
class StoryMember:
    """Another article of a story, as an alert names it."""

    source: str
    url: str
    title: str | None


@dataclass(frozen=True)
class Article:
    """An archived article. `urls` (every URL seen for it) is filled by `Storage.article` and
    `Storage.iter_articles`, `also_reported_by` (the story's other articles) by
    `iter_articles`; elsewhere they are empty."""

    id: int
    url: str  # canonical
    source: str
    guid: str | None
    title: str | None
    author: str | None
    published: datetime | None
    first_seen: datetime
    updated: datetime
    language: str | None
    summary: str | None
    text: str | None
    fingerprint: str | None
    story_id: int | None
    page_status: str | None  # None: from its feed entry only; "ok": the page was read
    description: str | None
    site_name: str | None
    title_key: str | None
    urls: tuple[str, ...] = ()
    also_reported_by: tuple[StoryMember, ...] = ()


@dataclass(frozen=True)
class PendingPage:
    """An article page that failed, tried again on later passes."""

    url: str
    source: str
    info: dict[str, Any]  # what its feed entry or sitemap said (crawler.articles)
    attempts: int
    first_attempt: datetime
    last_attempt: datetime
    last_error: str | None


@dataclass(frozen=True)
class Pass:
    """A crawl pass holding the alerts it queued until it ends (scheduler.holds)."""

    id: str
    owner: str  # host:pid
    started: datetime
    lease_until: datetime


@dataclass(frozen=True)
class DueDigest:
    """Held alerts whose digest period has closed: one rule, channel and period."""

    rule: str
    channel: str
    hold_from: datetime  # the period
    hold_until: datetime
    ids: tuple[int, ...]  # the held outbox rows, in id order


@dataclass(frozen=True)
class Delivery:
    """One row of the outbox: an alert, a digest or a source-health notice, and its state."""

    id: int
    delivery: str  # the delivery id receivers see (the same on every retry)
    event: str  # alert | digest | source-health
    rule: str | None  # None: a source-health notice
    channel: str
    article_id: int | None
    story_id: int | None
    matched: tuple[str, ...]  # the matched terms (alerts)
    payload: str | None  # the JSON body, frozen before the first send
    status: str  # pending | held | digested | merged | sent | failed
    attempts: int
    created: datetime
    expires: datetime  # the retry window closes
    next_attempt: datetime
    last_attempt: datetime | None
    last_error: str | None
    sent: datetime | None
    hold_from: datetime | None  # held for a digest: its period
    hold_until: datetime | None
    digest_id: int | None  # the digest it went into
    pass_id: str | None  # held by this pass until it ends
    merged_into: int | None  # status merged: the alert that stands for it
    lease_token: str | None = None  # claimed for sending (`OutboxStore.claim_deliveries`)


@dataclass(frozen=True)
class Claim:
    """A due source leased to one node (`ClaimsStore.claim_due`): its work is recorded only
    under the same token (`finish_claim`), and another node may take it once `until` passed."""

    source: str
    owner: str
    token: str
    until: datetime  # the lease's end, in the database's time
