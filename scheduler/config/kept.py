"""The whole validated config of an unchanged config file, as the rules cache keeps it
(scheduler.config.rulecache), so a cron pass with unchanged rules reads neither the TOML nor
thousands of queries.

A `Kept` config is used again only for the same file: its exact bytes, at the same absolute
path, with the same home directory (`file_key`), and while every environment variable that
its kept values name has the value (or the absence) it had (`variables_digest`: a digest of
the names and values, not the values).

No secret is kept. The options that carry a channel's secrets (`SECRET_OPTIONS`: a password,
a signing key, a URL with its tokens), every key of the `[web]` table (its password, its
signing secret, its API tokens) and the PostgreSQL URL of the archive (it may hold a password)
are replaced by a `Hole`: where their raw value, as written
before ``${NAME}`` expansion, lies in the config file's text (a place that the file's
exact bytes fix). When the kept config is used, the loader reads each hole from the file's
text again, expands it from the environment of that run, and validates it as a fresh load
would (scheduler.config); a hole that no longer reads, expands or validates misses the
cache, and the fresh load reports the problem. The environment variables that only secrets
name are therefore never digested, and a config in which a variable feeds both a secret and
another value is not kept at all. Pure functions and values: the file I/O is the rules
cache's.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from scheduler.config.secrets import SECRET_OPTIONS

__all__ = [
    "SECRET_OPTIONS",
    "Hole",
    "Kept",
    "file_key",
    "find_hole",
    "read_hole",
    "variables_digest",
]


class Hole(NamedTuple):
    """Where a secret's raw value lies in the config file's text: ``text[start:end]`` is a
    TOML string that reads as that value (`read_hole`)."""

    start: int
    end: int


@dataclass(frozen=True)
class Kept:
    """A config as kept: `config` has a `Hole` for each secret option of its channels."""

    key: str  # `file_key` of the file it was loaded from
    names: tuple[str, ...]  # the environment variables its kept values name
    digest: str  # `variables_digest` of those, when it was loaded
    config: Any  # scheduler.config.Config, with holes, without its web view
    rules_key: str  # the rules cache's key of its rules that notify
    # the [web] table's keys as written: a Hole each (a tuple of them for an array); None:
    # no [web] table
    web: dict[str, Hole | tuple[Hole, ...]] | None = None
    # `[archive] url` as written (a PostgreSQL URL may hold a password); None: no url
    archive_url: Hole | None = None

    def fits(self, key: str, environ: Mapping[str, str]) -> bool:
        """True if this was kept from the file `key` names, under the same variables."""
        return self.key == key and variables_digest(self.names, environ) == self.digest


def file_key(path: Path, raw: bytes) -> str:
    """The config file's exact bytes, its absolute path, and what ``~`` means (the archive's
    path may start with it)."""
    where = f"{os.path.abspath(path)}\0{os.path.expanduser('~')}\0".encode()
    return hashlib.sha256(where + raw).hexdigest()


def variables_digest(names: Iterable[str], environ: Mapping[str, str]) -> str:
    """A digest of the environment variables `names` and their values (unset ones too)."""
    values = [(name, environ.get(name)) for name in sorted(names)]
    return hashlib.sha256(json.dumps(values).encode("utf-8")).hexdigest()


def find_hole(text: str, raw: str) -> Hole | None:
    """A place in `text` that reads as the TOML string `raw`; None if it is written in a way
    this does not find (with escapes, or over several lines): then the config is not kept."""
    for written in (f'"{raw}"', f"'{raw}'", json.dumps(raw, ensure_ascii=False)):
        at = text.find(written)
        if at >= 0 and read_hole(text, Hole(at, at + len(written))) == raw:
            return Hole(at, at + len(written))
    return None


def read_hole(text: str, hole: Hole) -> str | None:
    """The string written at `hole`; None if it does not read as one TOML string."""
    try:
        value = tomllib.loads("v = " + text[hole.start : hole.end])["v"]
    except tomllib.TOMLDecodeError:
        return None
    return value if isinstance(value, str) else None
