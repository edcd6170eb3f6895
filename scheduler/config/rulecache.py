"""The compiled config of the last run, kept beside the archive, so a cron pass with unchanged
rules neither reads the TOML, nor validates it, nor parses thousands of queries, nor builds
their index again.

``<archive>.rules-cache`` holds three things, each used only on an exact match:

- the whole validated config of the config file's exact bytes (scheduler.config.kept: the
  same file, path, home directory and values of the environment variables it names), without
  its channels' secrets, which are read from the file and the environment again on each use.
  Only a config that loaded without a problem is kept, so `newswatch check` and a crawl
  report every problem with its FILE:LINE as without the cache;
- the parsed query of every query text the config had (text -> `crawler.query.Query`), used
  when the file changed: a query text is looked up as written, so a new or an invalid query
  is always parsed, and its error reported;
- the `crawler.query.matcher.RuleIndex` of the rules that notify, served only to rules equal in
  every field to the ones it was built from.

A cache made by other code (another newswatch or Python, or an edited module of those that
make the config, the queries or the index) is ignored: its key includes their source. A
missing, unreadable, truncated or foreign file is ignored and written again (atomically: a
temporary file, then a rename). Safe to delete at any time; docs/operations.md ("The rules cache").

The file is a SHA-256 of its payload, then the payload: a file whose bytes changed is ignored
before anything is read from it, and every cached query must have the text it is filed under.
The payload is read with an unpickler that admits only the named classes of the config, the
model, the query and matcher modules, paths and plain containers (no other name, no dotted
path), so the file cannot run code; it is written with mode 0600. The collector is paused
while it is read or the index built (hundreds of thousands of long-lived objects at 10,000
rules: the collections their creation triggers cost more than making them).
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

from crawler.model import Rule
from crawler.query import Query
from crawler.query.matcher import RuleIndex
from scheduler.config.kept import Kept

log = logging.getLogger(__name__)

FORMAT = 3
# The code that makes what is cached: the config and its values (every module of these
# packages: the schema, the channels' keys, the loader), the queries, the index, the model.
_CODE_PACKAGES = ("scheduler.config", "scheduler.delivery.notify", "crawler.query")
_CODE_MODULES = ("crawler.model", "scheduler.service.schedule")
_ALLOWED = (
    {("crawler.query.evaluate", "Query")}
    | {("crawler.query.nodes", name) for name in ("Term", "And", "Or", "Not", "Near")}
    | {("crawler.query.matcher", name) for name in ("RuleIndex", "_Lookup", "Anchor")}
    | {("crawler.model", name) for name in ("Rule", "Source", "Channel", "CrawlOptions")}
    | {("scheduler.config.result", "Config")}
    | {("scheduler.config.kept", name) for name in ("Kept", "Hole")}
    | {("pathlib", "PosixPath")}
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
    files: list[Path] = []
    for name in _CODE_PACKAGES:
        spec = importlib.util.find_spec(name)
        for folder in (spec.submodule_search_locations or []) if spec else []:
            # the data files too: the built-in alias sets (crawler/query/aliases.toml)
            files += sorted([*Path(folder).glob("*.py"), *Path(folder).glob("*.toml")])
    for name in _CODE_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    for file in files:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


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


def rules_key(rules: Sequence[Rule]) -> str:
    """Every field of the rules that notify, as written (the parsed query follows from its
    text, but for the alias sets it names: their terms are in the key too): the key of their
    index."""
    digest = hashlib.sha256()
    for rule in (r for r in rules if r.notify):
        written = tuple(
            getattr(rule, f.name) for f in dataclasses.fields(rule) if f.name != "query"
        )
        digest.update(repr(written).encode("utf-8"))
        if "@" in rule.query_text:
            digest.update(repr(rule.query.root).encode("utf-8"))
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
        self._queries: dict[str, Query] | None = {}  # None: as read, not yet checked
        self._read_queries: object = None
        self.kept: Kept | None = None  # the whole config (scheduler.config.kept)
        self.config_hit = False  # the config of this run came from `kept`
        self._index_key: str | None = None
        self._index: RuleIndex | None = None
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
        cache._queries, cache._read_queries = None, data.get("queries")
        index = data.get("index")
        if isinstance(index, RuleIndex) and isinstance(data.get("index_key"), str):
            cache._index, cache._index_key = index, data["index_key"]
        kept = data.get("kept")
        if isinstance(kept, Kept) and isinstance(kept.rules_key, str):
            cache.kept = kept
        return cache

    @property
    def queries(self) -> dict[str, Query]:
        """The parsed query of each query text (checked on first use: a config from `kept`
        does not need them)."""
        if self._queries is None:
            read = self._read_queries
            if isinstance(read, dict) and all(
                isinstance(k, str) and isinstance(v, Query) and v.text == k for k, v in read.items()
            ):
                self._queries = read
            else:
                self._queries = {}
            self._read_queries = None
        return self._queries

    def remember_config(self, kept: Kept | None) -> None:
        """The whole config of a file that loaded without problems, its secrets left out (None:
        it cannot be kept, and the one kept before no longer serves)."""
        if kept is not None or self.kept is not None:
            self.kept, self._dirty = kept, True

    def remember_queries(self, parsed: Mapping[str, Query]) -> None:
        """The queries of a config that loaded without problems."""
        if parsed.keys() != self.queries.keys():
            self._queries = dict(parsed)
            self._dirty = True

    def index(self, rules: Sequence[Rule]) -> RuleIndex:
        """The index of `rules` (those that notify): the cached one if it was built from
        exactly these rules, else a new one (kept for next time)."""
        notifying = [r for r in rules if r.notify]
        kept = self.kept
        if kept is not None and getattr(kept.config, "rules", None) is rules:
            key = kept.rules_key  # the very rules of the kept config: their key is known
        else:
            key = rules_key(rules)
        if self._index is not None and self._index_key == key:
            return self._index
        with gc_paused():
            self._index = RuleIndex(notifying)
        self._index_key, self._dirty = key, True
        return self._index

    def save(self) -> None:
        """Write the cache if anything changed; a failure only costs the next run time."""
        if not self._dirty or self.path is None:
            return
        data = {
            "code": _code_key(),
            "queries": self.queries,
            "index_key": self._index_key,
            "index": self._index,
            "kept": self.kept,
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
