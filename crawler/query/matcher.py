"""Match one article against thousands of rules by indexing the rules (a presearcher).

Evaluating every rule's query on every article costs time in proportion to the number of
rules. Most rules cannot match a given article at all: ``nato AND summit`` needs the token
``nato`` somewhere in the article. `RuleIndex` derives, once per rule, what an article must
hold for the query to have a chance, indexes the rules by it, and for each article evaluates
only the rules that pass (the *candidates*) with the real `Query.matches`. So the answers are
exactly those of the naive loop, as in Lucene's Monitor (Luwak)::

    index = RuleIndex(rules)                  # once per configuration
    doc = Document.from_fields(title, summary, text)
    for rule, terms in index.match(doc, source="example-feed"):
        ...

What a query needs (`clauses`) is a list of *clauses*, each a set of *anchors* (`Anchor`: a
token, exact or as a prefix, in the title or anywhere): the query can only match an article
that holds at least one anchor of every clause. The clauses are

- a word: its token; a phrase: each of its tokens; a prefix term (``defen*``,
  ``"air def*"``): its exact tokens and its prefix. ``title:`` terms need them in the title,
  other terms in the title or the body;
- ``a AND b`` and ``NEAR(a b)``: the clauses of every child;
- ``a OR b``: each union of one clause of each child (a few, the rarest-looking);
- ``NOT x``: none (anything may match), except where De Morgan removes the NOT:
  ``NOT (NOT a OR NOT b)`` needs what ``a AND b`` needs.

A rule is indexed under the anchors of its rarest-looking clause (`anchors`); an article's
candidates are the rules indexed under an anchor it holds whose other clauses it satisfies
too, plus the rules without clauses (``NOT nato``, ``a OR NOT b``), which are evaluated on
every article.

The module is pure, like `crawler.query`: no I/O, clock or environment.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import product
from typing import NamedTuple

from crawler.model import Rule
from crawler.query import And, Document, Near, Node, Not, Query, Term

__all__ = ["Anchor", "RuleIndex", "anchors", "clauses"]

# An OR is multiplied out into at most this many clauses (more would be slower to check than
# they save); fewer clauses still make a superset, so dropping some is always safe.
MAX_OR_CLAUSES = 8
# A query keeps at most this many clauses to check, the rarest-looking first.
MAX_CLAUSES = 12
# Prefixes at least this long are looked up by their first _PREFIX_KEY characters, then checked.
_PREFIX_KEY = 4


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


Clause = frozenset[Anchor]

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


def _clause_cost(clause: Clause) -> float:
    return sum(_cost(a) for a in clause)


def _simplify(found: list[Clause]) -> list[Clause]:
    """Without repeats and without clauses implied by a smaller one, the rarest first."""
    ordered = sorted(set(found), key=lambda c: (len(c), _clause_cost(c), sorted(c)))
    kept: list[Clause] = []
    for clause in ordered:
        if not any(smaller <= clause for smaller in kept):
            kept.append(clause)
    return sorted(kept, key=lambda c: (_clause_cost(c), sorted(c)))


def _term_clauses(term: Term, title: bool) -> list[Clause]:
    """Every token of the term is needed (a "word" is looked up by its first token only)."""
    if term.kind == "word":
        return [frozenset({Anchor(term.tokens[0], False, title)})]
    needed = [Anchor(token, False, title) for token in term.tokens]
    if term.kind == "prefix":
        needed[-1] = Anchor(term.tokens[-1], True, title)
    return [frozenset({a}) for a in needed]


def _any_of(children: list[list[Clause]]) -> list[Clause]:
    """Clauses of an OR: one clause of each child, united; none if a child has none."""
    if any(not child for child in children):
        return []
    lists = [sorted(child, key=_clause_cost) for child in children]
    while math.prod(len(c) for c in lists) > MAX_OR_CLAUSES:
        max(lists, key=len).pop()  # drop the dearest clause of the child with the most
    return [frozenset().union(*combo) for combo in product(*lists)]


def _clauses(node: Node, positive: bool) -> list[Clause]:
    """Clauses of `node` (of ``NOT node`` when `positive` is False); []: no constraint."""
    if not positive and isinstance(node, Term | Near):
        return []
    if isinstance(node, Term):
        return _term_clauses(node, node.field == "title")
    if isinstance(node, Near):  # all its terms are looked up in the field of the first
        title = node.terms[0].field == "title"
        return [c for term in node.terms for c in _term_clauses(term, title)]
    if isinstance(node, Not):
        return _clauses(node.child, not positive)
    children = [_clauses(child, positive) for child in node.children]
    # NOT (a AND b) is (NOT a) OR (NOT b); NOT (a OR b) is (NOT a) AND (NOT b).
    if isinstance(node, And) == positive:
        return _simplify([c for child in children for c in child])
    return _simplify(_any_of(children))


def clauses(query: Query | Node) -> list[Clause]:
    """What an article must hold for `query` to match: an anchor of each clause.

    The rarest-looking clause first; ``[]`` when nothing is needed (``NOT nato``).
    """
    found = _clauses(query.root if isinstance(query, Query) else query, True)
    return _simplify(found)[:MAX_CLAUSES]


def anchors(query: Query | Node) -> Clause | None:
    """The anchors a query is indexed under: it can only match an article holding one of them.

    None when there are none (``NOT nato``, ``a OR NOT b``): the query may match any article.
    """
    found = clauses(query)
    return found[0] if found else None


class _Lookup:
    """The anchors of one scope (the title, or anywhere), found under their names.

    An anchor's name is ``str(anchor)``: the token itself for an exact anchor anywhere, so the
    article's distinct tokens are the names of its exact anchors (tokens never hold ``*`` or
    ``:``).
    """

    def __init__(self, found: Iterable[Anchor], label: str) -> None:
        self.label = label  # "title:" or ""
        words: set[str] = set()
        self.short: dict[int, dict[str, str]] = {}  # length -> prefix -> name
        self.long: dict[str, list[tuple[str, str]]] = {}  # first characters -> (prefix, name)
        for anchor in found:
            token = anchor.token
            if not anchor.prefix:
                words.add(token)
            elif len(token) < _PREFIX_KEY:
                self.short.setdefault(len(token), {})[token] = str(anchor)
            else:
                self.long.setdefault(token[:_PREFIX_KEY], []).append((token, str(anchor)))
        self.words = frozenset(words)

    def find(self, vocabulary: frozenset[str], present: set[str]) -> None:
        """Add to `present` the names of the anchors that the distinct tokens hold."""
        if self.label:
            present.update([self.label + t for t in vocabulary & self.words])
        else:
            present.update(vocabulary & self.words)
        for length, table in self.short.items():
            cut = {t[:length] for t in vocabulary}
            present.update([table[p] for p in table.keys() & cut])
        if self.long:
            long = self.long
            for token in vocabulary:
                bucket = long.get(token[:_PREFIX_KEY])
                if bucket:
                    for prefix, name in bucket:
                        if token.startswith(prefix):
                            present.add(name)


class RuleIndex:
    """Rules indexed by their anchors, built once; `match` answers exactly as the naive loop.

    Rules with the same query tree are evaluated once per article. The index keeps the rules
    it was given and never changes: build a new one when the rules change.
    """

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        # One query id per distinct query tree, in the order of first appearance.
        query_ids: dict[Node, int] = {}
        self._query_of: list[int] = []  # rule position -> query id
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
        self._one_rule_per_query = len(self._queries) == len(self.rules)  # qid == position

        every: set[Anchor] = set()
        self._always: list[int] = []  # query ids without clauses
        self._postings: dict[str, list[int]] = {}  # anchor name -> query ids indexed under it
        self._checks: list[tuple[frozenset[str], ...]] = []  # query id -> its other clauses
        for qid, query in enumerate(self._queries):
            found = clauses(query)
            if not found:
                self._always.append(qid)
            for clause in found:
                every |= clause
            for anchor in found[0] if found else ():
                self._postings.setdefault(str(anchor), []).append(qid)
            self._checks.append(tuple(frozenset(str(a) for a in c) for c in found[1:]))
        self._indexed = frozenset(self._postings)
        self._anywhere = _Lookup((a for a in every if not a.title), "")
        self._in_title = _Lookup((a for a in every if a.title), "title:")

    @property
    def always(self) -> list[Rule]:
        """The rules without anchors (evaluated on every article), in config order."""
        return [self.rules[p] for p in sorted(p for q in self._always for p in self._rules_of[q])]

    def _candidate_queries(self, doc: Document) -> list[int]:
        present: set[str] = set()
        self._anywhere.find(doc.words, present)
        self._in_title.find(doc.title_words, present)
        hits = set(self._always)
        postings = self._postings
        for name in present & self._indexed:
            hits.update(postings[name])
        checks = self._checks
        passed = []
        for qid in hits:
            for clause in checks[qid]:
                if clause.isdisjoint(present):
                    break
            else:
                passed.append(qid)
        return passed

    def _candidate_positions(self, doc: Document) -> list[int]:
        passed = self._candidate_queries(doc)
        if self._one_rule_per_query:
            return sorted(passed)
        rules_of = self._rules_of
        return sorted(p for qid in passed for p in rules_of[qid])

    def candidates(self, doc: Document) -> list[Rule]:
        """The rules that may match `doc` (a superset of the matching ones), in config order."""
        return [self.rules[p] for p in self._candidate_positions(doc)]

    def match(self, doc: Document, source: str | None = None) -> list[tuple[Rule, list[str]]]:
        """The rules that match `doc`, with their matched terms, in config order.

        Exactly ``[(r, r.query.matches(doc)) for r in rules if r.query.matches(doc) is not
        None]``, restricted to the rules that apply to `source` when it is given.
        """
        matched: list[tuple[Rule, list[str]]] = []
        if self._one_rule_per_query:  # query id == rule position: nothing to share
            rules, queries = self.rules, self._queries
            for position in self._candidate_positions(doc):
                rule = rules[position]
                if source is None or rule.applies_to(source):
                    found = queries[position].matches(doc)
                    if found is not None:
                        matched.append((rule, found))
            return matched
        results: dict[int, list[str] | None] = {}
        for position in self._candidate_positions(doc):
            rule = self.rules[position]
            if source is not None and not rule.applies_to(source):
                continue
            qid = self._query_of[position]
            if qid in results:
                terms = results[qid]
                if terms is not None:
                    terms = list(terms)  # each rule its own list, as in the naive loop
            else:
                terms = results[qid] = self._queries[qid].matches(doc)
            if terms is not None:
                matched.append((rule, terms))
        return matched
