"""Walking the parsed TOML against the schema: every key typed and checked, every problem
reported with its path, then the plain values of crawler.model built from the results."""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from crawler.model import Channel, CrawlOptions, Rule, Source
from crawler.query.aliases import alias_sets, expansions
from scheduler.config.expand import (
    expand,
)
from scheduler.config.problems import (
    KeyPath,
    Problem,
    describe,
    render_path,
)
from scheduler.config.result import (
    Config,
)
from scheduler.config.schema import (
    SCHEMA,
    SOURCE_KINDS,
    TABLES,
    channel_checks,
    channel_type_key,
    channel_types,
)
from scheduler.config.values import (
    _ALIASES,
    NAME_PATTERN,
    NAME_RULE,
    REQUIRED,
    Computed,
    Entry,
    Key,
    ParsedQuery,
    Table,
    TableCheck,
    alias_name,
)
from scheduler.web.options import WebOptions

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
        token = None
        try:
            for table in SCHEMA:
                raw = data.get(table.name, _MISSING)
                if table.kind == "table":
                    results[table.name] = self.table(table, raw)
                elif table.kind == "array":
                    results[table.name] = self.array(table, raw)
                elif table.kind == "sets":
                    results[table.name] = sets = self.sets(table, raw)
                    # the queries after it may name these sets (the tables come in this order)
                    token = _ALIASES.set((aliases_key(sets), expansions(alias_sets(sets))))
                else:
                    results[table.name] = self.channels(table, raw)
        finally:
            if token is not None:
                _ALIASES.reset(token)
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
            kind = self.value(path, item, channel_type_key())
            if kind is _MISSING or kind is _FAILED:
                continue
            results[name] = self.entry(
                path, item, channel_types()[kind], None, channel_checks().get(kind)
            )
        return results

    def sets(self, table: Table, raw: Any) -> dict[str, tuple[str, ...]]:
        """The valid sets of `[aliases]`: name -> its terms as written."""
        if raw is _MISSING:
            return {}
        if not isinstance(raw, dict):
            self.report(
                (table.name,),
                f'expected an [{table.name}] table of name = ["term", ...], got {describe(raw)}',
            )
            return {}
        (key,) = table.keys
        found: dict[str, tuple[str, ...]] = {}
        for name, terms in raw.items():
            path: KeyPath = (table.name, name)
            try:
                key_name = alias_name(name)
            except ValueError as exc:
                self.report(path, str(exc))
                continue
            value = self.expand(path, terms)
            if value is _FAILED:
                continue
            try:
                found[key_name] = _finish(key, value)
            except ValueError as exc:
                self.report(path, str(exc))
        return found

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


def aliases_key(sets: Mapping[str, Sequence[str]]) -> str:
    """A fingerprint of a config's alias sets (the built-in ones are in the code's key)."""
    return hashlib.sha256(json.dumps(sorted(sets.items())).encode("utf-8")).hexdigest()


def _finish(key: Key, value: Any) -> Any:
    value = key.type.convert(value)
    return key.check(value) if key.check else value


def _build(config_path: Path, results: dict[str, Any]) -> Config:
    """Turn checked entries into the model's values (only called when there are no problems)."""
    archive = results["archive"].values
    directory = Path(os.path.abspath(config_path)).parent
    archive_url: str | None = archive["url"]
    archive_path = (
        None
        if archive_url is not None
        else Path(os.path.normpath(directory / Path(archive["path"]).expanduser()))
    )
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
    web: Entry | None = results["web"]
    return Config(
        path=Path(os.path.abspath(config_path)),
        archive_path=archive_path,
        archive_url=archive_url,
        keep_days=archive["keep_days"],
        crawl=CrawlOptions(**results["crawl"].values),
        listen=results["service"].values["listen"],
        node=results["service"].values["node"],
        lease=results["service"].values["lease"],
        topic=parsed.query if parsed else None,
        topic_text=parsed.text if parsed else None,
        sources=tuple(sources),
        rules=tuple(rules),
        aliases=dict(results["aliases"]),
        health_notify=health["notify"],
        health_failures=health["failures"],
        channels=channels,
        web=web_options(web.values) if web is not None else None,
    )


def web_options(values: Mapping[str, Any]) -> WebOptions | None:
    """The web view of a checked `[web]` table: none while its password is empty."""
    if not values["password"].strip():
        return None
    return WebOptions(
        password=values["password"],
        secret=values["secret"],
        api_tokens=tuple(values["api_tokens"]),
    )
