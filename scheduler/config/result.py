"""The validated config: `Config`, what `load` returns (plain values of crawler.model)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from crawler.model import Channel, CrawlOptions, Rule, Source
from crawler.query import Query
from scheduler.config.rulecache import RuleCache
from scheduler.web.options import WebOptions


@dataclass(frozen=True)
class Config:
    """The validated config file."""

    path: Path  # the config file, absolute
    archive_path: Path  # absolute
    keep_days: int
    crawl: CrawlOptions
    listen: str  # "host:port"
    topic: Query | None
    topic_text: str | None
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    health_notify: tuple[str, ...]
    health_failures: int
    channels: dict[str, Channel]
    web: WebOptions | None = field(default=None, repr=False)  # [web]; None: no web view
    # the compiled rules of the last run (`load(..., cached=True)`), beside the archive
    rules_cache: RuleCache | None = field(default=None, compare=False, repr=False)

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def rule(self, name: str) -> Rule:
        for rule in self.rules:
            if rule.name == name:
                return rule
        raise KeyError(name)
