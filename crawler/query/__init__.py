"""The one query language of newswatch (docs/query-language.md).

`search`, `rules test` and the live matcher all go through this module, so they give the
same answer for the same article. The module is pure: no I/O, no database, no clock.

Syntax::

    nato                 the whole word, ignoring case and accents ("NATO", "NATO's", not "natoo")
    "air defence"        the words in sequence ("Air-Defence", "air defence")
    defen*               any word beginning with "defen"
    a b                  a AND b
    a OR b, NOT a, ( )   precedence: NOT, then AND, then OR
    NEAR(a b, 10)        the terms within 10 words of each other (default 10)
    title:nato           only in the title; also title:"air defence", title:defen*,
                         title:(a OR b) and title:NEAR(a b)

Operators are recognised only in upper case: `and` is a plain word.

Text is split into tokens by `tokenize`, the same function for queries and articles:
Unicode NFKD, combining marks dropped, lower-cased, then maximal runs of letters and digits.
A bare query word that splits into several tokens (`IRIS-T`, `F-35`) is a phrase.

Use::

    query = parse('NATO AND ("air defence" OR "air defense")')   # raises QueryError
    doc = Document.from_fields(title, summary, text)              # once per article
    query.matches(doc)   # None, or the matched terms, e.g. ["nato", "air defence"]
    query.to_fts()       # an SQLite FTS5 MATCH prefilter (a superset), or None
"""

from __future__ import annotations

import functools
import heapq
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Literal, NamedTuple, TypeAlias

from crawler import CrawlerError

__all__ = [
    "DEFAULT_NEAR_DISTANCE",
    "FIELDS",
    "MAX_NEAR_DISTANCE",
    "And",
    "Document",
    "Near",
    "Node",
    "Not",
    "Or",
    "Query",
    "QueryError",
    "Term",
    "parse",
    "tokenize",
]

DEFAULT_NEAR_DISTANCE = 10
MAX_NEAR_DISTANCE = 1000
FIELDS = ("title",)
MAX_NESTING = 100  # parentheses / NOT nesting; deeper is an error, not a RecursionError

# Positions skipped between the summary and the text of a Document: a phrase never spans the
# boundary, and no NEAR window (at most MAX_NEAR_DISTANCE) does either.
_SECTION_GAP = MAX_NEAR_DISTANCE + 1

_TOKEN_RE = re.compile(r"[^\W_]+")
_FIELD_RE = re.compile(r"([A-Za-z][A-Za-z0-9_]*):")
_OPERATORS = frozenset({"AND", "OR", "NOT", "NEAR"})
_WORD_STOP = frozenset('()",')
_TERM_START = frozenset({"WORD", "PHRASE", "LPAREN", "NOT", "NEAR", "FIELD"})
_FTS_STRING_RE = re.compile(r'"[^"]*"\*?')  # one FTS5 string (our tokens never hold '"')


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
    return tuple(_TOKEN_RE.findall(text.lower()))


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

    ``str(term)`` is its lower-case query form: ``nato``, ``air defence``, ``defen*``,
    ``title:nato``, ``title:"air defence"``.
    """

    kind: TermKind
    tokens: tuple[str, ...]
    field: Field | None = None

    def __str__(self) -> str:
        core = " ".join(self.tokens) + ("*" if self.kind == "prefix" else "")
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


# --------------------------------------------------------------------------- lexer


class _Token(NamedTuple):
    kind: str  # WORD PHRASE FIELD LPAREN RPAREN COMMA AND OR NOT NEAR END
    value: str
    position: int


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "(),":
            kind = {"(": "LPAREN", ")": "RPAREN", ",": "COMMA"}[char]
            tokens.append(_Token(kind, char, i))
            i += 1
        elif char == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(
                    "unterminated quote", text, i, "add a closing '\"' at the end of the phrase"
                )
            tokens.append(_Token("PHRASE", text[i + 1 : end], i))
            i = end + 1
        else:
            field = _FIELD_RE.match(text, i)
            if field:
                name = field.group(1)
                if name.lower() not in FIELDS:
                    raise QueryError(
                        f"unknown field '{name}'",
                        text,
                        i,
                        "the only field is title: (to search for the text itself, "
                        f'put it in quotes: "{name}:...")',
                    )
                tokens.append(_Token("FIELD", name.lower(), i))
                i = field.end()
                continue
            end = i
            while end < n and not text[end].isspace() and text[end] not in _WORD_STOP:
                end += 1
            word = text[i:end]
            tokens.append(_Token(word if word in _OPERATORS else "WORD", word, i))
            i = end
    tokens.append(_Token("END", "", n))
    return tokens


# --------------------------------------------------------------------------- parser


class _Parser:
    """Recursive descent over the lexer's tokens.

    query   := or END
    or      := and (OR and)*
    and     := unary ([AND] unary)*
    unary   := NOT unary | primary
    primary := WORD | PHRASE | '(' or ')' | near | FIELD (WORD | PHRASE | '(' or ')' | near)
    near    := NEAR '(' (WORD | PHRASE) (WORD | PHRASE)+ [',' WORD] ')'
    """

    def __init__(self, text: str):
        self.text = text
        self.tokens = _lex(text)
        self.at = 0
        self.depth = 0

    def error(self, message: str, position: int, hint: str | None = None) -> QueryError:
        return QueryError(message, self.text, position, hint)

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        if not self.text.strip():
            raise self.error("empty query", 0, "write at least one term, e.g. nato")
        node = self.parse_or()
        token = self.peek()
        if token.kind == "RPAREN":
            raise self.error(
                "unbalanced parenthesis",
                token.position,
                "this ')' has no matching '('; remove it or add a '(' before it",
            )
        if token.kind != "END":
            raise self.unexpected(token)
        return node

    def unexpected(self, token: _Token) -> QueryError:
        if token.kind == "COMMA":
            return self.error(
                "unexpected ','",
                token.position,
                "a comma only separates the distance in NEAR(a b, 10); "
                "to match either of two terms write a OR b",
            )
        if token.kind in ("AND", "OR"):
            return self.error(
                f"dangling operator '{token.value}'",
                token.position,
                f"put a term before it (to search for the word, write it in lower case: "
                f"{token.value.lower()})",
            )
        if token.kind == "RPAREN":
            return self.error(
                "unbalanced parenthesis",
                token.position,
                "this ')' has no matching '('; remove it or add a '(' before it",
            )
        return self.error("expected a term", token.position)  # pragma: no cover - defensive

    def expect_operand(self, operator: _Token) -> None:
        """Raise if the token after `operator` cannot start a term."""
        if self.peek().kind not in _TERM_START:
            after = self.peek()
            what = "nothing" if after.kind in ("END", "RPAREN") else f"'{after.value}'"
            if operator.kind == "FIELD":
                raise self.error(
                    f"field '{operator.value}:' is followed by {what}",
                    operator.position,
                    "put a word, a phrase, NEAR(...) or a group in parentheses right after it, "
                    'e.g. title:nato or title:"air defence"',
                )
            raise self.error(
                f"dangling operator '{operator.value}'",
                operator.position,
                f"it is followed by {what}; put a term after it (to search for the word, "
                f"write it in lower case: {operator.value.lower()})",
            )

    def parse_or(self) -> Node:
        children = [self.parse_and()]
        while self.peek().kind == "OR":
            self.expect_operand(self.take())
            children.append(self.parse_and())
        return children[0] if len(children) == 1 else Or(tuple(children))

    def parse_and(self) -> Node:
        children = [self.parse_unary()]
        while True:
            kind = self.peek().kind
            if kind == "AND":
                self.expect_operand(self.take())
            elif kind not in _TERM_START:
                break
            children.append(self.parse_unary())
        return children[0] if len(children) == 1 else And(tuple(children))

    def parse_unary(self) -> Node:
        token = self.peek()
        if token.kind != "NOT":
            return self.parse_primary()
        self.take()
        self.expect_operand(token)
        self.enter(token)
        node = Not(self.parse_unary())
        self.depth -= 1
        return node

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(
                "query nested too deeply",
                token.position,
                f"use at most {MAX_NESTING} levels of parentheses and NOT",
            )

    def parse_primary(self) -> Node:
        token = self.peek()
        if token.kind == "WORD":
            return self.word(self.take())
        if token.kind == "PHRASE":
            return self.phrase(self.take())
        if token.kind == "LPAREN":
            return self.group()
        if token.kind == "NEAR":
            return self.near()
        if token.kind == "FIELD":
            self.take()
            self.expect_operand(token)
            if self.peek().kind in ("NOT", "FIELD"):
                after = self.peek()
                raise self.error(
                    f"field '{token.value}:' is followed by '{after.value}'",
                    token.position,
                    "put a word, a phrase, NEAR(...) or a group in parentheses right after it, "
                    f"e.g. {token.value}:(NOT nato)",
                )
            return _with_field(self.parse_primary(), "title")
        raise self.unexpected(token)

    def group(self) -> Node:
        opening = self.take()
        if self.peek().kind == "RPAREN":
            raise self.error(
                "empty parentheses", opening.position, "put a term inside them or remove them"
            )
        self.enter(opening)
        node = self.parse_or()
        self.depth -= 1
        closing = self.peek()
        if closing.kind == "END":
            raise self.error(
                "unbalanced parenthesis",
                opening.position,
                "this '(' is never closed; add a ')' after the group",
            )
        if closing.kind != "RPAREN":
            raise self.unexpected(closing)
        self.take()
        return node

    def near(self) -> Node:
        keyword = self.take()
        if self.peek().kind != "LPAREN":
            raise self.error(
                "NEAR without parentheses",
                keyword.position,
                "write NEAR(a b, 10), or 'near' in lower case to search for the word",
            )
        opening = self.take()
        terms: list[Term] = []
        while True:
            token = self.peek()
            if token.kind == "WORD":
                terms.append(self.word(self.take()))
            elif token.kind == "PHRASE":
                terms.append(self.phrase(self.take()))
            elif token.kind in ("COMMA", "RPAREN"):
                break
            elif token.kind == "END":
                raise self.error(
                    "unbalanced parenthesis",
                    opening.position,
                    "this '(' of NEAR is never closed; add a ')', e.g. NEAR(a b, 10)",
                )
            elif token.kind == "FIELD":
                raise self.error(
                    "field inside NEAR",
                    token.position,
                    f"put the field before NEAR: {token.value}:NEAR(a b)",
                )
            else:
                raise self.error(
                    f"'{token.value}' inside NEAR",
                    token.position,
                    "NEAR(...) takes only words, prefixes and phrases, e.g. NEAR(nato summit, 10)",
                )
        if len(terms) < 2:
            raise self.error(
                "NEAR needs at least two terms",
                keyword.position,
                "list two or more words, prefixes or phrases, e.g. NEAR(nato summit, 10)",
            )
        distance = DEFAULT_NEAR_DISTANCE
        if self.peek().kind == "COMMA":
            comma = self.take()
            value = self.peek()
            if value.kind != "WORD":
                raise self.error(
                    "missing NEAR distance",
                    comma.position,
                    f"put a whole number from 1 to {MAX_NEAR_DISTANCE} after the comma, "
                    "e.g. NEAR(a b, 10), or drop the comma for the default 10",
                )
            self.take()
            if not (value.value.isascii() and value.value.isdigit()) or not (
                1 <= int(value.value) <= MAX_NEAR_DISTANCE
            ):
                raise self.error(
                    f"bad NEAR distance '{value.value}'",
                    value.position,
                    f"use a whole number from 1 to {MAX_NEAR_DISTANCE}, e.g. NEAR(a b, 10)",
                )
            distance = int(value.value)
        closing = self.peek()
        if closing.kind != "RPAREN":
            if closing.kind == "END":
                raise self.error(
                    "unbalanced parenthesis",
                    opening.position,
                    "this '(' of NEAR is never closed; add a ')', e.g. NEAR(a b, 10)",
                )
            raise self.error(
                f"unexpected '{closing.value}' in NEAR",
                closing.position,
                "NEAR ends with the distance: NEAR(a b, 10)",
            )
        self.take()
        return Near(tuple(terms), distance)

    def word(self, token: _Token) -> Term:
        raw, position = token.value, token.position
        prefix = raw.endswith("*")
        core = raw[:-1] if prefix else raw
        if prefix and not core:
            raise self.error(
                "lone '*'", position, "put '*' right after a word, e.g. defen* or \"air def*\""
            )
        star = core.find("*")
        if star >= 0:
            raise self.error(
                "'*' inside a word",
                position + star,
                "'*' is only allowed at the end of a word, e.g. defen*",
            )
        if raw.startswith("-") and len(raw) > 1:
            raise self.error(
                f"'{raw}' starts with '-'",
                position,
                f"a leading '-' does not exclude anything; to exclude, write NOT {raw[1:]}",
            )
        tokens = tuple(tokenize(core))
        if not tokens:
            raise self.error(
                f"'{raw}' has no letters or digits",
                position,
                "remove it; punctuation is ignored when matching",
            )
        kind: TermKind = "prefix" if prefix else ("word" if len(tokens) == 1 else "phrase")
        return Term(kind, tokens)

    def phrase(self, token: _Token) -> Term:
        inner, position = token.value, token.position
        if not inner.strip():
            raise self.error(
                "empty phrase", position, 'put words between the quotes, e.g. "air defence"'
            )
        body = inner.rstrip()
        prefix = body.endswith("*")
        core = body[:-1] if prefix else body
        star = core.find("*")
        if star >= 0 or (prefix and not _TOKEN_RE.match(core[-1:])):
            raise self.error(
                "misplaced '*' in a phrase",
                position + 1 + (star if star >= 0 else len(core)),
                "a phrase may only end with '*' right after a word, e.g. \"air def*\"",
            )
        tokens = tuple(tokenize(core))
        if not tokens:
            raise self.error(
                "phrase has no letters or digits",
                position,
                'put words between the quotes, e.g. "air defence"',
            )
        kind: TermKind = "prefix" if prefix else ("word" if len(tokens) == 1 else "phrase")
        return Term(kind, tokens)


def parse(text: str) -> Query:
    """Parse a query; raise QueryError saying where a malformed query is wrong."""
    return Query(text, _Parser(text).parse())
