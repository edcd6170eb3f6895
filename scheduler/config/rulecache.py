"""The compiled rules of the last run, kept beside the archive, so a cron pass with unchanged
rules does not parse thousands of queries and build their index again.

``<archive>.rules-cache`` holds the parsed query of every query text the config had (text ->
`crawler.query.Query`) and the `crawler.query.matcher.RuleIndex` of the rules that notify, with the
exact rules it was built from. What is used from it must match exactly: a query text is looked
up as written (so a new or invalid query is always parsed, and its error reported), and the
index only serves rules equal in every field to the ones it was built from. A cache made by
other code (another newswatch, or an edited query or matcher module) is ignored: its key
includes the source of those modules. A missing, unreadable, truncated or foreign file is
ignored and written again (atomically: a temporary file, then a rename). Safe to delete at any
time; docs/operations.md ("Files").

The file is a SHA-256 of its payload, then the payload: a file whose bytes changed is ignored
before anything is read from it, and every cached query must have the text it is filed under.
The payload is read with an unpickler that admits only the named classes of the query, matcher
and model modules and plain containers (no other name, no dotted path), so the file cannot run
code; it is written with mode 0600.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import pickle
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import crawler.model
import crawler.query.evaluate
import crawler.query.matcher
import crawler.query.nodes
import crawler.query.syntax
from crawler.model import Rule
from crawler.query import Query
from crawler.query.matcher import RuleIndex

log = logging.getLogger(__name__)

FORMAT = 2
_ALLOWED = (
    {("crawler.query.evaluate", "Query")}
    | {("crawler.query.nodes", name) for name in ("Term", "And", "Or", "Not", "Near")}
    | {("crawler.query.matcher", name) for name in ("RuleIndex", "_Lookup", "Anchor")}
    | {("crawler.model", "Rule")}
    | {
        ("builtins", name)
        for name in ("set", "frozenset", "dict", "list", "tuple", "str", "int", "float", "bool")
    }
)


def cache_path(archive_path: Path) -> Path:
    return archive_path.with_name(archive_path.name + ".rules-cache")


def _code_key() -> str:
    """What the cached objects depend on: the format and the code that made them."""
    digest = hashlib.sha256(f"format {FORMAT}".encode())
    for module in (
        crawler.query.nodes,
        crawler.query.evaluate,
        crawler.query.syntax,
        crawler.query.matcher,
        crawler.model,
    ):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()


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
        return cache

    def remember_queries(self, parsed: Mapping[str, Query]) -> None:
        """The queries of a config that loaded without problems."""
        if parsed.keys() != self.queries.keys():
            self.queries = dict(parsed)
            self._dirty = True

    def index(self, rules: Sequence[Rule]) -> RuleIndex:
        """The index of `rules` (those that notify): the cached one if it was built from
        exactly these rules, else a new one (kept for next time)."""
        notifying = [r for r in rules if r.notify]
        key = _rules_key(notifying)
        if self._index is not None and self._index_key == key:
            return self._index
        self._index, self._index_key, self._dirty = RuleIndex(notifying), key, True
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
