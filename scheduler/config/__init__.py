"""Load and validate the config file (docs/configuration.md) into the plain values of crawler.model.

Every key is declared once, in SCHEMA and CHANNEL_TYPES below, with its type, default, help and
validator; the loader walks that table. Unknown keys are rejected. Nothing stops at the first
mistake: `validate()` returns every problem, `load()` raises ConfigError carrying all of them,
each located as `FILE:LINE: key.path: message` and sorted by line.

Order of work for one string value: `${NAME}` / `${NAME:-default}` expansion, then the type
check, then the key's validator. Only strings expand (an integer must be written as one).
tomllib gives no line numbers, so `locate_keys()` scans the raw text for table headers and keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import os
import re
import tomllib
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from crawler.model import Channel, CrawlOptions, Rule, Source, SourceKind
from crawler.query import Query, QueryError
from crawler.query import parse as parse_query
from scheduler import SchedulerError
from scheduler.config.durations import format_duration, parse_duration
from scheduler.config.rulecache import RuleCache, cache_path
from scheduler.config.secrets import channel_secrets, redact
from scheduler.service.schedule import cron_trigger

KeyPath = tuple[str | int, ...]

# --------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the config file, where it is, and what to do about it."""

    file: str
    line: int  # 1-based
    key: str  # rendered key path: `sources[0].every`, `channels.ops-hook.url`, `(syntax)`
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.key}: {self.message}"


class ConfigError(SchedulerError):
    """The config file is missing, unreadable or invalid; `problems` lists every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_path(path: KeyPath) -> str:
    """`("sources", 0, "every")` -> `sources[0].every`; keys that are not bare get quotes."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        out += f".{text}" if out else text
    return out


def describe(value: object) -> str:
    """A TOML value as a message shows it: `string "abc"`, `integer 5`, `table`."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"string {json.dumps(shown, ensure_ascii=False)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime | date | time):
        return f"date/time {value.isoformat()}"
    return type(value).__name__


# --------------------------------------------------------------------------------------------
# Value types and validators: a converter or validator raises ValueError with the message.


@dataclass(frozen=True)
class ValueType:
    name: str  # as the docs say it: "string", "integer", ...
    convert: Callable[[Any], Any]


def _expected(what: str, value: object, hint: str = "") -> ValueError:
    return ValueError(f"expected {what}, got {describe(value)}{hint}")


def _to_string(value: object) -> str:
    if not isinstance(value, str):
        hint = f' (write it in quotes: "{value}")' if isinstance(value, int | float) else ""
        raise _expected("a string", value, hint)
    return value


def _to_integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f" (write it without quotes: {value})" if _is_int_text(value) else ""
        raise _expected("an integer", value, hint)
    return value


def _is_int_text(value: object) -> bool:
    return isinstance(value, str) and re.fullmatch(r"-?[\d_]+", value.strip()) is not None


def _to_boolean(value: object) -> bool:
    if not isinstance(value, bool):
        hint = " (write true or false without quotes)" if value in ("true", "false") else ""
        raise _expected("a boolean (true or false)", value, hint)
    return value


def _to_duration(value: object) -> float:
    if not isinstance(value, str):
        hint = f' (write "{value}s" for seconds)' if isinstance(value, int | float) else ""
        raise _expected('a duration such as "90s", "15m", "2h" or "7d"', value, hint)
    return parse_duration(value)


def _to_strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        hint = f" (write [{json.dumps(value)}])" if isinstance(value, str) else ""
        raise _expected("an array of strings", value, hint)
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ValueError(f"expected an array of strings, but item {index} is {describe(item)}")
    return tuple(value)


STRING = ValueType("string", _to_string)
INTEGER = ValueType("integer", _to_integer)
BOOLEAN = ValueType("boolean", _to_boolean)
DURATION = ValueType("duration", _to_duration)
STRINGS = ValueType("array of strings", _to_strings)

Validator = Callable[[Any], Any]  # gets the typed value, returns the final value


def at_least(low: int) -> Validator:
    def check(value: int) -> int:
        if value < low:
            raise ValueError(f"must be at least {low}, got {value}")
        return value

    return check


def between(low: int, high: int) -> Validator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
        return value

    return check


def duration_at_least(seconds: float) -> Validator:
    def check(value: float) -> float:
        if value < seconds:
            low, got = format_duration(seconds), format_duration(value)
            raise ValueError(f"must be at least {low}, got {got}")
        return value

    return check


def one_of(*choices: str) -> Validator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of: {', '.join(choices)}; got {json.dumps(value)}")
        return value

    return check


def non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
NAME_RULE = "letters, digits, '-' and '_'"


def valid_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"invalid name {json.dumps(value)}: use only {NAME_RULE}")
    return value


def http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {json.dumps(value)}")
    return value.strip()


def host_port(value: str) -> str:
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise ValueError(f'expected "host:port" such as "127.0.0.1:9180", got {json.dumps(value)}')
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port}")
    return value


def regexes(value: tuple[str, ...]) -> tuple[str, ...]:
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression '{pattern}': {exc}") from None
    return value


def crontab(value: str) -> str:
    try:
        cron_trigger(value)  # the same reading the scheduler uses (crontab weekdays)
    except ValueError as exc:
        raise ValueError(
            f"invalid cron expression {json.dumps(value)}: {exc} (five fields: minute hour "
            'day-of-month month day-of-week, e.g. "*/10 6-22 * * *")'
        ) from None
    return value


def email_address(value: str) -> str:
    if "@" not in value:
        raise ValueError(f"expected an email address, got {json.dumps(value)}")
    return value


def email_addresses(value: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        raise ValueError("must list at least one email address")
    for address in value:
        email_address(address)
    return value


class ParsedQuery(NamedTuple):
    text: str
    query: Query


# Query texts already parsed, from the rules cache (scheduler.config.rulecache) of the command
# loading
# the config: a text found here is not parsed again (one that is not, a new or an invalid one,
# always is).
_KNOWN_QUERIES: ContextVar[Mapping[str, Query] | None] = ContextVar("known_queries", default=None)


def query(value: str) -> ParsedQuery:
    known = (_KNOWN_QUERIES.get() or {}).get(value)
    if known is not None:
        return ParsedQuery(value, known)
    try:
        return ParsedQuery(value, parse_query(value))
    except QueryError as exc:
        raise ValueError(f"invalid query: {exc}") from None


# --------------------------------------------------------------------------------------------
# The schema


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()  # the key must be given


@dataclass(frozen=True)
class Computed:
    """A default that depends on other keys of the same table."""

    describe: str
    compute: Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Key:
    """One config key. `default` is written as in TOML ("15m", not 900.0); None: no value."""

    name: str
    type: ValueType
    default: Any
    help: str
    check: Validator | None = None
    blank_is_unset: bool = False  # "" (e.g. from `${VAR:-}`) counts as not given
    unique: bool = False  # the value names its entry: unique within the array of tables
    refs: str | None = None  # a list of names of entries of this top-level table


class Entry(NamedTuple):
    """One checked table: the final values of its valid keys, and which keys the user gave."""

    values: dict[str, Any]
    given: frozenset[str]


Report = Callable[[str | None, str], None]  # (key or None for the table itself, message)
TableCheck = Callable[[Entry, Report], None]


@dataclass(frozen=True)
class Table:
    """A top-level table. kind: `table` ([x]), `array` ([[x]]), `named` ([x.NAME], typed)."""

    name: str
    kind: Literal["table", "array", "named"]
    help: str
    keys: tuple[Key, ...] = ()
    check: TableCheck | None = None
    optional: bool = False  # a missing `table` is None rather than all defaults
    noun: str = ""  # how messages call one entry: "source", "rule", "channel"


SOURCE_KINDS: tuple[SourceKind, ...] = ("feed", "sitemap", "site")


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


def _check_login(entry: Entry, report: Report) -> None:
    if "username" in entry.given and "password" not in entry.given:
        report("username", "username is set but password is not; give both or neither")
    if "password" in entry.given and "username" not in entry.given:
        report("password", "password is set but username is not; give both or neither")


_SMTP_PORTS = {"starttls": 587, "tls": 465, "none": 25}

_TIMEOUT_HELP = "give up on one delivery attempt after this long"

CHANNEL_TYPE_KEY = Key(
    "type", STRING, REQUIRED, "email, webhook or apprise", one_of("email", "webhook", "apprise")
)

CHANNEL_TYPES: dict[str, tuple[Key, ...]] = {
    "email": (
        CHANNEL_TYPE_KEY,
        Key("host", STRING, REQUIRED, "SMTP server", non_empty),
        Key(
            "port",
            INTEGER,
            Computed(
                "587 with starttls, 465 with tls, 25 with none",
                lambda values: _SMTP_PORTS.get(values.get("security") or "", 587),
            ),
            "SMTP port",
            between(1, 65535),
        ),
        Key("security", STRING, "starttls", "starttls, tls or none", one_of(*_SMTP_PORTS)),
        Key("username", STRING, None, "SMTP login, with password", blank_is_unset=True),
        Key("password", STRING, None, "SMTP password, with username", blank_is_unset=True),
        Key("from", STRING, REQUIRED, "sender address", email_address),
        Key("to", STRINGS, REQUIRED, "recipient addresses", email_addresses),
        Key("timeout", DURATION, "30s", _TIMEOUT_HELP, duration_at_least(1)),
    ),
    "webhook": (
        CHANNEL_TYPE_KEY,
        Key("url", STRING, REQUIRED, "http(s) URL that receives a JSON POST", http_url),
        Key("secret", STRING, None, "HMAC-SHA256 signing key", blank_is_unset=True),
        Key("timeout", DURATION, "10s", _TIMEOUT_HELP, duration_at_least(1)),
    ),
    "apprise": (
        CHANNEL_TYPE_KEY,
        Key("url", STRING, REQUIRED, "an Apprise URL such as ntfys://host/topic", non_empty),
        Key("timeout", DURATION, "30s", _TIMEOUT_HELP, duration_at_least(1)),
    ),
}
CHANNEL_CHECKS: dict[str, TableCheck] = {"email": _check_login}


_DEFAULTS = CrawlOptions()

SCHEMA: tuple[Table, ...] = (
    Table(
        "archive",
        "table",
        "where articles are kept",
        (
            Key("path", STRING, "../data/newswatch.db", "SQLite file of the archive", non_empty),
            Key("keep_days", INTEGER, 0, "prune older articles; 0 keeps all", at_least(0)),
        ),
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
        (Key("listen", STRING, "127.0.0.1:9180", "health and metrics server", host_port),),
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
            for kind, keys in CHANNEL_TYPES.items():
                for key in keys:
                    yield f"{table.name}.<{kind}>.{key.name}", key
        else:
            suffix = "[]" if table.kind == "array" else ""
            for key in table.keys:
                yield f"{table.name}{suffix}.{key.name}", key


# --------------------------------------------------------------------------------------------
# The result


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


def load(
    path: str | Path, environ: Mapping[str, str] | None = None, cached: bool = False
) -> Config:
    """Read and validate the config file; raise ConfigError listing every problem.

    `environ` is where `${NAME}` is looked up: os.environ when None. `cached`: take the parsed
    queries from the rules cache beside the archive, and hand the cache on in
    `Config.rules_cache` (the commands that crawl; `check` never does).
    """
    config, problems = _load(path, os.environ if environ is None else environ, cached)
    if problems or config is None:
        raise ConfigError(problems)
    return config


def validate(path: str | Path, environ: Mapping[str, str] | None = None) -> list[Problem]:
    """Every problem of the config file, sorted by line; [] when it is valid."""
    return _load(path, os.environ if environ is None else environ)[1]


def _load(
    path: str | Path, environ: Mapping[str, str], cached: bool = False
) -> tuple[Config | None, list[Problem]]:
    file = str(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        message = "config file not found; create one with `newswatch init`"
        return None, [Problem(file, 1, "(file)", message)]
    except OSError as exc:
        return None, [Problem(file, 1, "(file)", f"cannot read config file: {exc.strerror}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(file, line, "(file)", "not UTF-8 text; save the file as UTF-8")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_problem(file, text, str(exc), _Locator(text).duplicate_line)]
    # where each key is written: found only when a problem is reported (a scan of the text
    # cost 10,000 rules about 1 s)
    loader = _Loader(file, functools.cache(lambda: _Locator(text).lines), environ)
    cache = RuleCache.load(_cache_path(Path(path), data, environ)) if cached else None
    known = _KNOWN_QUERIES.set(cache.queries if cache is not None else None)
    try:
        config = loader.run(Path(path), data)
    finally:
        _KNOWN_QUERIES.reset(known)
    secrets = channel_secrets(_raw_channels(data, environ))
    problems = sorted(
        (Problem(p.file, p.line, p.key, redact(p.message, secrets)) for p in loader.problems),
        key=lambda problem: problem.line,
    )
    if problems or config is None:
        return None, problems
    if cache is not None:
        parsed = {rule.query_text: rule.query for rule in config.rules}
        if config.topic is not None and config.topic_text is not None:
            parsed[config.topic_text] = config.topic
        cache.remember_queries(parsed)
        config = dataclasses.replace(config, rules_cache=cache)
    return config, problems


def _cache_path(config_path: Path, data: Mapping[str, Any], environ: Mapping[str, str]) -> Path:
    """Where the rules cache of this config's archive is (as `_build` places the archive)."""
    archive = data.get("archive") if isinstance(data.get("archive"), dict) else {}
    raw = archive.get("path", "../data/newswatch.db") if isinstance(archive, dict) else None
    text = expand(raw, environ)[0] if isinstance(raw, str) else "../data/newswatch.db"
    directory = Path(os.path.abspath(config_path)).parent
    return cache_path(Path(os.path.normpath(directory / Path(text).expanduser())))


def _raw_channels(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Channel]:
    """The `[channels]` tables as written (strings expanded), valid or not: their secrets must
    not appear in the problems reported about them."""
    channels: dict[str, Channel] = {}
    tables = data.get("channels")
    if not isinstance(tables, dict):
        return channels
    for name, table in tables.items():
        if not isinstance(table, dict):
            continue
        options: dict[str, object] = {
            str(key): expand(value, environ)[0] if isinstance(value, str) else str(value)
            for key, value in table.items()
        }
        apprise = options.get("type") == "apprise"
        channels[str(name)] = Channel(str(name), "apprise" if apprise else "webhook", options)
    return channels


def _syntax_problem(file: str, text: str, message: str, duplicate_line: int | None) -> Problem:
    found = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if found:
        line = int(found[1])
        message = f"{message[: found.start()]} (column {found[2]})"
    else:
        end = re.search(r"\s*\(at end of document\)$", message)
        if end:
            message = message[: end.start()]
        line = duplicate_line or max(1, len(text.rstrip().splitlines()))
    return Problem(file, line, "(syntax)", f"invalid TOML: {message}")


# --------------------------------------------------------------------------------------------
# Environment expansion

_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")


def expand(text: str, environ: Mapping[str, str]) -> tuple[str, list[str]]:
    """`text` with `${NAME}` and `${NAME:-default}` replaced; the problems found, if any."""
    problems: list[str] = []

    def replace(match: re.Match[str]) -> str:
        whole, name, default = match[0], match[1], match[2]
        if whole == "$${":
            return "${"
        if name is None:
            problems.append(
                "malformed ${...}: write ${NAME} or ${NAME:-default}, or $${ for a literal ${"
            )
            return whole
        value = environ.get(name)
        if default is not None:
            return value or default
        if value is None:
            problems.append(
                f"environment variable {name} is not set; set it or write ${{{name}:-default}}"
            )
            return whole
        return value

    return _REFERENCE.sub(replace, text), problems


# --------------------------------------------------------------------------------------------
# The loader: walks SCHEMA over the parsed TOML, collecting problems


class _Missing:
    pass


class _Failed:
    pass


_MISSING: Any = _Missing()  # the key is not given
_FAILED: Any = _Failed()  # the key is given, and its problem is reported


class _Loader:
    def __init__(
        self, file: str, lines: Callable[[], dict[KeyPath, int]], environ: Mapping[str, str]
    ) -> None:
        self.file = file
        self.lines = lines
        self.environ = environ
        self.problems: list[Problem] = []
        self.names: dict[str, dict[str, KeyPath]] = {}  # table -> entry name -> its key path
        self.references: list[tuple[KeyPath, str, tuple[str, ...]]] = []

    def line_of(self, path: KeyPath) -> int:
        lines = self.lines()
        while path:
            if path in lines:
                return lines[path]
            path = path[:-1]
        return 1

    def report(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(self.file, self.line_of(path), render_path(path), message))

    def unknown(self, path: KeyPath, name: str, expected: Sequence[str]) -> None:
        message = f"unknown key; expected one of: {', '.join(expected)}"
        close = difflib.get_close_matches(name, expected, n=1, cutoff=0.6)
        if close:
            message += f"; did you mean '{close[0]}'?"
        self.report(path, message)

    def run(self, config_path: Path, data: dict[str, Any]) -> Config | None:
        for name in data:
            if name not in TABLES:
                self.unknown((name,), name, list(TABLES))
        results: dict[str, Any] = {}
        for table in SCHEMA:
            raw = data.get(table.name, _MISSING)
            if table.kind == "table":
                results[table.name] = self.table(table, raw)
            elif table.kind == "array":
                results[table.name] = self.array(table, raw)
            else:
                results[table.name] = self.channels(table, raw)
        self.check_references()
        if self.problems:
            return None
        return _build(config_path, results)

    def table(self, table: Table, raw: Any) -> Entry | None:
        if raw is _MISSING:
            raw = None if table.optional else {}
        if raw is None:
            return None
        return self.entry((table.name,), raw, table.keys, table)

    def array(self, table: Table, raw: Any) -> list[Entry | None]:
        if raw is _MISSING:
            return []
        if not isinstance(raw, list):
            self.report(
                (table.name,),
                f"expected an array of tables (write [[{table.name}]] before each entry), "
                f"got {describe(raw)}",
            )
            return []
        return [self.entry((table.name, i), item, table.keys, table) for i, item in enumerate(raw)]

    def channels(self, table: Table, raw: Any) -> dict[str, Entry | None]:
        if raw is _MISSING:
            return {}
        if not isinstance(raw, dict):
            self.report(
                (table.name,), f"expected a table of [channels.NAME] tables, got {describe(raw)}"
            )
            return {}
        results: dict[str, Entry | None] = {}
        for name, item in raw.items():
            path: KeyPath = (table.name, name)
            self.names.setdefault(table.name, {}).setdefault(name, path)
            if not NAME_PATTERN.fullmatch(name):
                self.report(path, f"invalid channel name: use only {NAME_RULE}")
            if not isinstance(item, dict):
                self.report(path, f"expected a [channels.{name}] table, got {describe(item)}")
                continue
            kind = self.value(path, item, CHANNEL_TYPE_KEY)
            if kind is _MISSING or kind is _FAILED:
                continue
            results[name] = self.entry(
                path, item, CHANNEL_TYPES[kind], None, CHANNEL_CHECKS.get(kind)
            )
        return results

    def entry(
        self,
        path: KeyPath,
        raw: Any,
        keys: Sequence[Key],
        table: Table | None,
        check: TableCheck | None = None,
    ) -> Entry | None:
        """Check one table against `keys`; its Entry, or None when it has problems."""
        if not isinstance(raw, dict):
            self.report(path, f"expected a table, got {describe(raw)}")
            return None
        before = len(self.problems)
        names = [key.name for key in keys]
        for name in raw:
            if name not in names:
                self.unknown((*path, name), name, names)
        values: dict[str, Any] = {}
        given: set[str] = set()
        computed: list[Key] = []
        for key in keys:
            value = self.value(path, raw, key, table)
            if value is _MISSING:
                if isinstance(key.default, Computed):
                    computed.append(key)
                elif key.default is not REQUIRED:
                    values[key.name] = None if key.default is None else _finish(key, key.default)
            else:
                given.add(key.name)  # even when invalid: the table checks look at presence
                if value is not _FAILED:
                    values[key.name] = value
        for key in computed:
            values[key.name] = key.default.compute(values)
        entry = Entry(values, frozenset(given))
        check = check or (table.check if table else None)
        if check:
            check(entry, lambda key, message: self.report((*path, key) if key else path, message))
        return entry if len(self.problems) == before else None

    def value(
        self, path: KeyPath, raw: dict[str, Any], key: Key, table: Table | None = None
    ) -> Any:
        """The final value of `key` in `raw`: _MISSING when not given, _FAILED when reported."""
        where = (*path, key.name)
        if key.name not in raw:
            if key.default is REQUIRED:
                self.report(where, f"required key is missing ({key.help})")
            return _MISSING
        value = self.expand(where, raw[key.name])
        if value is _FAILED:
            return _FAILED
        if key.blank_is_unset and value == "":
            return _MISSING
        try:
            value = _finish(key, value)
        except ValueError as exc:
            self.report(where, str(exc))
            return _FAILED
        if key.unique and table is not None:
            seen = self.names.setdefault(table.name, {})
            if value in seen:
                first = self.line_of(seen[value])
                self.report(
                    where,
                    f"duplicate {table.noun} name {json.dumps(value)}; "
                    f"the first is at line {first}",
                )
                return _FAILED
            seen[value] = where
        if key.refs:
            self.references.append((where, key.refs, value))
        return value

    def expand(self, where: KeyPath, value: Any) -> Any:
        """`value` with every string in it expanded; _FAILED when a problem was reported."""
        problems: list[str] = []

        def one(item: Any) -> Any:
            if not isinstance(item, str):
                return item
            text, found = expand(item, self.environ)
            problems.extend(found)
            return text

        result = [one(item) for item in value] if isinstance(value, list) else one(value)
        for problem in problems:
            self.report(where, problem)
        return _FAILED if problems else result

    def check_references(self) -> None:
        for where, table, names in self.references:
            defined = self.names.get(table, {})
            noun = TABLES[table].noun
            for name in names:
                if name in defined:
                    continue
                if defined:
                    listing = f"defined {table}: {', '.join(defined)}"
                else:
                    listing = f"no {table} are defined"
                message = f"no {noun} named {json.dumps(name)} ({listing})"
                close = difflib.get_close_matches(name, list(defined), n=1, cutoff=0.6)
                if close:
                    message += f"; did you mean '{close[0]}'?"
                self.report(where, message)


def _finish(key: Key, value: Any) -> Any:
    value = key.type.convert(value)
    return key.check(value) if key.check else value


def _build(config_path: Path, results: dict[str, Any]) -> Config:
    """Turn checked entries into the model's values (only called when there are no problems)."""
    archive = results["archive"].values
    directory = Path(os.path.abspath(config_path)).parent
    archive_path = Path(os.path.normpath(directory / Path(archive["path"]).expanduser()))
    topic: Entry | None = results["topic"]
    parsed: ParsedQuery | None = topic.values["query"] if topic else None
    sources = []
    for entry in results["sources"]:
        v = entry.values
        kind = next(kind for kind in SOURCE_KINDS if v[kind] is not None)
        sources.append(
            Source(
                name=v["name"],
                kind=kind,
                url=v[kind],
                every=v["every"],
                cron=v["cron"],
                topic=v["topic"],
                follow=v["follow"],
            )
        )
    rules = [
        Rule(
            name=v["name"],
            query_text=v["query"].text,
            query=v["query"].query,
            notify=v["notify"],
            digest=v["digest"],
            sources=v["sources"],
            max_per_hour=v["max_per_hour"],
        )
        for v in (entry.values for entry in results["rules"])
    ]
    channels = {
        name: Channel(
            name=name,
            type=entry.values["type"],
            options={key: value for key, value in entry.values.items() if key != "type"},
        )
        for name, entry in results["channels"].items()
    }
    health = results["health"].values
    return Config(
        path=Path(os.path.abspath(config_path)),
        archive_path=archive_path,
        keep_days=archive["keep_days"],
        crawl=CrawlOptions(**results["crawl"].values),
        listen=results["service"].values["listen"],
        topic=parsed.query if parsed else None,
        topic_text=parsed.text if parsed else None,
        sources=tuple(sources),
        rules=tuple(rules),
        health_notify=health["notify"],
        health_failures=health["failures"],
        channels=channels,
    )


# --------------------------------------------------------------------------------------------
# Line numbers: tomllib has none, so scan the text for headers and keys


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Key path -> 1-based line where it is first written (tables: their header line).

    Paths use 0-based indexes for arrays of tables: `("sources", 1, "every")`. Keys inside
    inline tables and arrays are not listed: their enclosing key is.
    """
    return _Locator(text).lines


class _Locator:
    def __init__(self, text: str) -> None:
        self.text = text
        self.newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.lines: dict[KeyPath, int] = {}
        self.explicit: set[KeyPath] = set()
        self.duplicate_line: int | None = None  # first key or table defined twice
        self.arrays: dict[tuple[str, ...], int] = {}  # [[a.b]] -> its current index
        self.table: KeyPath = ()
        self.scan()

    def line_at(self, position: int) -> int:
        return bisect_right(self.newlines, position - 1) + 1

    def scan(self) -> None:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            while i < n and text[i] in " \t\r":
                i += 1
            if i >= n:
                break
            if text[i] == "[":
                i = self.header(i)
            elif text[i] not in "#\n":
                i = self.key_value(i)
            end = text.find("\n", i)
            i = n if end < 0 else end + 1

    def header(self, i: int) -> int:
        line = self.line_at(i)
        many = self.text.startswith("[[", i)
        parts, i = self.keys(i + (2 if many else 1))
        if not parts:
            return i
        path: list[str | int] = []
        plain: tuple[str, ...] = ()
        for index, part in enumerate(parts):
            plain += (part,)
            path.append(part)
            last = index == len(parts) - 1
            if many and last:
                self.arrays[plain] = self.arrays.get(plain, -1) + 1
                path.append(self.arrays[plain])
            elif plain in self.arrays:
                path.append(self.arrays[plain])
        self.table = tuple(path)
        self.register(self.table, line)
        return i

    def key_value(self, i: int) -> int:
        line = self.line_at(i)
        parts, i = self.keys(i)
        if not parts or not self.text.startswith("=", i):
            return i
        self.register((*self.table, *parts), line)
        return self.skip_value(i + 1)

    def register(self, path: KeyPath, line: int) -> None:
        if path in self.explicit and self.duplicate_line is None:
            self.duplicate_line = line
        self.explicit.add(path)
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def keys(self, i: int) -> tuple[list[str], int]:
        """A dotted key starting at i: its parts, and the position after it and its spaces."""
        text, parts = self.text, []
        while True:
            while i < len(text) and text[i] in " \t":
                i += 1
            if text.startswith('"', i):
                end = i + 1
                while end < len(text) and text[end] not in '"\n':
                    end += 2 if text[end] == "\\" else 1
                try:
                    parts.append(json.loads(text[i : end + 1]))
                except ValueError:
                    parts.append(text[i + 1 : end])
                i = end + 1
            elif text.startswith("'", i):
                end = text.find("'", i + 1)
                end = len(text) if end < 0 else end
                parts.append(text[i + 1 : end])
                i = end + 1
            else:
                bare = _BARE_KEY.match(text, i)
                if not bare:
                    return [], i
                parts.append(bare[0])
                i = bare.end()
            while i < len(text) and text[i] in " \t":
                i += 1
            if not text.startswith(".", i):
                return parts, i
            i += 1

    def skip_value(self, i: int) -> int:
        """The position of the newline that ends the value starting at i (or the text's end)."""
        text, n, depth = self.text, len(self.text), 0
        while i < n:
            char = text[i]
            if text.startswith('"""', i) or text.startswith("'''", i):
                quote = text[i : i + 3]
                i += 3
                while i < n and not text.startswith(quote, i):
                    i += 2 if quote == '"""' and text[i] == "\\" else 1
                i += 3
                while i < n and text[i] == quote[0]:  # up to two quotes may end the content
                    i += 1
                continue
            if char == '"' or char == "'":
                i += 1
                while i < n and text[i] not in (char, "\n"):
                    i += 2 if char == '"' and text[i] == "\\" else 1
            elif char == "#":
                end = text.find("\n", i)
                i = n if end < 0 else end
                continue
            elif char in "[{":
                depth += 1
            elif char in "]}":
                depth -= 1
            elif char == "\n" and depth <= 0:
                return i
            i += 1
        return i


# What `newswatch init` writes; config/example.toml holds the same text (a test compares them).
STARTER_CONFIG = r"""
# newswatch configuration. `newswatch check` lists every problem in it, with its line.
#
# Relative paths resolve against the directory of this file. In any string value, ${NAME} is
# replaced by the environment variable NAME, ${NAME:-default} falls back to "default" when NAME
# is unset or empty, and $${ is a literal "${". Durations: 90s, 15m, 2h, 7d, 1h30m.
# Every table and key may be left out (its default applies) unless its comment says "required".

[archive]
# SQLite file of the archive, created if missing (default "../data/newswatch.db")
path = "../data/newswatch.db"
# prune articles older than this many days; 0 keeps everything (default 0)
keep_days = 0

[crawl]
# sent with every request: name your crawler and a contact URL (default: the value below)
user_agent = "newswatch/0.1 (+https://example.org/about-our-crawler)"
# schedule of a source that has neither every nor cron, at least 1s (default "15m")
every = "15m"
# fetch each new feed item's page for the full text (default true)
fetch_articles = true
# honour robots.txt (default true)
obey_robots = true
# follow links (and redirects) from feeds, sitemaps and pages into loopback, private or
# link-local networks; sources' own URLs are always allowed (default false)
allow_private = false
# concurrent requests to one host, across all sources (default 2)
per_host = 2
# least time between two requests to one host; "0s" for local tests (default "1s")
delay = "1s"
# give up on a request after this long, at least 1s (default "30s")
timeout = "30s"
# a larger response is dropped and recorded as an error, at least 1024 (default 10_000_000)
max_page_bytes = 10_000_000

[service]
# host:port of `newswatch run`'s GET /healthz and GET /metrics (default "127.0.0.1:9180")
listen = "127.0.0.1:9180"

# Optional: what is worth keeping at all. An article that does not match is remembered as seen,
# but neither archived nor matched against the rules (see `topic` under [[sources]]).
[topic]
# required in [topic]: a query in the rule language (no default: without [topic], keep all)
query = 'NATO OR OTAN OR "air defence" OR "air defense" OR "missile defence" OR "missile defense"'

# One [[sources]] table per source, in any of three kinds: feed, site and sitemap.
[[sources]]
# required: unique name of the source; letters, digits, '-' and '_'
name = "nato-newsroom"
# RSS or Atom feed URL; a source has exactly one of feed, sitemap or site (no default)
feed = "https://example.org/nato/rss.xml"
# crawl this often, at least 1s; give every or cron, not both (default: [crawl] every)
every = "10m"
# false keeps everything from this source, ignoring [topic] (default true)
topic = false

[[sources]]
name = "defence-site"
# a section page that lists articles: its article links are followed (no default)
site = "https://example.com/news/"
# crawl on a five-field crontab: minute hour day-of-month month day-of-week (default: none)
cron = "*/10 6-22 * * *"
# site sources only: regexes an article URL must match (default: links under the site URL)
follow = ['^https://example\.com/news/\d{4}/']

[[sources]]
name = "wire-sitemap"
# a Google News sitemap, a plain sitemap or a sitemap index (no default)
sitemap = "https://example.net/sitemap-news.xml"

[[rules]]
# required: unique name of the rule; letters, digits, '-' and '_'
name = "air-defence"
# required: what an article must match, in the query language
query = '(NATO OR OTAN) AND ("air defence" OR "air defense" OR Patriot OR "IRIS-T")'
# names of the [channels] that receive its alerts (default [])
notify = ["analysts", "ops-hook", "team-chat"]
# off: one message per alert; hourly or daily: one digest per period (default "off")
digest = "off"
# only articles from these [[sources]]; empty means every source (default [])
sources = []
# at most this many single alerts per clock hour; the rest wait for one digest at the
# end of that hour, nothing is dropped (at least 1; default: no cap)
max_per_hour = 30

[health]
# [channels] that get source-health notices: failing, silent, recovered (default [])
notify = ["ops-hook"]
# consecutive failed runs before a source counts as failing, at least 1 (default 3)
failures = 3

# One [channels.NAME] table per channel; NAME uses letters, digits, '-' and '_'.
[channels.analysts]
# required: email, webhook or apprise
type = "email"
# required: the SMTP server
host = "mail.example.org"
# SMTP port (default 587 with starttls, 465 with tls, 25 with none)
port = 587
# starttls, tls or none (default "starttls")
security = "starttls"
# SMTP login; give username and password or neither; empty means no login (default: none)
username = "${SMTP_USER:-}"
# SMTP password, with username (default: none)
password = "${SMTP_PASSWORD:-}"
# required: the sender address
from = "newswatch@example.org"
# required: one or more recipient addresses
to = ["analyst@example.org"]
# give up on one delivery attempt after this long (default "30s")
timeout = "30s"

[channels.ops-hook]
# required: email, webhook or apprise
type = "webhook"
# required: http(s) URL that receives a JSON POST per alert, digest or health notice
url = "https://hooks.example.org/newswatch"
# signs every delivery (X-Newswatch-Signature-256); empty means unsigned (default: none)
secret = "${WEBHOOK_SECRET:-}"
# give up on one delivery attempt after this long (default "10s")
timeout = "10s"

[channels.team-chat]
# required: email, webhook or apprise
type = "apprise"
# required: any Apprise URL: slack://, discord://, tgram://, ntfys://, ...
url = "${CHAT_URL:-ntfys://ntfy.example.net/newswatch}"
# give up on one delivery attempt after this long (default "30s")
timeout = "30s"
""".removeprefix("\n")
