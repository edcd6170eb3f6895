"""Plain values shared by the crawler and the scheduler: validated configuration as data.

The scheduler's config loader builds these; the crawler only reads them. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from crawler.query import Query

SourceKind = Literal["feed", "sitemap", "site"]
Digest = Literal["off", "hourly", "daily"]


@dataclass(frozen=True)
class CrawlOptions:
    """The `[crawl]` table. Durations are seconds."""

    user_agent: str = "newswatch/0.1 (+https://example.org/about-our-crawler)"
    every: float = 900.0
    fetch_articles: bool = True
    obey_robots: bool = True
    allow_private: bool = False  # follow links into loopback/private/link-local networks
    per_host: int = 2
    delay: float = 1.0
    timeout: float = 30.0
    max_page_bytes: int = 10_000_000


@dataclass(frozen=True)
class Source:
    """One `[[sources]]` entry."""

    name: str
    kind: SourceKind
    url: str
    every: float | None = None  # seconds; None: the `[crawl] every` default (unless cron is set)
    cron: str | None = None
    topic: bool = True  # False: keep everything from this source, ignoring [topic]
    follow: tuple[str, ...] = ()  # regexes (site sources)


@dataclass(frozen=True)
class Rule:
    """One `[[rules]]` entry, its query compiled once."""

    name: str
    query_text: str
    query: Query
    notify: tuple[str, ...] = ()
    digest: Digest = "off"
    sources: tuple[str, ...] = ()  # empty: every source
    max_per_hour: int | None = None  # beyond this many alerts in a clock hour: an hourly digest

    def applies_to(self, source: str) -> bool:
        return not self.sources or source in self.sources


@dataclass(frozen=True)
class Channel:
    """One `[channels.NAME]` table: `type` picks the module in scheduler.delivery.notify."""

    name: str
    type: Literal["email", "webhook", "apprise"]
    options: dict[str, object] = field(default_factory=dict)
