"""Match one article against thousands of rules by indexing the rules (a presearcher).

Evaluating every rule's query on every article costs time in proportion to the number of
rules. Most rules cannot match a given article at all: ``nato AND summit`` needs the token
``nato`` somewhere in the article. `RuleIndex` derives, once per rule, a set of *anchors* such
that the query can only match an article holding at least one of them, and indexes the rules
by anchor. For an article, only the rules whose anchors occur in it (the *candidates*) are
then evaluated with the real `Query.matches`, so the answers are exactly those of the naive
loop (as Lucene's Monitor / Luwak does)::

    index = RuleIndex(rules)                  # once per configuration
    doc = Document.from_fields(title, summary, text)
    for rule, terms in index.match(doc, source="example-feed"):
        ...

Anchors (`anchors`):

- a word is its token; a phrase is one of its tokens (the rarest-looking); a prefix term
  (``defen*``, ``"air def*"``) is one of its exact tokens or its prefix. ``title:`` terms
  anchor in the title only, other terms in the title or the body;
- ``a AND b``: the anchors of one child suffice (the one that looks cheapest);
- ``a OR b``: the union of the children's anchors (none if one child has none);
- ``NEAR(a b)``: like ``a AND b``;
- ``NOT x``: no anchors, unless the NOT is removed by De Morgan (``NOT (NOT a OR b)`` anchors
  on ``a``). A query without anchors (``NOT nato``, ``a OR NOT b``) is evaluated on every
  article.

The module is pure, like `crawler.query`: no I/O, clock or environment.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from crawler.model import Rule
from crawler.query import And, Document, Near, Node, Not, Query, Term

__all__ = ["Anchor", "RuleIndex", "anchors"]


class Anchor(NamedTuple):
    """A token an article must hold: exactly, or as the start of one of its tokens (`prefix`).

    `title`: in the title only; otherwise in the title or the body. ``str(anchor)`` reads like
    the query language: ``nato``, ``defen*``, ``title:nato``.
    """

    token: str
    prefix: bool = False
    title: bool = False

    def __str__(self) -> str:
        return ("title:" if self.title else "") + self.token + ("*" if self.prefix else "")


# A few function words of the languages in the news we read: they occur in nearly every
# article, so a query that has a better anchor avoids them.
_COMMON_WORDS = """
    a an and are as at be but by for from has have he in is it its not of on or that the their
    they this to was were will with
    als auch auf aus bei das dass dem den der des die ein eine einer es fur im ist mit nicht
    noch sich sie und von vor war wie wir zu zum zur
    au aux avec ce dans de des du en est et il la le les pas par pour que qui sur un une
    al con del el los las por se y
"""
_COMMON = frozenset(_COMMON_WORDS.split())


def _cost(anchor: Anchor) -> float:
    """A guess at how often an article holds the anchor (lower is rarer), from its shape alone.

    Short tokens are common; a prefix matches more than the word it spells; a title is short.
    """
    token = anchor.token
    cost = 1.0 if token in _COMMON else 1.0 / (len(token) ** 2)
    if anchor.prefix:
        cost *= 4.0
    if anchor.title:
        cost *= 0.2
    return cost


def _set_cost(found: frozenset[Anchor]) -> float:
    return sum(_cost(a) for a in found)


def _term_anchor(term: Term) -> Anchor:
    """The cheapest single token that every occurrence of `term` needs."""
    title = term.field == "title"
    options = [Anchor(t, False, title) for t in term.tokens]
    if term.kind == "prefix":
        options[-1] = Anchor(term.tokens[-1], True, title)
    return min(options, key=_cost)


def _best(options: Iterable[frozenset[Anchor] | None]) -> frozenset[Anchor] | None:
    """The cheapest of the children's anchor sets of an AND; None if no child has any."""
    present = [o for o in options if o is not None]
    return min(present, key=_set_cost) if present else None


def _union(options: Iterable[frozenset[Anchor] | None]) -> frozenset[Anchor] | None:
    """All the children's anchors of an OR; None if any child has none."""
    merged: set[Anchor] = set()
    for option in options:
        if option is None:
            return None
        merged |= option
    return frozenset(merged)


def _anchors(node: Node, positive: bool) -> frozenset[Anchor] | None:
    """Anchors of `node` (of ``NOT node`` when `positive` is False); None: no anchors."""
    if isinstance(node, Term):
        return frozenset({_term_anchor(node)}) if positive else None
    if isinstance(node, Near):
        return _best(frozenset({_term_anchor(t)}) for t in node.terms) if positive else None
    if isinstance(node, Not):
        return _anchors(node.child, not positive)
    children = (_anchors(child, positive) for child in node.children)
    # NOT (a AND b) is (NOT a) OR (NOT b); NOT (a OR b) is (NOT a) AND (NOT b).
    if isinstance(node, And) == positive:
        return _best(children)
    return _union(children)


def anchors(query: Query | Node) -> frozenset[Anchor] | None:
    """Anchors of a query: it can only match an article holding at least one of them.

    None when there are none (``NOT nato``, ``a OR NOT b``): the query may match any article.
    """
    return _anchors(query.root if isinstance(query, Query) else query, True)


class RuleIndex:
    """Rules indexed by their anchors, built once; `match` answers exactly as the naive loop.

    Rules with the same query tree are evaluated once per article. The index holds references
    to the rules; it is not changed after it is built (build a new one when the config changes).
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        # One "query id" per distinct query tree, in the order of first appearance.
        query_ids: dict[Node, int] = {}
        self._query_of: list[int] = []
        self._queries: list[Query] = []
        self._rules_of: list[list[int]] = []  # query id -> rule positions, ascending
        for position, rule in enumerate(self.rules):
            qid = query_ids.get(rule.query.root)
            if qid is None:
                qid = query_ids[rule.query.root] = len(self._queries)
                self._queries.append(rule.query)
                self._rules_of.append([])
            self._query_of.append(qid)
            self._rules_of[qid].append(position)

        self._always: list[int] = []  # query ids evaluated on every article
        self._words: dict[str, list[int]] = {}  # token -> query ids (title or body)
        self._title_words: dict[str, list[int]] = {}
        # prefix length -> prefix -> query ids; looked up with the article's tokens cut short.
        self._prefixes: dict[int, dict[str, list[int]]] = {}
        self._title_prefixes: dict[int, dict[str, list[int]]] = {}
        self.anchors: list[frozenset[Anchor] | None] = []  # per query id
        for qid, query in enumerate(self._queries):
            found = anchors(query)
            self.anchors.append(found)
            if found is None:
                self._always.append(qid)
                continue
            for anchor in found:
                if anchor.prefix:
                    table = self._title_prefixes if anchor.title else self._prefixes
                    by_length = table.setdefault(len(anchor.token), {})
                    by_length.setdefault(anchor.token, []).append(qid)
                else:
                    words = self._title_words if anchor.title else self._words
                    words.setdefault(anchor.token, []).append(qid)

    @property
    def always(self) -> list[Rule]:
        """The rules without anchors (evaluated on every article), in config order."""
        return [self.rules[p] for qid in self._always for p in self._rules_of[qid]]

    def _candidate_queries(self, doc: Document) -> set[int]:
        hits = set(self._always)
        title = set(doc.title)
        tokens = title.union(doc.body)
        for vocabulary, words, prefixes in (
            (tokens, self._words, self._prefixes),
            (title, self._title_words, self._title_prefixes),
        ):
            for token in words.keys() & vocabulary:
                hits.update(words[token])
            for length, table in prefixes.items():
                cut = {t[:length] for t in vocabulary if len(t) >= length}
                for prefix in table.keys() & cut:
                    hits.update(table[prefix])
        return hits

    def _candidate_positions(self, doc: Document) -> list[int]:
        rules_of = self._rules_of
        return sorted(p for qid in self._candidate_queries(doc) for p in rules_of[qid])

    def candidates(self, doc: Document) -> list[Rule]:
        """The rules that may match `doc` (a superset of the matching ones), in config order."""
        return [self.rules[p] for p in self._candidate_positions(doc)]

    def match(self, doc: Document, source: str | None = None) -> list[tuple[Rule, list[str]]]:
        """The rules that match `doc`, with their matched terms, in config order.

        Exactly ``[(r, r.query.matches(doc)) for r in rules if r.query.matches(doc) is not
        None]``, restricted to the rules that apply to `source` when it is given.
        """
        results: dict[int, list[str] | None] = {}
        matched: list[tuple[Rule, list[str]]] = []
        for position in self._candidate_positions(doc):
            rule = self.rules[position]
            if source is not None and not rule.applies_to(source):
                continue
            qid = self._query_of[position]
            if qid in results:
                terms = results[qid]
                if terms is not None:
                    terms = list(terms)  # each rule gets its own list, as in the naive loop
            else:
                terms = results[qid] = self._queries[qid].matches(doc)
            if terms is not None:
                matched.append((rule, terms))
        return matched
