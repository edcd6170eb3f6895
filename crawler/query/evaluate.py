"""Evaluating a parsed query on an article: `Document` (an article's tokens and, when a phrase,
prefix or NEAR needs them, positions), the query compiled once into closures, the FTS5
prefilter, and `Query`. Pure."""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeAlias

from crawler.query.nodes import (
    MAX_NEAR_DISTANCE,
    And,
    Near,
    Node,
    Not,
    Or,
    Term,
    _fts_safe,
    _leaves,
    tokenize,
)

_FTS_STRING_RE = re.compile(r'"[^"]*"\*?')  # one FTS5 string (our tokens never hold '"')
# Positions skipped between the summary and the text of a Document: a phrase never spans the
# boundary, and no NEAR window (at most MAX_NEAR_DISTANCE) does either.
_SECTION_GAP = MAX_NEAR_DISTANCE + 1


# --------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Document:
    """An article prepared once for matching against many queries.

    title: the title's tokens. body: the tokens of the summary, then of the text (the title is
    not included). summary_length: how many of the body tokens come from the summary; a phrase
    or NEAR never spans the boundary between summary and text (``None``: no boundary).

    What matching looks up is built lazily on first use and cached on the instance: the
    distinct tokens of each field (`words`, `title_words`: whether a word occurs), the position
    index of each field (only once a phrase, prefix or NEAR needs positions) and the positions
    of every term looked up, so matching thousands of rules stays cheap.
    """

    title: tuple[str, ...]
    body: tuple[str, ...]
    summary_length: int | None = None

    @classmethod
    def from_fields(cls, title: str | None, summary: str | None, text: str | None) -> Document:
        summary_tokens = tokenize(summary or "")
        return cls(
            title=tuple(tokenize(title or "")),
            body=(*summary_tokens, *tokenize(text or "")),
            summary_length=len(summary_tokens),
        )

    @cached_property
    def title_words(self) -> frozenset[str]:
        """The distinct tokens of the title."""
        return frozenset(self.title)

    @cached_property
    def body_words(self) -> frozenset[str]:
        """The distinct tokens of the body (summary and text)."""
        return frozenset(self.body)

    @cached_property
    def words(self) -> frozenset[str]:
        """The distinct tokens of the whole article (title and body)."""
        return self.title_words | self.body_words

    @cached_property
    def _title_index(self) -> dict[str, list[int]]:
        return _index(self.title, None)

    @cached_property
    def _body_index(self) -> dict[str, list[int]]:
        return _index(self.body, self.summary_length)

    @cached_property
    def _vocabularies(self) -> dict[str, list[str]]:
        """Per field, the distinct tokens sorted (prefix lookups bisect into them)."""
        return {"title": sorted(self.title_words), "body": sorted(self.body_words)}

    @cached_property
    def _memo(self) -> dict[str, dict[str, list[int]]]:
        """Per field, the positions of each phrase and prefix looked up, by its query form (one
        string per term: its hash is computed once)."""
        return {"title": {}, "body": {}}

    def _positions(self, name: str, term: Term, field: Literal["title", "body"]) -> list[int]:
        """Sorted positions of `term` (named `name`, its ``str``) in one field (of its first
        token for a phrase)."""
        if term.kind == "word":
            index = self._title_index if field == "title" else self._body_index
            return index.get(term.tokens[0], [])
        memo = self._memo[field]
        found = memo.get(name)
        if found is None:
            found = memo[name] = self._find(term, field)
        return found

    def _find(self, term: Term, field: Literal["title", "body"]) -> list[int]:
        tokens = term.tokens
        words = self.title_words if field == "title" else self.body_words
        exact = tokens[:-1] if term.kind == "prefix" else tokens
        if not words.issuperset(exact):  # a token missing: no need for positions
            return []
        index = self._title_index if field == "title" else self._body_index
        if term.kind == "prefix":
            vocabulary = self._vocabularies[field]
            prefix = tokens[-1]
            last: list[int] = []
            for i in range(bisect_left(vocabulary, prefix), len(vocabulary)):
                if not vocabulary[i].startswith(prefix):
                    break
                last.extend(index[vocabulary[i]])
            if len(tokens) == 1:
                return sorted(last)
            last_set: set[int] | None = set(last)
        else:
            last_set = None
        starts = index.get(exact[0], [])
        for offset, token in enumerate(exact[1:], start=1):
            if not starts:
                return []
            following = set(index.get(token, ()))
            starts = [p for p in starts if p + offset in following]
        if last_set is not None:
            starts = [p for p in starts if p + len(exact) in last_set]
        return starts

    def occurs(self, term: Term) -> bool:
        """True if `term` occurs in this document (in the title only for title: terms)."""
        if term.kind == "word":
            return term.tokens[0] in (self.title_words if term.field == "title" else self.words)
        return self._occurs(str(term), term)

    def _occurs(self, name: str, term: Term) -> bool:
        if self._positions(name, term, "title"):
            return True
        return term.field != "title" and bool(self._positions(name, term, "body"))

    def near(self, near: Near) -> bool:
        """True if the NEAR condition holds within one field of this document."""
        return self._near(tuple((str(t), t) for t in near.terms), near.distance)

    def _near(self, terms: tuple[tuple[str, Term], ...], distance: int) -> bool:
        fields: tuple[Literal["title", "body"], ...] = (
            ("title",) if terms[0][1].field == "title" else ("title", "body")
        )
        for field in fields:
            lists = [self._positions(name, term, field) for name, term in terms]
            if all(lists) and _within(lists, distance):
                return True
        return False


def _index(tokens: tuple[str, ...], split: int | None) -> dict[str, list[int]]:
    """Token -> its sorted positions; positions from `split` on are shifted by _SECTION_GAP."""
    index: dict[str, list[int]] = {}
    get = index.get
    split = len(tokens) if split is None else split
    for start, part in ((0, tokens[:split]), (split + _SECTION_GAP, tokens[split:])):
        for position, token in enumerate(part, start):
            found = get(token)
            if found is None:
                index[token] = [position]
            else:
                found.append(position)
    return index


def _within(lists: list[list[int]], distance: int) -> bool:
    """True if one position from each sorted, non-empty list can be chosen with max-min <= distance.

    The classic sweep: keep one pointer per list, always advancing the list with the lowest
    current position; every window the optimum can be in is visited.
    """
    heap = [(positions[0], which, 0) for which, positions in enumerate(lists)]
    heapq.heapify(heap)
    highest = max(positions[0] for positions in lists)
    while highest - heap[0][0] > distance:
        _, which, at = heapq.heappop(heap)
        if at + 1 == len(lists[which]):
            return False
        position = lists[which][at + 1]
        heapq.heappush(heap, (position, which, at + 1))
        highest = max(highest, position)
    return True


# --------------------------------------------------------------------------- queries


# A query is compiled, on its first use, into one closure per node: no walk of the tree and no
# dispatch on node types per article. A plain word is a set lookup.
_Test: TypeAlias = Callable[[Document], bool]


def _compile(node: Node) -> _Test:
    if isinstance(node, Term):
        if node.kind != "word":
            name = str(node)
            return lambda doc: doc._occurs(name, node)
        token = node.tokens[0]
        if node.field == "title":
            return lambda doc: token in doc.title_words
        return lambda doc: token in doc.words
    if isinstance(node, Near):
        terms, distance = tuple((str(t), t) for t in node.terms), node.distance
        return lambda doc: doc._near(terms, distance)
    if isinstance(node, Not):
        child = _compile(node.child)
        return lambda doc: not child(doc)
    tests = tuple(_compile(child) for child in node.children)
    if isinstance(node, And):
        if len(tests) == 2:
            first, second = tests
            return lambda doc: first(doc) and second(doc)

        def every(doc: Document) -> bool:
            for test in tests:  # noqa: SIM110 - a loop: no generator made per article
                if not test(doc):
                    return False
            return True

        return every
    if len(tests) == 2:
        first, second = tests
        return lambda doc: first(doc) or second(doc)

    def some(doc: Document) -> bool:
        for test in tests:  # noqa: SIM110 - a loop: no generator made per article
            if test(doc):
                return True
        return False

    return some


def _fts(node: Node) -> str | None:
    """A superset FTS5 expression for `node`; None means "match everything"."""
    if isinstance(node, Term):
        return node.to_fts() if all(_fts_safe(t) for t in node.tokens) else None
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        return _fts(And(node.terms))
    parts = [_fts(child) for child in node.children]
    if isinstance(node, Or):
        if any(part is None for part in parts):
            return None
        joiner = " OR "
    else:
        joiner = " AND "
    present = [part for part in parts if part is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return joiner.join(p if _FTS_STRING_RE.fullmatch(p) else f"({p})" for p in present)


@dataclass(frozen=True)
class Query:
    """A parsed query. Build it with `parse`; `text` is the source, `root` the tree."""

    text: str
    root: Node

    def matches(self, doc: Document) -> list[str] | None:
        """None if `doc` does not match; else the matched terms.

        The matched terms are the positive terms (not under NOT) that occur in the document,
        in query order, deduplicated, in their query form (see `Term`):
        ``["nato", "air defence"]``. A match can have an empty list (``NOT nato``): test the
        result with ``is not None``.
        """
        test, positive = self._compiled
        if not test(doc):
            return None
        found: list[str] = []
        for name, occurs in positive:
            if name not in found and occurs(doc):
                found.append(name)
        return found

    @cached_property
    def _compiled(self) -> tuple[_Test, tuple[tuple[str, _Test], ...]]:
        """The tree as one closure, and each distinct positive term (not under NOT) in query
        order, with its query form and its own closure."""
        positive = dict.fromkeys(term for term, negated in _leaves(self.root) if not negated)
        return _compile(self.root), tuple((str(term), _compile(term)) for term in positive)

    def __getstate__(self) -> dict[str, object]:
        return {"text": self.text, "root": self.root}  # not the compiled closures

    def terms(self) -> list[Term]:
        """Every term of the query (negated ones too), in query order, deduplicated."""
        return list(dict.fromkeys(term for term, _ in _leaves(self.root)))

    def to_fts(self) -> str | None:
        """An SQLite FTS5 MATCH expression selecting a superset of the matching documents.

        For a table ``fts5(title, summary, text, tokenize="unicode61 remove_diacritics 2")``;
        the caller checks every candidate with `matches`. None when there is no useful
        prefilter (``NOT nato``, ``a OR NOT b``). NOT parts, fields and NEAR distances are
        dropped; terms outside the Latin script are dropped too, because FTS5 does not fold
        their accents as `tokenize` does (so ``москва`` alone gives None).
        """
        return _fts(self.root)
