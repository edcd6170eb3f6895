"""Evaluating a parsed query on an article: `Document` (an article's tokens, its fields as
strings that a phrase or prefix is searched in, and, when a NEAR needs them, positions), the
query compiled once into closures, the FTS5 prefilter, and `Query`. Pure."""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple, TypeAlias

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
    distinct tokens of each field (`words`, `title_words`: whether a word occurs), sorted
    (`_sorted`: whether a word begins with a prefix), each field as one string of its tokens
    between spaces (whether a phrase occurs is a substring search in it, `_texts`), whether
    each prefix and phrase looked up occurs (`_hits`), and the positions of each term a NEAR
    looks up in a field that holds all its terms (`_places`, found in that string). No
    per-token position index is built. So matching thousands of rules stays cheap.
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
    def _texts(self) -> tuple[str, str, int]:
        """The title and the body, each as its tokens between single spaces with a space at
        each end, and where the text begins in the body's string.

        A phrase or prefix occurs exactly where its `_pattern` is a substring (tokens hold
        neither spaces nor newlines); the summary and the text are joined by a newline, so that
        no phrase spans them. Without a boundary, the text "begins" at the string's end.
        """
        body, split = self.body, self.summary_length
        if split is None:
            body_text = " " + " ".join(body) + " "
            text_start = len(body_text)
        else:
            summary = " " + " ".join(body[:split]) + " \n "
            body_text = summary + " ".join(body[split:]) + " "
            text_start = len(summary)
        return " " + " ".join(self.title) + " ", body_text, text_start

    @cached_property
    def _sorted(self) -> tuple[list[str], list[str]]:
        """The distinct tokens of the title, and of the whole article, sorted: the words that
        begin with a prefix are together, where it would be inserted."""
        return sorted(self.title_words), sorted(self.words)

    @cached_property
    def _hits(self) -> dict[str, bool]:
        """Whether each prefix and longer phrase looked up occurs, by its query form."""
        return {}

    @cached_property
    def _places(self) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        """Per field (title, body), the positions of each pattern looked up for a NEAR."""
        return {}, {}

    def occurs(self, term: Term) -> bool:
        """True if `term` occurs in this document (in the title only for title: terms)."""
        return _term_test(term)(self)

    def _has_prefix(self, name: str, prefix: str, title_only: bool) -> bool:
        """Whether a word of the title (or, unless `title_only`, of the article) begins with
        `prefix`; remembered by `name`, the term's query form."""
        hits = self._hits
        found = hits.get(name)
        if found is None:
            vocabulary = self._sorted[0 if title_only else 1]
            at = bisect_left(vocabulary, prefix)
            found = hits[name] = at < len(vocabulary) and vocabulary[at].startswith(prefix)
        return found

    def _holds(self, term: _Lookup, field: int) -> bool:
        """Whether the title (`field` 0) or the body (1) holds every exact token of `term`:
        needed for it to occur there."""
        return (self.title_words if field == 0 else self.body_words).issuperset(term.exact)

    def _occurs(self, term: _Lookup, title_only: bool) -> bool:
        """Whether a phrase or a prefix after words (`term`) occurs in the title or, unless
        `title_only`, in the body. A field's text is searched only if it holds the term's exact
        tokens; remembered by the term's query form."""
        hits = self._hits
        found = hits.get(term.name)
        if found is None:
            title, body, _ = self._texts
            found = self._holds(term, 0) and term.pattern in title
            if not found and not title_only:
                found = self._holds(term, 1) and term.pattern in body
            hits[term.name] = found
        return found

    def near(self, near: Near) -> bool:
        """True if the NEAR condition holds within one field of this document."""
        terms = tuple(_lookup(t) for t in near.terms)
        return self._near(terms, near.distance, near.terms[0].field == "title")

    def _near(self, terms: tuple[_Lookup, ...], distance: int, title_only: bool) -> bool:
        """NEAR over `terms` in the title or, unless `title_only`, in the body: positions are
        looked up only while the field holds every term's exact tokens."""
        for field in (0,) if title_only else (0, 1):
            lists = []
            for term in terms:
                if not self._holds(term, field):
                    break
                found = self._positions(term.pattern, field)
                if not found:
                    break
                lists.append(found)
            else:
                if _within(lists, distance):
                    return True
        return False

    def _positions(self, pattern: str, field: int) -> list[int]:
        """The sorted positions in the title (`field` 0) or the body (1) where `pattern`
        begins (its first token's). Body positions from the text on are shifted by
        _SECTION_GAP past the summary's end, as if a gap of tokens lay between them."""
        places = self._places[field]
        found = places.get(pattern)
        if found is not None:
            return found
        title, body, text_start = self._texts
        text = title if field == 0 else body
        if field == 0:
            text_start = len(title)  # the title has no second part
        found = places[pattern] = []
        # a token's position is the number of spaces before it in its part: counted on from
        # the previous occurrence, so the whole search reads the text once
        position, counted, in_text = 0, 1, False
        at = text.find(pattern)
        while at >= 0:
            start = at + 1  # where the pattern's first token begins
            if not in_text and start >= text_start:
                position = (self.summary_length or 0) + _SECTION_GAP
                counted, in_text = text_start, True
            position += text.count(" ", counted, start)
            counted = start
            found.append(position)
            at = text.find(pattern, start)
        return found


class _Lookup(NamedTuple):
    """What finding a term in a field needs: its query form, its `pattern` in a field's string
    (`Document._texts`: its tokens between spaces, a prefix open at its end: ``" air def"``
    for ``"air def*"``, ``" nato "`` for nato), and the `exact` tokens a field must hold for it
    to occur there (all but a prefix's last)."""

    name: str
    pattern: str
    exact: tuple[str, ...]


def _lookup(term: Term) -> _Lookup:
    exact = term.tokens[:-1] if term.kind == "prefix" else term.tokens
    core = " " + " ".join(term.tokens)
    pattern = core if term.kind == "prefix" else core + " "
    return _Lookup(str(term), pattern, exact)


def _term_test(term: Term) -> _Test:
    """The closure telling whether `term` occurs: a word is a set lookup, a one-word prefix a
    search in the sorted words, a phrase (or a prefix after words) a search in the field's
    string once the field holds its words."""
    token, title_only = term.tokens[0], term.field == "title"
    if term.kind == "word":
        if title_only:
            return lambda doc: token in doc.title_words
        return lambda doc: token in doc.words
    if term.kind == "prefix" and len(term.tokens) == 1:
        name = str(term)
        return lambda doc: doc._has_prefix(name, token, title_only)
    lookup = _lookup(term)
    return lambda doc: doc._occurs(lookup, title_only)


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
        return _term_test(node)
    if isinstance(node, Near):
        terms = tuple(_lookup(t) for t in node.terms)
        distance, title_only = node.distance, node.terms[0].field == "title"
        return lambda doc: doc._near(terms, distance, title_only)
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
        return [name for name, occurs in positive if occurs(doc)]

    @cached_property
    def _compiled(self) -> tuple[_Test, tuple[tuple[str, _Test], ...]]:
        """The tree as one closure, and each distinct positive term (not under NOT) in query
        order, with its query form (one per form) and its own closure."""
        positive: dict[str, Term] = {}  # distinct terms have distinct query forms
        for term, negated in _leaves(self.root):
            if not negated:
                positive.setdefault(str(term), term)
        compiled = tuple((name, _compile(term)) for name, term in positive.items())
        return _compile(self.root), compiled

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
