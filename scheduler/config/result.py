"""The validated config: `Config`, what `load` returns (plain values of crawler.model)."""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass, field
from pathlib import Path

from crawler.archive import Storage, open_archive
from crawler.model import Channel, CrawlOptions, Rule, Source
from crawler.query import Query, Term, parse
from crawler.query.aliases import AliasSet, alias_sets, expansions
from scheduler.config.rulecache import RuleCache
from scheduler.config.values import without_password
from scheduler.web.options import WebOptions


@functools.lru_cache(maxsize=8)
def _alias_terms(sets: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, tuple[Term, ...]]:
    """The terms of the built-in sets and `sets` over them, made once per config's sets."""
    return expansions(alias_sets(dict(sets)))


@dataclass(frozen=True)
class Config:
    """The validated config file."""

    path: Path  # the config file, absolute
    archive_path: Path | None  # the SQLite file, absolute; None with archive_url
    archive_url: str | None  # the PostgreSQL database (`[archive] url`); None: archive_path
    keep_days: int
    crawl: CrawlOptions
    listen: str  # "host:port"
    node: str  # `[service] node` as written ("": the host name, see `node_name`)
    lease: float  # seconds a node holds the sources it crawls (`[service] lease`)
    topic: Query | None
    topic_text: str | None
    sources: tuple[Source, ...]
    rules: tuple[Rule, ...]
    health_notify: tuple[str, ...]
    health_failures: int
    channels: dict[str, Channel]
    web: WebOptions | None = field(default=None, repr=False)  # [web]; None: no web view
    # the config's own [aliases] sets, name -> terms as written (the built-in ones come on top)
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the compiled rules of the last run (`load(..., cached=True)`), beside the archive
    rules_cache: RuleCache | None = field(default=None, compare=False, repr=False)

    @property
    def node_name(self) -> str:
        """This node's name: `[service] node`, else this machine's host name (asked when used,
        so a config kept in the rules cache names the machine it runs on)."""
        return self.node or socket.gethostname()

    def open_archive(self) -> Storage:
        """Open the archive this config names, on its engine (SQLite or PostgreSQL): the one
        way every command opens it."""
        if self.archive_url is not None:
            return open_archive(url=self.archive_url)
        return open_archive(path=self.archive_path)

    @property
    def archive_label(self) -> str:
        """The archive as messages name it: the SQLite file, or the URL without its password."""
        if self.archive_url is not None:
            return without_password(self.archive_url)
        return str(self.archive_path)

    def alias_sets(self) -> dict[str, AliasSet]:
        """Every alias set its queries may name: the built-in ones and its own, which win."""
        return alias_sets(self.aliases)

    def alias_terms(self) -> dict[str, tuple[Term, ...]]:
        """Each alias set's terms: what `crawler.query.parse` needs to read this config's
        queries (`search`, `rules test`, the web view)."""
        return _alias_terms(tuple(sorted(self.aliases.items())))

    def parse_query(self, text: str) -> Query:
        """A query typed by a user (`search`, `rules test`, the web view), its `@name`s the
        alias sets of this config; raises QueryError."""
        return parse(text, self.alias_terms())

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
