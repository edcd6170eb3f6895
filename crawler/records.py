"""The records the pipeline hands to the archive and gets back (plain values, no storage).

`ArticleIn` is an article as extraction made it, `Stored` what the archive did with it,
`AlertIn` an alert to queue, `RunRecord` one source's run of a pass. A module that needs these
types imports this one, not the archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crawler import neardup


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


@dataclass(frozen=True)
class RunRecord:
    source: str
    started: datetime
    finished: datetime
    status: str  # "ok" | "not_modified" | "warning" | "error"
    http_status: int | None = None
    fetched: int = 0
    new: int = 0
    seen: int = 0
    off_topic: int = 0
    errors: int = 0
    error_class: str | None = None
    error: str | None = None
    warning: str | None = None
    pages: int = 0
    not_before: datetime | None = None  # the server asked us to wait (Retry-After)
