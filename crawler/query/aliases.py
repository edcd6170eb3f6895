"""Alias sets for ``@name`` in queries (docs/query-language.md): the built-in sets of the
package file `aliases.toml`, the sets of a config's ``[aliases]`` (which replace the built-in
set of the same name), and each set's terms as query terms. Pure, but for reading the package
file once."""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crawler.query.nodes import Term, TermKind, tokenize

__all__ = [
    "BUILTIN_FILE",
    "NAME_RULE",
    "AliasSet",
    "alias_sets",
    "alias_term",
    "builtin_expansions",
    "builtin_sets",
    "check_name",
    "expansions",
]

BUILTIN_FILE = Path(__file__).with_name("aliases.toml")
NAME_RE = re.compile(r"[a-z][a-z0-9_-]*\Z")
NAME_RULE = "lower-case letters a-z, digits, '_' and '-', starting with a letter"
CONFIG_SOURCE = "config"  # the source of a set from the config's [aliases]


@dataclass(frozen=True)
class AliasSet:
    """One set: its name (``@name``), where its spellings come from (``config`` for a set of
    the config file), its terms as written, and the built-in file's note (or None)."""

    name: str
    source: str
    terms: tuple[str, ...]
    note: str | None = None

    @property
    def builtin(self) -> bool:
        return self.source != CONFIG_SOURCE


def check_name(name: str) -> str:
    """`name` if it is a valid set name; else ValueError saying what to write."""
    if not NAME_RE.match(name):
        raise ValueError(f"invalid alias set name {name!r}: use only {NAME_RULE}")
    return name


def alias_term(text: str) -> Term:
    """One term of a set as a query term; ValueError saying what is wrong.

    A term is a word or a phrase written plainly (``NATO``, ``North Atlantic Alliance``,
    ``IRIS-T SLM``): several words are a phrase. A leading ``=`` asks for that form only
    (``=Patriot``). Quotes, ``*`` and ``@`` are not allowed.
    """
    body = text.strip()
    exact = body.startswith("=")
    if exact:
        body = body[1:].strip()
    for char, hint in (
        ('"', "write a phrase without quotes: its words match in sequence"),
        ("*", "a set holds whole words and phrases, not prefixes"),
        ("@", "a set cannot name another set; list its terms"),
    ):
        if char in body:
            raise ValueError(f"alias term {text!r} contains '{char}': {hint}")
    tokens = tuple(tokenize(body))
    if not tokens:
        raise ValueError(f"alias term {text!r} has no letters or digits; write a word or a phrase")
    kind: TermKind = "word" if len(tokens) == 1 else "phrase"
    return Term(kind, tokens, exact=exact)


def _load_builtin(text: str) -> dict[str, AliasSet]:
    """The sets of a built-in alias file's text; ValueError naming the first bad set."""
    sets: dict[str, AliasSet] = {}
    for name, table in tomllib.loads(text).items():
        check_name(name)
        terms = table.get("terms") if isinstance(table, dict) else None
        source = table.get("source") if isinstance(table, dict) else None
        if not isinstance(source, str) or not isinstance(terms, list) or not terms:
            raise ValueError(f"built-in alias set {name!r} needs a source and a list of terms")
        for term in terms:
            alias_term(str(term))
        note = table.get("note")
        sets[name] = AliasSet(name, source, tuple(terms), note if isinstance(note, str) else None)
    return sets


@functools.cache
def builtin_sets() -> dict[str, AliasSet]:
    """The built-in sets of `aliases.toml`, read once."""
    return _load_builtin(BUILTIN_FILE.read_text(encoding="utf-8"))


def alias_sets(config: Mapping[str, Sequence[str]] | None = None) -> dict[str, AliasSet]:
    """Every set usable as ``@name``: the built-in ones, each replaced by the config's set of
    that name, and the config's other sets; sorted by name."""
    sets = dict(builtin_sets())
    for name, terms in (config or {}).items():
        sets[name] = AliasSet(name, CONFIG_SOURCE, tuple(terms))
    return dict(sorted(sets.items()))


def expansions(sets: Mapping[str, AliasSet]) -> dict[str, tuple[Term, ...]]:
    """Each set's terms as query terms, duplicates (same query form) dropped, in set order."""
    return {
        name: tuple(dict.fromkeys(alias_term(t) for t in alias.terms))
        for name, alias in sets.items()
    }


@functools.cache
def builtin_expansions() -> dict[str, tuple[Term, ...]]:
    """`expansions` of the built-in sets, made once: what ``@name`` means without a config."""
    return expansions(builtin_sets())
