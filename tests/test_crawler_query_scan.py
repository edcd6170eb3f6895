"""crawler.query.scan: a query tested on folded fields answers as `Query.matches` on a
`Document` does (random queries and articles), and `search` over a real archive, on both
engines, answers as matching every article one by one."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crawler.archive.interface import Storage
from crawler.query import Document, Query, QueryError, parse
from crawler.query.scan import fold, scanner
from crawler.query.search import backtest, search
from crawler.records import ArticleIn

# Words in several spellings: case, accents that fold away, letters that do not (ł, ß), a
# Greek and a Cyrillic word, digits; joined by spaces, punctuation, underscores and quotes.
_WORDS = [
    "nato", "NATO", "Nato's", "air", "Air-Defence", "defence", "défense", "DEFENSE", "def",
    "patriot", "Łódź", "lodz", "straße", "strasse", "ﬁnance", "finance", "F-35A", "35a",
    "μέτρο", "метро", "summit", "baltic", "navy", "w1", "w10", "w100",
]  # fmt: skip
_SEPARATORS = [" ", " ", " ", "  ", ", ", ". ", "\n", " - ", "_", "’", " “", "” ", "\u00a0"]
_QUERY_WORDS = [
    "nato", "air", "defence", "defense", "def", "patriot", "łodz", "lodz", "straße", "finance",
    "35a", "μετρο", "метро", "summit", "navy", "w1", "w10",
]  # fmt: skip


def _text(rng: random.Random, most: int) -> str | None:
    if rng.random() < 0.1:
        return None
    words = rng.choices(_WORDS, k=rng.randint(0, most))
    return "".join(w + rng.choice(_SEPARATORS) for w in words)


def _random_query(rng: random.Random, depth: int = 0) -> str:
    def term() -> str:
        kind = rng.random()
        if kind < 0.45:
            return rng.choice(_QUERY_WORDS)
        if kind < 0.7:
            return '"' + " ".join(rng.choices(_QUERY_WORDS, k=rng.randint(1, 3))) + '"'
        if kind < 0.8:
            return "-".join(rng.choices(_QUERY_WORDS, k=2))  # a word of several tokens
        prefix = rng.choice(_QUERY_WORDS)[: rng.randint(1, 3)] + "*"
        return prefix if rng.random() < 0.6 else f"{rng.choice(_QUERY_WORDS)}-{prefix}"

    shape = rng.random() if depth < 3 else 0.0
    if shape < 0.4:
        return ("title:" if rng.random() < 0.2 else "") + term()
    if shape < 0.5:
        return f"NOT {_random_query(rng, depth + 1)}"
    joiner = " OR " if shape < 0.75 else rng.choice([" ", " AND "])
    parts = [_random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    return "(" + joiner.join(parts) + ")"


def _queries(rng: random.Random, count: int) -> list[Query]:
    queries: list[Query] = []
    refused = 0
    while len(queries) < count:
        try:
            queries.append(parse(_random_query(rng)))
        except QueryError:  # e.g. a query of nothing but NOT: the language refuses it
            refused += 1
    assert refused < count // 4
    return queries


def test_fold_is_the_tokens_between_spaces() -> None:
    assert fold("NATO's Air-Defence") == " nato s air defence "
    assert fold("Défense  aérienne") == " defense aerienne "
    assert fold(None) == fold("") == " "
    assert fold("a__b") == " a  b "  # ASCII: a run of spaces stays; phrases allow it


def test_scanning_answers_as_matching_a_document_on_random_queries_and_articles() -> None:
    rng = random.Random(5)
    queries = _queries(rng, 500)
    articles = [(_text(rng, 5), _text(rng, 8), _text(rng, 16)) for _ in range(80)]
    documents = [Document.from_fields(*fields) for fields in articles]
    matched = 0
    for query in queries:
        scan = scanner(query)
        assert scan is not None, query.text
        for fields, document in zip(articles, documents, strict=True):
            expected = query.matches(document)
            assert scan(*fields) == expected, (query.text, fields)
            matched += expected is not None
    assert 0.1 < matched / (len(queries) * len(articles)) < 0.9  # both answers are tried


def test_a_query_with_near_is_left_to_the_document() -> None:
    assert scanner(parse("NEAR(nato summit, 3)")) is None
    assert scanner(parse('nato OR (air AND NOT NEAR("air defence" summit))')) is None


def _store(archive: Storage, rng: random.Random, count: int, now: datetime) -> None:
    for i in range(count):
        title, summary, text = _text(rng, 5), _text(rng, 8), _text(rng, 16)
        archive.store_article(
            ArticleIn(
                url=f"https://s{i % 3}.example/{i}",
                source=f"s{i % 3}",
                guid=None,
                title=title,
                author=None,
                published=None,
                language="en",
                summary=summary,
                text=f"{text} article{i}",  # no two alike: each is a story of its own
                fingerprint=None,
            ),
            now - timedelta(hours=count - i),
            lambda *_: [],
        )


def test_search_answers_as_matching_every_article(open_engine: Callable[[], Storage]) -> None:
    """On both engines: `search` and `backtest` give what matching each article's `Document`
    gives, for random queries (the index narrows, the folded fields decide)."""
    rng = random.Random(9)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    archive = open_engine()
    _store(archive, rng, 120, now)
    everything = list(archive.search_candidates(None))
    assert len(everything) == 120
    since = now - timedelta(hours=60)
    for query in _queries(rng, 150):
        expected = [
            (a, m)
            for a in everything
            if (m := query.matches(Document.from_fields(a.title, a.summary, a.text))) is not None
        ]
        assert search(archive, query) == expected, query.text
        recent = [(a, m) for a, m in expected if a.first_seen >= since]
        assert backtest(archive, query, since) == recent, query.text
        only = [(a, m) for a, m in expected if a.source in ("s0", "s2")]
        assert backtest(archive, query, None, ("s0", "s2"), limit=5) == only[:5], query.text
