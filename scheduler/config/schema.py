"""The schema: every table and key of the config file, declared once with its type, default,
help and validator (docs/configuration.md). Each channel type's keys come from its sender's
module in scheduler/delivery/notify/."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from crawler.model import CrawlOptions, SourceKind
from scheduler.config.values import (
    BOOLEAN,
    DURATION,
    INTEGER,
    NAME_RULE,
    REQUIRED,
    STRING,
    STRINGS,
    Entry,
    Key,
    Report,
    Table,
    TableCheck,
    alias_set,
    at_least,
    crontab,
    duration_at_least,
    host_port,
    http_url,
    long_secret,
    non_empty,
    one_of,
    postgres_url,
    query,
    regexes,
    tokens,
    valid_name,
)

SOURCE_KINDS: tuple[SourceKind, ...] = ("feed", "sitemap", "site")


def _check_archive(entry: Entry, report: Report) -> None:
    if "url" in entry.given and "path" in entry.given:
        report(
            "url",
            "both path (an SQLite file) and url (a PostgreSQL database) are set; keep the one "
            "archive you mean and remove the other",
        )


def _check_source(entry: Entry, report: Report) -> None:
    kinds = [kind for kind in SOURCE_KINDS if kind in entry.given]
    if not kinds:
        report(None, "needs exactly one of feed, sitemap or site: the URL to crawl")
    elif len(kinds) > 1:
        report(kinds[1], f"give only one of feed, sitemap or site; this source also has {kinds[0]}")
    if "every" in entry.given and "cron" in entry.given:
        report("cron", "give either every or cron, not both")
    if "follow" in entry.given and kinds and "site" not in kinds:
        report("follow", f"only site sources follow links; remove follow from this {kinds[0]}")


def _check_web(entry: Entry, report: Report) -> None:
    if not str(entry.values.get("password") or "").strip():
        return  # no password: no web view, the secret is not needed
    try:
        long_secret(str(entry.values.get("secret") or ""))
    except ValueError as exc:
        report("secret", f"{exc} (the web view needs it)")


# Each channel type's keys are declared by the module that sends to it
# (scheduler/delivery/notify/), gathered on first use: a channel module imports this package's
# value types, so the schema must not import the channels while it is being imported.


@functools.cache
def channel_type_key() -> Key:
    """`type` of a `[channels.NAME]` table: one of the registered channel types."""
    from scheduler.delivery import notify

    kinds = tuple(notify.CHANNELS)
    return Key("type", STRING, REQUIRED, ", ".join(kinds), one_of(*kinds))


@functools.cache
def channel_types() -> dict[str, tuple[Key, ...]]:
    """Channel type -> its keys (`type` first)."""
    from scheduler.delivery import notify

    return {kind: (channel_type_key(), *module.OPTIONS) for kind, module in notify.CHANNELS.items()}


@functools.cache
def channel_checks() -> dict[str, TableCheck]:
    """Channel type -> its check of keys that depend on each other, where it has one."""
    from scheduler.delivery import notify

    return {
        kind: module.check for kind, module in notify.CHANNELS.items() if hasattr(module, "check")
    }


_DEFAULTS = CrawlOptions()

SCHEMA: tuple[Table, ...] = (
    Table(
        "archive",
        "table",
        "where articles are kept",
        (
            Key("path", STRING, "../data/newswatch.db", "SQLite file of the archive", non_empty),
            Key(
                "url",
                STRING,
                None,
                "PostgreSQL database of the archive, instead of path",
                postgres_url,
                blank_is_unset=True,
            ),
            Key("keep_days", INTEGER, 0, "prune older articles; 0 keeps all", at_least(0)),
        ),
        check=_check_archive,
    ),
    Table(
        "crawl",
        "table",
        "how to crawl",
        (
            Key("user_agent", STRING, _DEFAULTS.user_agent, "User-Agent header", non_empty),
            Key("every", DURATION, "15m", "default source schedule", duration_at_least(1)),
            Key("fetch_articles", BOOLEAN, True, "fetch each feed item's page"),
            Key("obey_robots", BOOLEAN, True, "honour robots.txt"),
            Key(
                "allow_private",
                BOOLEAN,
                False,
                "follow links into loopback, private and link-local networks",
            ),
            Key("per_host", INTEGER, 2, "concurrent requests to one host", at_least(1)),
            Key(
                "delay",
                DURATION,
                "1s",
                "least time between requests to a host",
                duration_at_least(0),
            ),
            Key("timeout", DURATION, "30s", "request timeout", duration_at_least(1)),
            Key("max_page_bytes", INTEGER, 10_000_000, "largest response", at_least(1024)),
        ),
    ),
    Table(
        "service",
        "table",
        "the service of `newswatch run`",
        (
            Key("listen", STRING, "127.0.0.1:9180", "health and metrics server", host_port),
            Key(
                "node",
                STRING,
                "",
                "this node's name in runs, logs and metrics (default: the host name)",
            ),
            Key(
                "lease",
                DURATION,
                "60s",
                "how long a node holds the sources it crawls, renewed while it works; "
                "another node takes them over once it ran out",
                duration_at_least(2),
            ),
        ),
    ),
    Table(
        "web",
        "table",
        "the web view, feeds and API of `newswatch run` (no [web], no web view)",
        (
            Key(
                "password",
                STRING,
                "",
                "sign-in password of the web view; empty: the web view stays off",
            ),
            Key(
                "secret",
                STRING,
                "",
                "signs sessions and feed tokens; changing it revokes them all",
            ),
            Key("api_tokens", STRINGS, [], "Bearer tokens for /api/v1 (read-only)", tokens),
        ),
        check=_check_web,
        optional=True,
    ),
    Table(
        "aliases",
        "sets",
        "alias sets for @name in queries; a set replaces the built-in set of its name",
        (Key("<name>", STRINGS, None, "the terms of the set @name", alias_set),),
        noun="alias set",
    ),
    Table(
        "topic",
        "table",
        "what is worth keeping at all",
        (Key("query", STRING, REQUIRED, "a query in the rule language", query),),
        optional=True,
    ),
    Table(
        "sources",
        "array",
        "the sources to crawl",
        (
            Key("name", STRING, REQUIRED, f"unique name: {NAME_RULE}", valid_name, unique=True),
            Key("feed", STRING, None, "RSS or Atom feed URL", http_url),
            Key("sitemap", STRING, None, "sitemap URL", http_url),
            Key("site", STRING, None, "section page URL", http_url),
            Key("every", DURATION, None, "schedule", duration_at_least(1)),
            Key("cron", STRING, None, "crontab schedule", crontab),
            Key("topic", BOOLEAN, True, "apply [topic]"),
            Key("follow", STRINGS, [], "regexes an article URL must match", regexes),
        ),
        check=_check_source,
        noun="source",
    ),
    Table(
        "rules",
        "array",
        "what to alert on",
        (
            Key("name", STRING, REQUIRED, f"unique name: {NAME_RULE}", valid_name, unique=True),
            Key("query", STRING, REQUIRED, "a query in the rule language", query),
            Key("notify", STRINGS, [], "channels to alert", refs="channels"),
            Key("digest", STRING, "off", "off, hourly or daily", one_of("off", "hourly", "daily")),
            Key("sources", STRINGS, [], "only these sources", refs="sources"),
            Key(
                "max_per_hour",
                INTEGER,
                None,
                "single alerts per clock hour; the rest wait for one digest at the end of the hour",
                at_least(1),
            ),
        ),
        noun="rule",
    ),
    Table(
        "health",
        "table",
        "source-health notices",
        (
            Key("notify", STRINGS, [], "channels for source-health notices", refs="channels"),
            Key("failures", INTEGER, 3, "failed runs before failing", at_least(1)),
        ),
    ),
    Table("channels", "named", "where alerts go", noun="channel"),
)
TABLES: dict[str, Table] = {table.name: table for table in SCHEMA}


def schema_keys() -> Iterator[tuple[str, Key]]:
    """Every key with its path pattern: `archive.path`, `sources[].name`, `channels.<email>.to`."""
    for table in SCHEMA:
        if table.kind == "named":
            for kind, keys in channel_types().items():
                for key in keys:
                    yield f"{table.name}.<{kind}>.{key.name}", key
        elif table.kind == "sets":
            for key in table.keys:
                yield f"{table.name}.{key.name}", key
        else:
            suffix = "[]" if table.kind == "array" else ""
            for key in table.keys:
                yield f"{table.name}{suffix}.{key.name}", key
