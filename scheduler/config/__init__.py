"""Load and validate the config file (docs/configuration.md) into the plain values of crawler.model.

Every key is declared once, in SCHEMA (scheduler/config/schema.py) or by its channel's module
(scheduler/delivery/notify/), with its type, default, help and validator; the loader walks
that table. Unknown keys are rejected. Nothing stops at the first mistake: `validate()` returns
every problem, `load()` raises ConfigError carrying all of them, each located as
`FILE:LINE: key.path: message` and sorted by line.

Order of work for one string value: `${NAME}` / `${NAME:-default}` expansion, then the type
check, then the key's validator. Only strings expand (an integer must be written as one).
tomllib gives no line numbers, so `locate_keys()` scans the raw text for table headers and keys.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crawler.model import Channel
from scheduler.config.expand import expand
from scheduler.config.kept import file_key
from scheduler.config.loader import _Loader, aliases_key
from scheduler.config.locate import _Locator, locate_keys
from scheduler.config.problems import ConfigError, Problem
from scheduler.config.result import Config
from scheduler.config.reuse import (
    archive_cache_path,
    config_cache_path,
    keep,
    restore,
    written_cache_path,
)
from scheduler.config.rulecache import RuleCache, gc_paused
from scheduler.config.schema import SCHEMA, TABLES, channel_types, schema_keys
from scheduler.config.secrets import channel_secrets, redact
from scheduler.config.starter import STARTER_CONFIG
from scheduler.config.values import _KNOWN_QUERIES, REQUIRED, Computed, known_key

__all__ = [
    "REQUIRED",
    "SCHEMA",
    "STARTER_CONFIG",
    "TABLES",
    "Computed",
    "Config",
    "ConfigError",
    "Problem",
    "channel_types",
    "load",
    "locate_keys",
    "schema_keys",
    "validate",
]

# --------------------------------------------------------------------------------------------
# The result


def load(
    path: str | Path, environ: Mapping[str, str] | None = None, cached: bool = False
) -> Config:
    """Read and validate the config file; raise ConfigError listing every problem.

    `environ` is where `${NAME}` is looked up: os.environ when None. `cached`: use the rules
    cache beside the archive (scheduler.config.rulecache): the whole config if this very file
    loaded before under the same variables (its secrets read again), else the parsed queries
    of the texts it knows; the cache is handed on in `Config.rules_cache` (the commands that
    crawl; `check` never uses it).
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
    if not cached:
        config, problems, _, _ = _parse(Path(path), text, environ, None, False)
        return config, problems
    key = file_key(Path(path), raw)
    guess = written_cache_path(Path(path), text, environ)
    with gc_paused():
        cache = RuleCache.load(guess) if guess is not None else None
        if cache is not None:  # the whole config, if this very file loaded before
            config = restore(cache.kept, key, text, environ)
            if config is not None and config_cache_path(config) == guess:
                cache.config_hit = True
                # the config, its rules and their index live as long as the process: frozen
                # before the collector runs again, no collection walks their objects
                gc.freeze()
                return dataclasses.replace(config, rules_cache=cache), []
    with gc_paused():  # a burst of long-lived objects: the rules
        config, problems, cache, data = _parse(Path(path), text, environ, cache, True)
    if config is None or cache is None:
        return None, problems
    sets = aliases_key(config.aliases)  # a query naming a set is known with its sets
    parsed = {known_key(rule.query_text, sets): rule.query for rule in config.rules}
    if config.topic is not None and config.topic_text is not None:
        parsed[known_key(config.topic_text, sets)] = config.topic
    cache.remember_queries(parsed)
    cache.remember_config(keep(config, data, key, text, environ))
    return dataclasses.replace(config, rules_cache=cache), problems


def _parse(
    path: Path, text: str, environ: Mapping[str, str], cache: RuleCache | None, cached: bool
) -> tuple[Config | None, list[Problem], RuleCache | None, dict[str, Any]]:
    """The config from the file's text, or its problems, and the parsed TOML; with `cached`,
    the rules cache of its archive too (`cache` if it is that one, else read), whose parsed
    queries are used."""
    file = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = _syntax_problem(file, text, str(exc), _Locator(text).duplicate_line)
        return None, [problem], None, {}
    # where each key is written: found only when a problem is reported (a scan of the text
    # cost 10,000 rules about 1 s)
    loader = _Loader(file, functools.cache(lambda: _Locator(text).lines), environ)
    if cached and (cache is None or cache.path != archive_cache_path(path, data, environ)):
        cache = RuleCache.load(archive_cache_path(path, data, environ))
    known = _KNOWN_QUERIES.set(cache.queries if cached and cache is not None else None)
    try:
        config = loader.run(path, data)
    finally:
        _KNOWN_QUERIES.reset(known)
    secrets = (*channel_secrets(_raw_channels(data, environ)), *_raw_web_secrets(data, environ))
    problems = sorted(
        (Problem(p.file, p.line, p.key, redact(p.message, secrets)) for p in loader.problems),
        key=lambda problem: problem.line,
    )
    if problems or config is None:
        return None, problems, cache, data
    return config, problems, cache, data


def _raw_web_secrets(data: Mapping[str, Any], environ: Mapping[str, str]) -> list[str]:
    """The `[web]` password, secret and tokens as written (expanded): never in a problem."""
    web = data.get("web")
    if not isinstance(web, dict):
        return []
    values = [web.get("password"), web.get("secret")]
    tokens = web.get("api_tokens")
    values += tokens if isinstance(tokens, list) else []
    expanded = (expand(v, environ)[0] for v in values if isinstance(v, str))
    return [v for v in expanded if len(v) >= 4]  # an empty or tiny value masks nothing


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
