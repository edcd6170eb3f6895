"""The query language's words and tree: tokens (`tokenize`, the same for queries and articles),
the nodes a query parses into (`Term`, `And`, `Or`, `Not`, `Near`) and `QueryError`. Pure."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal, TypeAlias

from crawler import CrawlerError

DEFAULT_NEAR_DISTANCE = 10
MAX_NEAR_DISTANCE = 1000
FIELDS = ("title",)


_TOKEN_RE = re.compile(r"[^\W_]+")


# --------------------------------------------------------------------------- errors


class QueryError(CrawlerError):
    """A malformed query.

    `message` says what is wrong, `position` is the 0-based character offset in `query` where it
    is wrong, and `hint` (optional) says what to do about it. ``str(err)`` is one sentence::

        unbalanced parenthesis at column 6: this '(' is never closed; add a ')' after the group
    """

    def __init__(self, message: str, query: str, position: int, hint: str | None = None):
        self.message = message
        self.query = query
        self.position = position
        self.hint = hint
        super().__init__(str(self))

    def __reduce__(self) -> tuple[type[QueryError], tuple[str, str, int, str | None]]:
        return (QueryError, (self.message, self.query, self.position, self.hint))

    @property
    def column(self) -> int:
        """The 1-based column of `position`."""
        return self.position + 1

    def __str__(self) -> str:
        text = f"{self.message} at column {self.column}"
        return f"{text}: {self.hint}" if self.hint else text

    def pointer(self) -> str:
        """The query and, under it, a caret at the position (for terminal output)."""
        return f"{self.query}\n{' ' * self.position}^"


# --------------------------------------------------------------------------- tokens


def tokenize(text: str) -> list[str]:
    """Split text into match tokens; used for both queries and articles.

    Unicode NFKD, combining marks dropped, lower-cased, then the maximal runs of letters and
    digits: "NATO's" -> ["nato", "s"], "Air-Defence" -> ["air", "defence"],
    "Türkiye" -> ["turkiye"]. For Latin-script text this agrees with SQLite FTS5's
    ``unicode61 remove_diacritics 2`` tokenizer; it folds more than FTS5 in other scripts
    (see `Query.to_fts`).
    """
    return list(_tokens(text))


@functools.lru_cache(maxsize=256)
def _tokens(text: str) -> tuple[str, ...]:
    # Cached: one article's title, summary and text are tokenised by several decisions in a
    # row (matching, fingerprint, stories, the search index).
    if not text.isascii():
        text = _strip_marks(unicodedata.normalize("NFKD", text))
        if not text.isascii():
            return tuple(_TOKEN_RE.findall(text.lower()))
    # ASCII: [^\W_] is [A-Za-z0-9] there, so one C pass of bytes.translate (letters lowered,
    # anything else a space) and a split give what the regex gives, ~3x faster.
    return tuple(text.encode("ascii").translate(_ASCII_TOKENS).decode("ascii").split())


_ASCII_TOKENS = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256)
)


_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")


def _strip_marks(text: str) -> str:
    """`text` without combining marks. Mostly-ASCII text (Latin script with some accents):
    only its non-ASCII runs are translated, 3x faster; other scripts in one pass."""
    table = _combining_marks()
    if len(text.encode("utf-8")) - len(text) < len(text) // 8:
        return _NON_ASCII_RE.sub(lambda m: m.group().translate(table), text)
    return text.translate(table)


_COMBINING_LIMIT = 0x20000


@functools.cache
def _combining_marks() -> dict[int, None]:
    """A str.translate table deleting every combining mark, built once (a Python-level loop
    over each character of an article cost ~10 ms per article). Planes 0 and 1 hold every
    combining mark of the Unicode versions Python ships (none above U+1FFFF, checked by a test).
    """
    return {c: None for c in range(_COMBINING_LIMIT) if unicodedata.combining(chr(c))}


def _fts_safe(token: str) -> bool:
    """True if FTS5 (unicode61 remove_diacritics 2) folds every source of `token` like we do.

    That holds for Latin script. Elsewhere it does not: FTS5 keeps Greek and Cyrillic accents
    (й, ё, ї, ά), splits words at Arabic, Hebrew and Indic marks, and keeps Hangul syllables that
    NFKD decomposes; an FTS phrase built from our tokens would miss such documents.
    """
    return all(c.isascii() or "\u00c0" <= c <= "\u024f" or "\u1e00" <= c <= "\u1eff" for c in token)


# --------------------------------------------------------------------------- the tree

TermKind: TypeAlias = Literal["word", "prefix", "phrase"]
Field: TypeAlias = Literal["title"]


@dataclass(frozen=True)
class Term:
    """One leaf of a query: what to look for and where.

    kind:
        ``"word"``: the single token ``tokens[0]``, a whole word;
        ``"phrase"``: the tokens consecutively (a quoted phrase, or a bare word such as
        ``IRIS-T`` that tokenises into several tokens);
        ``"prefix"``: like a phrase whose last token only has to begin a word
        (``defen*`` -> ``("defen",)``; ``air-def*`` -> ``("air", "def")``).
    tokens: normalised as by `tokenize`, never empty.
    field: ``None`` (title, summary or text) or ``"title"`` (title only).
    exact: written ``=term`` or ``="a phrase"``: that form only. Today every word matches only
        its own form (case and accents folded), so an exact term matches like a plain one; a
        normaliser that matches inflected forms must leave exact terms as they are.

    ``str(term)`` is its lower-case query form: ``nato``, ``air defence``, ``defen*``,
    ``title:nato``, ``title:"air defence"``, ``=nato``, ``="air defence"``.
    """

    kind: TermKind
    tokens: tuple[str, ...]
    field: Field | None = None
    exact: bool = False

    def __str__(self) -> str:
        core = " ".join(self.tokens) + ("*" if self.kind == "prefix" else "")
        if self.exact:
            core = f'="{core}"' if len(self.tokens) > 1 else f"={core}"
            return core if self.field is None else f"{self.field}:{core}"
        if self.field is None:
            return core
        return f'{self.field}:"{core}"' if len(self.tokens) > 1 else f"{self.field}:{core}"

    def to_fts(self) -> str:
        """This term as an FTS5 string (the field dropped): "nato", "air defence", "defen"*."""
        quoted = '"' + " ".join(t.replace('"', '""') for t in self.tokens) + '"'
        return quoted + "*" if self.kind == "prefix" else quoted


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Near:
    """All `terms` occur in one field, one occurrence each, with positions max-min <= distance.

    A phrase or multi-token prefix counts at the position of its first token.
    """

    terms: tuple[Term, ...]
    distance: int = DEFAULT_NEAR_DISTANCE


Node: TypeAlias = Term | And | Or | Not | Near


def _with_field(node: Node, field: Field) -> Node:
    if isinstance(node, Term):
        return replace(node, field=field)
    if isinstance(node, Near):
        return Near(tuple(replace(t, field=field) for t in node.terms), node.distance)
    if isinstance(node, Not):
        return Not(_with_field(node.child, field))
    if isinstance(node, And):
        return And(tuple(_with_field(c, field) for c in node.children))
    return Or(tuple(_with_field(c, field) for c in node.children))


def _leaves(node: Node, negated: bool = False) -> Iterator[tuple[Term, bool]]:
    """Every term in query order, with whether it is negated (under an odd number of NOTs)."""
    if isinstance(node, Term):
        yield node, negated
    elif isinstance(node, Near):
        for term in node.terms:
            yield term, negated
    elif isinstance(node, Not):
        yield from _leaves(node.child, not negated)
    else:
        for child in node.children:
            yield from _leaves(child, negated)
