"""Testing a query on one article's fields as folded strings, without building a `Document`:
what `search` does with each candidate, for every query without NEAR. Pure.

Each field (title, summary, text) becomes its tokens (`tokenize`) between single spaces, with a
space at each end: a word occurs where `` word `` does, a phrase where its tokens follow one
another, a prefix where a token begins with it. That is what `Document` looks up, field by field
(a phrase never spans the summary and the text there either), so the answers are the same
(tests/test_crawler_query.py compares both on random queries and articles). For ASCII text (most
articles) the folding is one `bytes.translate`, letters lowered and everything else a space:
no token list, no sets, ~10x cheaper than a `Document`; a run of spaces stays, so a phrase is a
regular expression allowing several. NEAR needs positions: such a query returns None from
`scanner` and is matched on a `Document`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeAlias

from crawler.query.evaluate import Query
from crawler.query.nodes import And, Near, Node, Not, Or, Term, _leaves, tokenize

# The folded title, and the folded title, summary and text joined by "|" (no needle holds a
# "|", so none spans two fields): " nato s air defence | ... | ... ".
Fields: TypeAlias = tuple[str, str]
_Test: TypeAlias = Callable[[Fields], bool]

_ASCII_FOLD = bytes(
    c + 32 if 65 <= c <= 90 else c if 48 <= c <= 57 or 97 <= c <= 122 else 32 for c in range(256)
)


def fold(text: str | None) -> str:
    """`text`'s tokens between spaces (runs of spaces where the text is ASCII), padded."""
    if not text:
        return " "
    if text.isascii():
        return " " + text.encode("ascii").translate(_ASCII_FOLD).decode("ascii") + " "
    return " " + " ".join(tokenize(text)) + " "


def _in_field(term: Term) -> Callable[[str], bool]:
    """A test of one folded field for `term`."""
    tokens = term.tokens
    if term.kind == "word" or (term.kind == "phrase" and len(tokens) == 1):
        needle = f" {tokens[0]} "
        return lambda field: needle in field
    if term.kind == "prefix" and len(tokens) == 1:
        start = f" {tokens[0]}"
        return lambda field: start in field
    pattern = " " + " +".join(re.escape(t) for t in tokens) + ("" if term.kind == "prefix" else " ")
    search = re.compile(pattern).search
    return lambda field: search(field) is not None


def _compile(node: Node) -> _Test:
    if isinstance(node, Term):
        test = _in_field(node)
        if node.field == "title":
            return lambda fields: test(fields[0])
        return lambda fields: test(fields[1])
    if isinstance(node, Not):
        child = _compile(node.child)
        return lambda fields: not child(fields)
    assert not isinstance(node, Near)
    tests = tuple(_compile(child) for child in node.children)
    if isinstance(node, And):
        return lambda fields: all(test(fields) for test in tests)
    assert isinstance(node, Or)
    return lambda fields: any(test(fields) for test in tests)


def _has_near(node: Node) -> bool:
    if isinstance(node, Near):
        return True
    if isinstance(node, Term):
        return False
    if isinstance(node, Not):
        return _has_near(node.child)
    return any(_has_near(child) for child in node.children)


Scanner: TypeAlias = Callable[[str | None, str | None, str | None], list[str] | None]


def scanner(query: Query) -> Scanner | None:
    """A function of an article's title, summary and text answering as
    ``query.matches(Document.from_fields(title, summary, text))`` does (None: no match; else the
    matched terms); None for a query with NEAR."""
    if _has_near(query.root):
        return None
    test = _compile(query.root)
    positive = dict.fromkeys(term for term, negated in _leaves(query.root) if not negated)
    terms = tuple((str(term), _compile(term)) for term in positive)

    def scan(title: str | None, summary: str | None, text: str | None) -> list[str] | None:
        folded = fold(title)
        fields = (folded, f"{folded}|{fold(summary)}|{fold(text)}")
        if not test(fields):
            return None
        found: list[str] = []
        for name, occurs in terms:
            if name not in found and occurs(fields):
                found.append(name)
        return found

    return scan
