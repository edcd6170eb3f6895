"""The value types of config keys (string, integer, boolean, duration, array of strings), the
validators a key may add (ranges, names, URLs, regexes, cron, e-mail addresses, queries), and
how a key and a table are declared (`Key`, `Table`). A channel module declares its options with
these (scheduler/delivery/notify/)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from crawler.query import Query, QueryError, Term
from crawler.query import parse as parse_query
from crawler.query.aliases import alias_term, check_name
from scheduler.config.durations import format_duration, parse_duration
from scheduler.config.problems import (
    describe,
)
from scheduler.service.schedule import cron_trigger

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


SECRET_CHARS = 16
MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def long_secret(value: str) -> str:
    """A signing key or token: long enough not to be guessed (its value is never echoed)."""
    if len(value.strip()) < SECRET_CHARS:
        raise ValueError(
            f"must be at least {SECRET_CHARS} characters; make one with `{MAKE_SECRET}`"
        )
    return value


def tokens(value: tuple[str, ...]) -> tuple[str, ...]:
    """API tokens; an empty one (an unset `${VAR:-}`) is left out and never lets anyone in."""
    for token in value:
        if token.strip():
            long_secret(token)
    return tuple(token for token in value if token.strip())


def valid_name(value: str) -> str:
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"invalid name {json.dumps(value)}: use only {NAME_RULE}")
    return value


def http_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {json.dumps(value)}")
    return value.strip()


def postgres_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("postgresql", "postgres") or not parts.path.strip("/"):
        shown = json.dumps(without_password(value))
        raise ValueError(
            "expected a PostgreSQL URL such as postgresql://newswatch@db.example.org/newswatch "
            f"(scheme postgresql://, with a database name), got {shown}"
        )
    return value.strip()


def without_password(value: str) -> str:
    """A URL as it may be shown: its password masked."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return "(not a URL)"
    return value.replace(f":{password}@", ":[secret]@", 1) if password else value


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


# The alias sets the queries of the config being loaded may name (`crawler.query.aliases`:
# each set's terms), and their fingerprint; None: the built-in sets only.
_ALIASES: ContextVar[tuple[str, Mapping[str, tuple[Term, ...]]] | None] = ContextVar(
    "aliases", default=None
)


def known_key(text: str, aliases_key: str | None) -> str:
    """The key of a query text among the known queries: a text naming an alias set (`@`)
    depends on the sets too, so their fingerprint is part of its key."""
    return f"{aliases_key or 'builtin'}\0{text}" if "@" in text else text


def query(value: str) -> ParsedQuery:
    aliases = _ALIASES.get()
    known = (_KNOWN_QUERIES.get() or {}).get(known_key(value, aliases[0] if aliases else None))
    if known is not None:
        return ParsedQuery(value, known)
    try:
        return ParsedQuery(value, parse_query(value, aliases[1] if aliases else None))
    except QueryError as exc:
        raise ValueError(f"invalid query: {exc}") from None


def alias_set(value: tuple[str, ...]) -> tuple[str, ...]:
    """The terms of one `[aliases]` set: at least one, each a word or a phrase."""
    if not value:
        raise ValueError(
            'must list at least one term, e.g. ["NATO", "OTAN", "North Atlantic Alliance"]'
        )
    for term in value:
        alias_term(term)
    return value


def alias_name(value: str) -> str:
    return check_name(value)


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
    kind: Literal["table", "array", "named", "sets"]
    help: str
    keys: tuple[Key, ...] = ()
    check: TableCheck | None = None
    optional: bool = False  # a missing `table` is None rather than all defaults
    noun: str = ""  # how messages call one entry: "source", "rule", "channel"


TIMEOUT_HELP = "give up on one delivery attempt after this long"  # every channel's timeout
