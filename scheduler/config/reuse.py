"""Keeping the whole validated config in the rules cache and using it again
(scheduler.config.kept says what is kept and when it is used).

`keep` turns a freshly loaded config into its `Kept` form: each secret option of its channels,
each key of its `[web]` table and its archive's PostgreSQL URL replaced by the `Hole` where
its raw value is written in the file. `restore` gives the config
back for the same file under the same variables, each hole read from the file's text,
expanded from this run's environment and validated as the loader does; anything a fresh load
would report makes it miss. `written_cache_path` finds the rules cache from the `[archive]`
table alone, before the file is read as a whole.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from crawler.model import Channel
from scheduler.config.expand import expand
from scheduler.config.kept import (
    SECRET_OPTIONS,
    Hole,
    Kept,
    find_hole,
    read_hole,
    variables_digest,
)
from scheduler.config.loader import _finish, web_options
from scheduler.config.result import Config
from scheduler.config.rulecache import cache_path, rules_key
from scheduler.config.schema import TABLES, channel_checks, channel_types
from scheduler.config.values import REQUIRED, Entry, Key, TableCheck

KeyPath = tuple[str | int, ...]


def archive_cache_path(
    config_path: Path, data: Mapping[str, Any], environ: Mapping[str, str]
) -> Path:
    """Where the rules cache of this config's archive is (as the loader places the archive);
    with a PostgreSQL archive (`url`), beside the config file."""
    archive = data.get("archive") if isinstance(data.get("archive"), dict) else {}
    directory = Path(os.path.abspath(config_path)).parent
    if isinstance(archive, dict) and archive.get("url") and "path" not in archive:
        return cache_path(directory / Path(config_path).name)
    raw = archive.get("path", "../data/newswatch.db") if isinstance(archive, dict) else None
    text = expand(raw, environ)[0] if isinstance(raw, str) else "../data/newswatch.db"
    return cache_path(Path(os.path.normpath(directory / Path(text).expanduser())))


def config_cache_path(config: Config) -> Path:
    """Where the rules cache of a loaded config is: beside its SQLite archive, or beside the
    config file with a PostgreSQL archive (as `archive_cache_path` finds it)."""
    if config.archive_path is None:
        return cache_path(config.path)
    return cache_path(config.archive_path)


_ARCHIVE_TABLE = re.compile(r"^[ \t]*\[[ \t]*archive[ \t]*\][ \t]*(?:#.*)?$", re.MULTILINE)
_TABLE_HEADER = re.compile(r"^[ \t]*\[", re.MULTILINE)
_ARCHIVE_KEY = re.compile(r"^[ \t]*[\"']?archive\b", re.MULTILINE)


def written_cache_path(config_path: Path, text: str, environ: Mapping[str, str]) -> Path | None:
    """Where the rules cache is, from the [archive] table alone (the whole file is not read).

    Only a guess at where to look: a config found there is used only if it was kept from this
    very file and names this archive. None when the guess cannot be made.
    """
    found = _ARCHIVE_TABLE.search(text)
    if found is None:  # no [archive] table: the default, unless archive.* is written otherwise
        if _ARCHIVE_KEY.search(text):
            return None
        return archive_cache_path(config_path, {}, environ)
    end = _TABLE_HEADER.search(text, found.end())
    try:
        table = tomllib.loads(text[found.end() : end.start() if end else len(text)])
    except tomllib.TOMLDecodeError:
        return None
    return archive_cache_path(config_path, {"archive": table}, environ)


class _Names(Mapping[str, str]):
    """An environment in which nothing is set, noting every name looked up."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.seen.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _strings(value: Any, where: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    """Every string of the parsed TOML, with its key path."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, (*where, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*where, index))


def keep(
    config: Config, data: Mapping[str, Any], key: str, text: str, environ: Mapping[str, str]
) -> Kept | None:
    """`config` (loaded from `text`, parsed as `data`, of the file `key` names) as the rules
    cache keeps it: each secret option of its channels and each key of its `[web]` table
    replaced by the `Hole` where its raw value is written. None when it cannot be kept: a
    secret written in a way `find_hole` does not find, or an environment variable named by a
    secret and by another value."""
    tables = data.get("channels")
    # where the secrets are: every key of [web], the archive's URL, a channel's secret options
    holes: set[KeyPath] = {("web",), ("archive", "url")}
    web = _web_holes(data.get("web"), text)
    if web is _FAILED:
        return None
    url: Hole | None = None
    if config.archive_url is not None:
        archive = data.get("archive")
        written = archive.get("url") if isinstance(archive, dict) else None
        url = find_hole(text, written) if isinstance(written, str) else None
        if url is None:
            return None
    channels: dict[str, Channel] = {}
    for name, channel in config.channels.items():
        table = tables.get(name) if isinstance(tables, dict) else None
        table = table if isinstance(table, dict) else {}
        options = dict(channel.options)
        for option in SECRET_OPTIONS:
            written = table.get(option)
            if option in options and isinstance(written, str):
                hole = find_hole(text, written)
                if hole is None:
                    return None
                options[option] = hole
                holes.add(("channels", name, option))
        channels[name] = dataclasses.replace(channel, options=options)
    names: set[str] = set()
    secret_names: set[str] = set()
    for where, value in _strings(data):
        looked_up = _Names()
        expand(value, looked_up)
        secret = any(where[:n] in holes for n in (1, 2, 3))
        (secret_names if secret else names).update(looked_up.seen)
    if names & secret_names:
        return None
    kept = dataclasses.replace(
        config, channels=channels, web=None, archive_url=None, rules_cache=None
    )
    digest = variables_digest(names, environ)
    return Kept(key, tuple(sorted(names)), digest, kept, rules_key(config.rules), web, url)


def _web_holes(table: object, text: str) -> Any:
    """The `[web]` table's keys as holes (None: no table); _FAILED if one is not found."""
    if not isinstance(table, dict):
        return None
    holes: dict[str, Hole | tuple[Hole, ...]] = {}
    for name, written in table.items():
        hole: Hole | tuple[Hole, ...] | None
        if isinstance(written, str):
            hole = find_hole(text, written)
        elif isinstance(written, list) and all(isinstance(item, str) for item in written):
            found = [find_hole(text, item) for item in written]
            hole = None if None in found else tuple(h for h in found if h is not None)
        else:
            hole = None
        if hole is None:
            return _FAILED
        holes[name] = hole
    return holes


def restore(kept: Kept | None, key: str, text: str, environ: Mapping[str, str]) -> Config | None:
    """The kept config if it was kept from the file `key` names under the same variables, its
    secrets read from `text`, expanded and validated as a fresh load would; else None (and the
    fresh load reports whatever is wrong)."""
    if kept is None or not kept.fits(key, environ) or not isinstance(kept.config, Config):
        return None
    channels: dict[str, Channel] = {}
    for name, channel in kept.config.channels.items():
        keys = {k.name: k for k in channel_types().get(channel.type, ())}
        options: dict[str, object] = {}
        for option, value in channel.options.items():
            if isinstance(value, Hole):
                value = _fill(keys.get(option), text, value, environ)
                if value is _FAILED:
                    return None
            options[option] = value
        if not _checks_pass(channel_checks().get(channel.type), options):
            return None
        channels[name] = dataclasses.replace(channel, options=options)
    web = _web(kept.web, text, environ)
    if web is _FAILED:
        return None
    url = None
    if kept.archive_url is not None:
        key_url = next(k for k in TABLES["archive"].keys if k.name == "url")
        url = _fill(key_url, text, kept.archive_url, environ)
        if url is _FAILED or url is None:  # blank now: the loader takes the default path
            return None
    return dataclasses.replace(kept.config, channels=channels, web=web, archive_url=url)


def _web(
    holes: dict[str, Hole | tuple[Hole, ...]] | None, text: str, environ: Mapping[str, str]
) -> Any:  # WebOptions, None or _FAILED
    """The web view from the `[web]` table's holes, as the loader makes it; _FAILED where the
    loader would report a problem."""
    if holes is None:
        return None
    table = TABLES["web"]
    values: dict[str, Any] = {}
    for key in table.keys:
        hole = holes.get(key.name)
        if hole is None:
            if key.default is REQUIRED:
                return _FAILED
            values[key.name] = None if key.default is None else _finish(key, key.default)
        elif isinstance(hole, Hole):
            values[key.name] = _fill(key, text, hole, environ)
        else:
            values[key.name] = _fill_array(key, text, hole, environ)
        if values[key.name] is _FAILED:
            return _FAILED
    if set(holes) - {key.name for key in table.keys}:
        return _FAILED  # an unknown key: the loader reports it
    if not _checks_pass(table.check, values, frozenset(holes)):
        return _FAILED
    return web_options(values)


class _Failed:
    pass


_FAILED: Any = _Failed()  # where the loader would report a problem


def _checks_pass(
    check: TableCheck | None, values: dict[str, Any], given: frozenset[str] | None = None
) -> bool:
    """True if a table's check of keys that depend on each other (email: username and
    password; web: its secret) reports nothing, as the loader runs it (`given`: the keys
    written; by default those with a value)."""
    if check is None:
        return True
    failed: list[str] = []
    if given is None:
        given = frozenset(k for k, v in values.items() if v is not None)
    check(Entry(values, given), lambda _key, message: failed.append(message))
    return not failed


def _fill(key: Key | None, text: str, hole: Hole, environ: Mapping[str, str]) -> Any:
    """The final value of a secret option written at `hole`, as the loader makes it; _FAILED
    where the loader would report a problem."""
    raw = read_hole(text, hole)
    if key is None or raw is None:
        return _FAILED
    value, problems = expand(raw, environ)
    if problems:
        return _FAILED
    if key.blank_is_unset and value == "":
        return None if key.default is None else _FAILED
    try:
        return _finish(key, value)
    except ValueError:
        return _FAILED


def _fill_array(key: Key, text: str, holes: tuple[Hole, ...], environ: Mapping[str, str]) -> Any:
    """The final value of an array of strings written at `holes`, as the loader makes it."""
    items = []
    for hole in holes:
        raw = read_hole(text, hole)
        if raw is None:
            return _FAILED
        value, problems = expand(raw, environ)
        if problems:
            return _FAILED
        items.append(value)
    try:
        return _finish(key, items)
    except ValueError:
        return _FAILED
