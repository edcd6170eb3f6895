"""The compiled config of the last run, kept beside the archive, so a cron pass with unchanged
rules neither reads the TOML, nor validates it, nor parses thousands of queries, nor builds
their index again.

``<archive>.rules-cache`` holds three things, each used only on an exact match:

- the validated config (`scheduler.config.Config`) of the config file's exact bytes, at the
  same absolute path, with the same home directory and the same value (or absence) of every
  environment variable its ``${NAME}`` references looked up: any other byte, or any other
  value, misses it. Only a config that loaded without a problem is kept, so `newswatch check`
  and a crawl report every invalid query with its FILE:LINE as without the cache;
- the parsed query of every query text the config had (text -> `crawler.query.Query`), used
  when the file changed: a query text is looked up as written, so a new or an invalid query
  is always parsed, and its error reported;
- the `crawler.matcher.RuleIndex` of the rules that notify, served only to rules equal in
  every field to the ones it was built from.

A cache made by other code (another newswatch or Python, or an edited module of those that
make the config, the queries or the index) is ignored: its key includes their source. A
missing, unreadable, truncated or foreign file is ignored and written again (atomically: a
temporary file, then a rename). Safe to delete at any time; docs/operations.md ("Files").

The file is a SHA-256 of its payload, then the payload: a file whose bytes changed is ignored
before anything is read from it, and every cached query must have the text it is filed under.
The payload is read with an unpickler that admits only the named classes of the config,
query, matcher and model modules, paths and plain containers (no other name, no dotted path),
so the file cannot run code; it is written with mode 0600, beside the archive, which is as
trusted. The collector is paused while it is read (hundreds of thousands of objects at 10,000
rules: the collections that their creation triggered cost more than reading them).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import hashlib
import importlib.util
import io
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from crawler.matcher import RuleIndex
from crawler.model import Rule
from crawler.query import Query

log = logging.getLogger(__name__)

FORMAT = 3
# The modules whose code makes what is cached: the config, its values, the queries, the index.
_CODE = (
    "crawler.query",
    "crawler.matcher",
    "crawler.model",
    "scheduler.config",
    "scheduler.durations",
    "scheduler.schedule",
    "scheduler.rulecache",
)
_ALLOWED = (
    {("crawler.query", name) for name in ("Query", "Term", "And", "Or", "Not", "Near")}
    | {("crawler.matcher", name) for name in ("RuleIndex", "_Lookup", "Anchor")}
    | {("crawler.model", name) for name in ("Rule", "Source", "Channel", "CrawlOptions")}
    | {("scheduler.config", "Config"), ("pathlib", "PosixPath")}
    | {
        ("builtins", name)
        for name in ("set", "frozenset", "dict", "list", "tuple", "str", "int", "float", "bool")
    }
)


def cache_path(archive_path: Path) -> Path:
    return archive_path.with_name(archive_path.name + ".rules-cache")


@functools.cache
def _code_key() -> str:
    """What the cached objects depend on: the format, Python, and the code that made them."""
    digest = hashlib.sha256(f"format {FORMAT}\0{sys.version}".encode())
    for name in _CODE:
        spec = importlib.util.find_spec(name)
        digest.update(Path(spec.origin if spec and spec.origin else name).read_bytes())
    return digest.hexdigest()


def config_key(config_path: Path, raw: bytes) -> str:
    """The config file's exact bytes, where it is, and what ``~`` means (the archive's path
    may start with it); the environment variables it looked up are checked apart."""
    where = f"{os.path.abspath(config_path)}\0{os.path.expanduser('~')}\0".encode()
    return hashlib.sha256(where + raw).hexdigest()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No collection while a burst of long-lived objects is made (the rules, their index)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rules_key(rules: Sequence[Rule]) -> str:
    """Every field of the rules as written (the parsed query follows from its text)."""
    digest = hashlib.sha256()
    for rule in rules:
        written = tuple(
            getattr(rule, f.name) for f in dataclasses.fields(rule) if f.name != "query"
        )
        digest.update(repr(written).encode("utf-8"))
    return digest.hexdigest()


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a rules cache")


class RuleCache:
    """The cache file of one archive (`load`), used by the config loader and the crawl."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.queries: dict[str, Query] = {}
        self.config_hit = False  # the config came from this file (see `config`)
        self._config: tuple[str, dict[str, str | None], Any] | None = None
        self._index_key: str | None = None
        self._index: RuleIndex | None = None
        self._keyed: tuple[Sequence[Rule], str] | None = None  # rules -> _rules_key
        self._dirty = False

    @classmethod
    def load(cls, path: Path | None) -> RuleCache:
        cache = cls(path)
        if path is None:
            return cache
        try:
            raw = path.read_bytes()
            checksum, payload = raw[:32], raw[32:]
            if hashlib.sha256(payload).digest() != checksum:
                raise ValueError("its checksum does not match (damaged or truncated)")
            with gc_paused():
                data = _Unpickler(io.BytesIO(payload)).load()
        except FileNotFoundError:
            return cache
        except Exception as exc:  # truncated, corrupt, foreign: start afresh
            log.info("ignoring the rules cache %s: %s", path, exc)
            return cache
        if not isinstance(data, dict) or data.get("code") != _code_key():
            return cache
        queries, index = data.get("queries"), data.get("index")
        if isinstance(queries, dict) and all(
            isinstance(k, str) and isinstance(v, Query) and v.text == k for k, v in queries.items()
        ):
            cache.queries = queries
        if isinstance(index, RuleIndex) and isinstance(data.get("index_key"), str):
            cache._index, cache._index_key = index, data["index_key"]
        config = data.get("config")
        if (
            isinstance(config, tuple)
            and len(config) == 4
            and isinstance(config[0], str)
            and isinstance(config[1], dict)
            and all(isinstance(k, str) and isinstance(v, str | None) for k, v in config[1].items())
        ):
            key, environ, value, rules_key = config
            cache._config = (key, environ, value)
            rules = getattr(value, "rules", None)
            if isinstance(rules_key, str) and isinstance(rules, tuple):
                cache._keyed = (rules, rules_key)
        return cache

    def config(self, key: str, environ: Mapping[str, str]) -> Any | None:
        """The config kept under `key` (`config_key`) if every environment variable it looked
        up has the same value (or is unset as it was); else None."""
        if self._config is None or self._config[0] != key:
            return None
        if any(environ.get(name) != value for name, value in self._config[1].items()):
            return None
        return self._config[2]

    def remember_config(self, key: str, environ: Mapping[str, str | None], config: Any) -> None:
        """A config that loaded without problems, from the file `key` names, having looked up
        these environment variables (name -> value, None: unset)."""
        self._config, self._dirty = (key, dict(environ), config), True

    def remember_queries(self, parsed: Mapping[str, Query]) -> None:
        """The queries of a config that loaded without problems."""
        if parsed.keys() != self.queries.keys():
            self.queries = dict(parsed)
            self._dirty = True

    def _rules_key(self, rules: Sequence[Rule]) -> str:
        if self._keyed is not None and self._keyed[0] is rules:  # the cached config's rules
            return self._keyed[1]
        key = _rules_key([r for r in rules if r.notify])
        self._keyed = (rules, key)
        return key

    def index(self, rules: Sequence[Rule]) -> RuleIndex:
        """The index of `rules` (those that notify): the cached one if it was built from
        exactly these rules, else a new one (kept for next time)."""
        key = self._rules_key(rules)
        if self._index is not None and self._index_key == key:
            return self._index
        with gc_paused():
            self._index = RuleIndex([r for r in rules if r.notify])
        self._index_key, self._dirty = key, True
        return self._index

    def save(self) -> None:
        """Write the cache if anything changed; a failure only costs the next run time."""
        if not self._dirty or self.path is None:
            return
        config = None
        if self._config is not None:
            key, environ, value = self._config
            rules = getattr(value, "rules", None)
            keyed = self._keyed[1] if self._keyed and self._keyed[0] is rules else None
            config = (key, environ, value, keyed)
        data = {
            "code": _code_key(),
            "config": config,
            "queries": self.queries,
            "index_key": self._index_key,
            "index": self._index,
        }
        try:
            fd, tmp = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
            try:
                payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
                with os.fdopen(fd, "wb") as out:
                    out.write(hashlib.sha256(payload).digest() + payload)
                os.replace(tmp, self.path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            log.info("could not write the rules cache %s: %s", self.path, exc)
            return
        self._dirty = False
