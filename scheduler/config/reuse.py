"""Keeping the whole validated config in the rules cache and using it again
(scheduler.config.kept says what is kept and when it is used).

`keep` turns a freshly loaded config into its `Kept` form: each secret option of its channels
replaced by the `Hole` where its raw value is written in the file. `restore` gives the config
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
from scheduler.config.loader import _finish
from scheduler.config.result import Config
from scheduler.config.rulecache import cache_path, rules_key
from scheduler.config.schema import channel_checks, channel_types
from scheduler.config.values import Entry, Key

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
    cache keeps it: each secret option of its channels replaced by the `Hole` where its raw
    value is written. None when it cannot be kept: a secret written in a way `find_hole` does
    not find, or an environment variable named by a secret and by another value."""
    tables = data.get("channels")
    holes: set[KeyPath] = set()
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
        (secret_names if where[:3] in holes else names).update(looked_up.seen)
    if names & secret_names:
        return None
    kept = dataclasses.replace(config, channels=channels, rules_cache=None)
    digest = variables_digest(names, environ)
    return Kept(key, tuple(sorted(names)), digest, kept, rules_key(config.rules))


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
        if not _checks_pass(channel.type, options):
            return None
        channels[name] = dataclasses.replace(channel, options=options)
    return dataclasses.replace(kept.config, channels=channels)


class _Failed:
    pass


_FAILED: Any = _Failed()  # where the loader would report a problem


def _checks_pass(kind: str, options: dict[str, object]) -> bool:
    """True if the channel type's check of keys that depend on each other (email: username
    and password) reports nothing, as the loader runs it."""
    check = channel_checks().get(kind)
    if check is None:
        return True
    failed: list[str] = []
    given = frozenset(k for k, v in options.items() if v is not None)
    check(Entry(options, given), lambda _key, message: failed.append(message))
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
