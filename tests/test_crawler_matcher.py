"""The rule index (crawler.query.matcher): anchors, candidates and
the same answers as the naive loop."""

from __future__ import annotations

import random

import pytest

from crawler.model import Rule
from crawler.query import Document, Near, Not, Query, QueryError, Term, parse
from crawler.query.aliases import alias_sets, expansions
from crawler.query.matcher import MAX_CLAUSES, Anchor, RuleIndex, anchors, clauses


def rule(name: str, text: str, sources: tuple[str, ...] = ()) -> Rule:
    return Rule(name, text, parse(text), notify=("log",), sources=sources)


def doc(title: str = "", summary: str = "", text: str = "") -> Document:
    return Document.from_fields(title, summary, text)


def anchor_strings(text: str) -> set[str] | None:
    found = anchors(parse(text))
    return None if found is None else {str(a) for a in found}


def naive(rules: list[Rule], document: Document, source: str | None = None) -> list[tuple]:
    out = []
    for r in rules:
        if source is not None and not r.applies_to(source):
            continue
        terms = r.query.matches(document)
        if terms is not None:
            out.append((r, terms))
    return out


# --------------------------------------------------------------------------- anchors


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # terms
        ("NATO", {"nato"}),
        ("Türkiye", {"turkiye"}),
        ('"air defence"', {"defence"}),  # a phrase: its longest token
        ("IRIS-T", {"iris"}),  # a bare word of several tokens is a phrase
        ("defen*", {"defen*"}),
        ('"air def*"', {"air"}),  # an exact token is cheaper than a prefix of the same length
        ('"a defen*"', {"defen*"}),
        ('"the missile"', {"missile"}),
        # fields
        ("title:nato", {"title:nato"}),
        ('title:"air defence"', {"title:defence"}),
        ("title:defen*", {"title:defen*"}),
        ("title:(nato OR otan)", {"title:nato", "title:otan"}),
        ("title:NEAR(nato summit)", {"title:summit"}),
        # AND: one child suffices, the cheapest
        ("nato summit", {"summit"}),
        ("the nato", {"nato"}),
        ("nato AND NOT summit", {"nato"}),
        ("NOT summit nato", {"nato"}),
        ("(nato OR otan) (missile OR drone)", {"missile", "drone"}),
        ("nato title:nato", {"title:nato"}),  # a title is short: its anchors are cheaper
        # OR: the union
        ("nato OR otan", {"nato", "otan"}),
        ("nato OR (otan summit)", {"nato", "summit"}),
        ("nato OR defen*", {"nato", "defen*"}),
        # NEAR: one term suffices
        ("NEAR(nato summit, 5)", {"summit"}),
        ('NEAR("air defence" nato)', {"defence"}),
        # NOT, and NOT removed by De Morgan
        ("NOT nato", None),
        ("nato OR NOT otan", None),
        ("NOT NEAR(nato summit)", None),
        ("NOT NOT nato", {"nato"}),
        ("NOT (NOT nato OR NOT summit)", {"summit"}),  # = nato AND summit
        ("NOT (NOT nato AND NOT otan)", {"nato", "otan"}),  # = nato OR otan
        ("NOT (nato AND NOT otan)", None),  # = NOT nato OR otan
        ("NOT (nato OR otan)", None),
        ("(NOT nato) (NOT otan)", None),
    ],
)
def test_anchors(query: str, expected: set[str] | None) -> None:
    assert anchor_strings(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("nato", [{"nato"}]),
        ("nato summit", [{"summit"}, {"nato"}]),  # the rarest-looking first
        ('"air defence"', [{"defence"}, {"air"}]),
        ('"air def*"', [{"air"}, {"def*"}]),
        ("NEAR(nato summit)", [{"summit"}, {"nato"}]),
        ('"air defence" OR drone', [{"defence", "drone"}, {"air", "drone"}]),
        ("(a OR b) (c OR d)", [{"a", "b"}, {"c", "d"}]),
        ("nato OR (nato summit)", [{"nato"}]),  # {nato, summit} is implied by {nato}
        ("nato nato", [{"nato"}]),
        ("nato AND NOT summit", [{"nato"}]),
        ("NOT (NOT nato OR NOT summit)", [{"summit"}, {"nato"}]),
        ("NOT nato", []),
        ("nato OR NOT summit", []),
    ],
)
def test_clauses(query: str, expected: list[set[str]]) -> None:
    assert [{str(a) for a in clause} for clause in clauses(parse(query))] == expected


def test_or_of_many_clauses_is_capped_and_still_necessary() -> None:
    words = [f"w{n}" for n in range(8)]
    query = " OR ".join(f'"{a} {b}"' for a, b in zip(words[::2], words[1::2], strict=True))
    found = clauses(parse(query))
    assert 1 <= len(found) <= MAX_CLAUSES
    for clause in found:  # every clause takes one token of each phrase
        assert all({f"w{2 * n}", f"w{2 * n + 1}"} & {str(a) for a in clause} for n in range(4))
    long_and = " ".join(f"word{n}" for n in range(30))
    assert len(clauses(parse(long_and))) == MAX_CLAUSES


def test_anchor_values() -> None:
    assert anchors(parse("title:defen*")) == {Anchor("defen", prefix=True, title=True)}
    assert anchors(parse("nato").root) == {Anchor("nato")}
    assert str(Anchor("nato", title=True)) == "title:nato"


# --------------------------------------------------------------------------- the index


def test_candidates_are_the_rules_whose_anchors_occur_in_config_order() -> None:
    rules = [
        rule("summit", "nato summit"),
        rule("drones", "drone OR missile"),
        rule("not-nato", "NOT nato"),
        rule("defence", "defen*"),
        rule("title", "title:nato"),
    ]
    index = RuleIndex(rules)
    assert index.always == [rules[2]]
    article = doc("Drone over the border", "", "NATO summit on air defences")
    assert index.candidates(article) == [rules[0], rules[1], rules[2], rules[3]]
    assert [r.name for r, _ in index.match(article)] == ["summit", "drones", "defence"]
    assert index.candidates(doc("NATO", "", "")) == [rules[2], rules[4]]
    assert index.candidates(doc("", "", "nato")) == [rules[2]]  # title: anchors in the title


def test_candidates_need_every_clause() -> None:
    rules = [rule("both", "nato summit"), rule("phrase", '"air defence"')]
    index = RuleIndex(rules)
    assert index.candidates(doc("", "", "the summit")) == []  # indexed under summit, no nato
    assert index.candidates(doc("", "", "defence of the air")) == [rules[1]]  # a superset
    assert index.match(doc("", "", "defence of the air")) == []
    assert index.candidates(doc("NATO", "", "summit")) == [rules[0]]


def test_always_rules_are_evaluated_on_every_article() -> None:
    rules = [rule("not", "NOT nato"), rule("or-not", "drone OR NOT missile")]
    index = RuleIndex(rules)
    assert index.always == rules
    assert index.match(doc()) == [(rules[0], []), (rules[1], [])]
    assert index.match(doc("", "", "nato missile")) == []
    assert index.match(doc("", "", "nato drone missile")) == [(rules[1], ["drone"])]


def test_results_follow_config_order_not_anchor_order() -> None:
    rules = [rule(f"r{n}", text) for n, text in enumerate(["zulu", "alpha", "mike OR zulu"])]
    article = doc("", "", "alpha mike zulu")
    assert [r.name for r, _ in RuleIndex(rules).match(article)] == ["r0", "r1", "r2"]
    assert RuleIndex(rules).match(article) == naive(rules, article)


def test_rules_sharing_a_query_each_get_their_own_terms() -> None:
    rules = [rule("a", "nato OR otan"), rule("b", "nato  OR  otan"), rule("c", "otan OR nato")]
    result = RuleIndex(rules).match(doc("", "", "NATO"))
    assert [(r.name, terms) for r, terms in result] == [
        ("a", ["nato"]),
        ("b", ["nato"]),
        ("c", ["nato"]),
    ]
    assert result[0][1] is not result[1][1]


def test_source_filter() -> None:
    rules = [rule("all", "nato"), rule("feed-a", "nato", ("a",)), rule("feed-b", "nato", ("b",))]
    index = RuleIndex(rules)
    article = doc("", "", "nato")
    assert [r.name for r, _ in index.match(article, "a")] == ["all", "feed-a"]
    assert [r.name for r, _ in index.match(article, "c")] == ["all"]
    assert [r.name for r, _ in index.match(article)] == ["all", "feed-a", "feed-b"]


def test_prefix_lookups() -> None:
    rules = [
        rule("defen", "defen*"),
        rule("whole", "nato*"),  # a prefix may be a whole token
        rule("long", "defenestration*"),
        rule("title", "title:drone*"),
        rule("phrase", '"air defen*"'),
    ]
    index = RuleIndex(rules)
    assert [r.name for r in index.candidates(doc("", "", "defence of NATO"))] == ["defen", "whole"]
    assert [r.name for r in index.candidates(doc("", "", "drones"))] == []
    assert [r.name for r in index.candidates(doc("Drones", "", ""))] == ["title"]
    found = index.match(doc("Air-Defence", "", ""))
    assert [(r.name, terms) for r, terms in found] == [
        ("defen", ["defen*"]),
        ("phrase", ["air defen*"]),
    ]


def test_empty_rules_and_empty_document() -> None:
    assert RuleIndex([]).match(doc("nato")) == []
    assert RuleIndex([rule("n", "nato")]).candidates(doc()) == []


def test_summary_boundary_and_fields_as_the_naive_loop() -> None:
    rules = [
        rule("phrase", '"air defence"'),
        rule("near", "NEAR(air defence, 2)"),
        rule("title-phrase", 'title:"air defence"'),
    ]
    article = doc("air", "talks on air", "defence today")
    assert RuleIndex(rules).match(article) == naive(rules, article) == []
    article = doc("defence air", "", "air defence")
    assert RuleIndex(rules).match(article) == naive(rules, article)


def test_trees_built_by_hand_are_anchored_as_query_py_evaluates_them() -> None:
    # The parser never builds these, but Query.matches accepts them: a "word" is looked up by
    # its first token, and NEAR looks all its terms up in the field of the first.
    word = Term("word", ("nato", "summit"))
    near = Near((Term("word", ("nato",)), Term("word", ("summit",), "title")), 10)
    rules = [
        Rule("word", "", Query("", word)),
        Rule("near", "", Query("", near)),
        Rule("not", "", Query("", Not(Not(near)))),
    ]
    article = doc("", "", "nato summit")
    assert RuleIndex(rules).match(article) == naive(rules, article)
    assert [r.name for r, _ in RuleIndex(rules).match(article)] == ["word", "near", "not"]


# --------------------------------------------------------------------------- equivalence

# A small vocabulary with shared prefixes, phrases, accents and words of several tokens, so
# random queries and articles meet often.
WORDS = [
    "nato",
    "natos",
    "nation",
    "air",
    "defence",
    "defense",
    "def",
    "missile",
    "drone",
    "drones",
    "summit",
    "kyiv",
    "türkiye",
    "turkey",
    "iris",
    "t",
    "the",
    "and",
    "or",
]
RAW = [*WORDS, "NATO's", "IRIS-T", "Air-Defence", "Türkiye", "F-35", "f", "35"]
SEPARATORS = [" ", " ", " ", "-", ", ", ". "]


def random_text(rng: random.Random, most: int) -> str:
    parts = []
    for _ in range(rng.randint(0, most)):
        word = rng.choice(RAW)
        parts.append(word.upper() if rng.random() < 0.1 else word)
        parts.append(rng.choice(SEPARATORS))
    return "".join(parts)


# alias sets of the random rules: words, phrases and exact forms over the same words
ALIASES = expansions(
    alias_sets(
        {
            "nato": ["NATO", "NATO's", "=nato summit", "Air-Defence"],
            "ad": ["air defence", "IRIS-T", "F-35", "=kyiv"],
            "one": ["türkiye"],
        }
    )
)


def random_term(rng: random.Random) -> str:
    roll = rng.random()
    word = rng.choice(RAW)
    if roll < 0.06:
        return "@" + rng.choice(list(ALIASES))
    if roll < 0.12:
        return "=" + word
    if roll < 0.15:
        return '="' + " ".join(rng.choice(RAW) for _ in range(rng.randint(1, 3))) + '"'
    if roll < 0.45:
        return word
    if roll < 0.7:
        core = rng.choice(WORDS)
        return core[: rng.randint(1, len(core))] + "*"
    if roll < 0.9:
        words = [rng.choice(RAW) for _ in range(rng.randint(2, 3))]
        star = "*" if rng.random() < 0.2 and words[-1][-1].isalnum() else ""
        return '"' + " ".join(words) + star + '"'
    return word.upper() if word.lower() not in ("and", "or") else word


def random_near(rng: random.Random) -> str:
    terms = " ".join(random_term(rng) for _ in range(rng.randint(2, 3)))
    distance = rng.choice(["", ", 1", ", 2", ", 5", ", 1000"])
    return f"NEAR({terms}{distance})"


def random_query(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random() if depth < 2 else rng.random() * 0.5
    if roll < 0.3:
        return random_term(rng)
    if roll < 0.38:
        return random_near(rng)
    if roll < 0.46:
        inner = rng.choice(
            [random_term(rng), random_near(rng), f"({random_query(rng, depth + 1)})"]
        )
        return f"title:{inner}"
    if roll < 0.56:
        return f"NOT {random_query(rng, depth + 1)}"
    children = [random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    joined = rng.choice([" ", " AND "] if roll < 0.78 else [" OR "]).join(children)
    return f"({joined})" if depth and rng.random() < 0.7 else joined


def random_rules(rng: random.Random, count: int) -> list[Rule]:
    rules: list[Rule] = []
    errors = 0
    while len(rules) < count:
        text = random_query(rng)
        try:
            query = parse(text, ALIASES)
        except QueryError:
            errors += 1
            continue
        sources = (
            tuple(rng.sample(["a", "b", "c"], rng.randint(1, 2))) if rng.random() < 0.2 else ()
        )
        rules.append(Rule(f"r{len(rules)}", text, query, sources=sources))
    assert errors < count // 20, "the generator should write valid queries"
    return rules


def copy(document: Document) -> Document:
    """The same article without the caches the other matcher filled."""
    return Document(document.title, document.body, document.summary_length)


@pytest.mark.parametrize("seed", [1, 2])
def test_same_answers_as_the_naive_loop(seed: int) -> None:
    rng = random.Random(seed)
    rules = random_rules(rng, 1500)
    index = RuleIndex(rules)
    position = {id(r): n for n, r in enumerate(rules)}
    checked = matched = candidates = 0
    for _ in range(50):
        article = doc(random_text(rng, 5), random_text(rng, 12), random_text(rng, 40))
        everything = naive(rules, copy(article))
        for source in (None, rng.choice(["a", "b", "z"])):
            expected = [(r, t) for r, t in everything if source is None or r.applies_to(source)]
            got = index.match(copy(article), source)
            assert [(r.name, t) for r, t in got] == [(r.name, t) for r, t in expected], source
            assert all(a is b for (a, _), (b, _) in zip(got, expected, strict=True))
        found = index.candidates(copy(article))
        assert {r.name for r, _ in everything} <= {r.name for r in found}
        assert [position[id(r)] for r in found] == sorted(position[id(r)] for r in found)
        checked += 1
        matched += len(everything)
        candidates += len(found)
    # The test means something: rules match, and the index leaves some out even over this
    # small vocabulary.
    assert matched > checked
    assert candidates < 0.85 * checked * len(rules)
    assert len(index.always) < 0.25 * len(rules)


def test_same_answers_on_short_documents_and_titles_only() -> None:
    rng = random.Random(7)
    rules = random_rules(rng, 1000)
    index = RuleIndex(rules)
    for _ in range(60):
        article = doc(random_text(rng, 4), "", random_text(rng, rng.choice([0, 1, 3])))
        assert index.match(copy(article)) == naive(rules, copy(article))
