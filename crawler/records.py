"""The records the pipeline hands to the archive and gets back (plain values, no storage).

`ArticleIn` is an article as extraction made it, `Stored` what the archive did with it,
`AlertIn` an alert to queue, `RunRecord` one source's run of a pass. A module that needs these
types imports this one, not the archive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

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

    def fail(self, error_class: str, message: str) -> None:
        self.status = "error"
        self.error_class = error_class
        self.error = message

    def warn(self, message: str) -> None:
        if self.status == "ok":
            self.status = "warning"
        self.warning = message
