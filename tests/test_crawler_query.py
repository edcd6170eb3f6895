"""The query language (docs/query-language.md): crawler.query."""

from __future__ import annotations

import itertools
import pickle
import random
import re
import sqlite3
import string
import unicodedata

import pytest

from crawler import CrawlerError
from crawler.query import (
    And,
    Document,
    Near,
    Not,
    Or,
    Query,
    QueryError,
    Term,
    parse,
    tokenize,
)
from crawler.query.aliases import alias_sets, expansions


def doc(title: str = "", summary: str = "", text: str = "") -> Document:
    return Document.from_fields(title, summary, text)


def hit(query: str, document: Document) -> bool:
    return parse(query).matches(document) is not None


# --------------------------------------------------------------------------- tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("NATO's", ["nato", "s"]),
        ("Air-Defence", ["air", "defence"]),
        ("IRIS-T", ["iris", "t"]),
        ("Türkiye", ["turkiye"]),
        ("Défense  OTAN", ["defense", "otan"]),
        ("F-35A jets, 2024!", ["f", "35a", "jets", "2024"]),
        ("snake_case", ["snake", "case"]),
        ("İstanbul Łódź straße", ["istanbul", "łodz", "straße"]),
        ("e\u0301te\u0301", ["ete"]),  # decomposed accents
        ("", []),
        ("--- ,;", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_tokenize_agrees_with_fts5_unicode61_for_latin_script() -> None:
    samples = [
        "NATO's Air-Defence",
        "IRIS-T aus der Türkiye",
        "Défense aérienne: l'OTAN",
        "Ærø, København; Łódź & Kraków",
        "ñandú straße İstanbul",
        "snake_case F-35A 2024",
        "Việt Nam Hà Nội",
    ]
    db = sqlite3.connect(":memory:")
    db.execute('CREATE VIRTUAL TABLE t USING fts5(x, tokenize="unicode61 remove_diacritics 2")')
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", list(enumerate(samples)))
    for rowid, sample in enumerate(samples):
        fts = [
            row[0]
            for row in db.execute("SELECT term FROM v WHERE doc = ? ORDER BY offset", (rowid,))
        ]
        assert tokenize(sample) == fts, sample


def _tokenize_by_definition(text: str) -> list[str]:
    """tokenize as its docstring defines it, the slow way: NFKD, combining marks dropped,
    lower-cased, maximal runs of letters and digits."""
    decomposed = unicodedata.normalize("NFKD", text)
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.findall(r"[^\W_]+", kept.lower())


def _random_text(rng: random.Random) -> str:
    pools = [
        string.printable,  # ASCII letters, digits, punctuation, underscore, every whitespace
        "ÀÉÎÕÜàéîõüßÆæŁłİıǄǅǆĳﬁﬂＡＺａｚ０９Ⅻ²½KÅ\u0301\u0308\u0327ʼ’“”—–\u00a0\u2028",
        "αβγάέΩωДжйёЇїשָׁمَرْحَبًاक्षि한국어日本語中文",
    ]
    parts = []
    for _ in range(rng.randint(0, 40)):
        choice = rng.random()
        if choice < 0.6:
            parts.append(rng.choice(pools[0]))
        elif choice < 0.8:
            parts.append(rng.choice(pools[1]))
        elif choice < 0.9:
            parts.append(rng.choice(pools[2]))
        else:  # any code point but the surrogates
            code = rng.choice([rng.randrange(0x80, 0x3000), rng.randrange(0xE000, 0x110000)])
            parts.append(chr(code))
    return "".join(parts)


def test_tokenize_is_its_definition_on_random_unicode_text() -> None:
    rng = random.Random(11)
    texts = [_random_text(rng) for _ in range(20_000)]
    texts += ["".join(rng.choice(string.printable) for _ in range(200)) for _ in range(2_000)]
    for text in texts:
        assert tokenize(text) == _tokenize_by_definition(text), repr(text)


# --------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("nato", "NATO leaders meet", True),
        ("nato", "Nato leaders meet", True),
        ("nato", "NATO's leaders meet", True),
        ("nato", "the natoo summit", False),
        ("nato", "pronato groups", False),
        ("NATO", "nato", True),
        ("nato", "", False),
        # accents, both ways
        ("defense", "La Défense européenne", True),
        ("défense", "defense budget", True),
        ("otan", "Sommet de l'OTAN", True),
        ("turkiye", "Türkiye buys jets", True),
        ("Türkiye", "TURKIYE buys jets", True),
        # a bare word with punctuation is a phrase of its tokens
        ("IRIS-T", "delivered IRIS-T systems", True),
        ("IRIS-T", "iris t", True),
        ("IRIS-T", "the iris of the eye; t", False),
        ("F-35", "F 35 jets", True),
        ("F-35", "F-16 and 35 others", False),
        ("nato's", "NATO's summit", True),
        ("nato's", "NATO summit", False),
    ],
)
def test_word(query: str, text: str, expected: bool) -> None:
    assert hit(query, doc(text=text)) is expected


# --------------------------------------------------------------------------- phrases


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("new air defence systems", True),
        ("Air-Defence", True),
        ("AIR DEFENCE", True),
        ("air, defence", True),
        ("air défence", True),
        ("air and defence", False),
        ("defence air", False),
        ("air", False),
    ],
)
def test_phrase(text: str, expected: bool) -> None:
    assert hit('"air defence"', doc(text=text)) is expected


def test_phrase_does_not_span_fields() -> None:
    assert not hit('"air defence"', doc(title="air", summary="defence"))
    assert not hit('"air defence"', doc(summary="new air", text="defence systems"))
    assert hit('"air defence"', doc(summary="new air defence", text="systems"))
    assert hit('"air defence"', doc(summary="new", text="air defence"))


def test_one_word_phrase_is_a_word() -> None:
    assert parse('"nato"').root == parse("nato").root
    assert hit('"nato"', doc(text="NATO's"))


# --------------------------------------------------------------------------- prefixes


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("defen*", "defence", True),
        ("defen*", "Defending the line", True),
        ("defen*", "défense", True),
        ("defen*", "defen", True),
        ("defen*", "undefended", False),
        ("defen*", "defeat", False),
        ("Défen*", "defensive", True),
        ("air-def*", "air defence", True),
        ("air-def*", "air-defense", True),
        ("air-def*", "air raid defence", False),
        ('"air def*"', "Air-Defence", True),
        ('"air def*"', "defence air", False),
    ],
)
def test_prefix(query: str, text: str, expected: bool) -> None:
    assert hit(query, doc(text=text)) is expected


def test_prefix_term_shape() -> None:
    assert parse("defen*").terms() == [Term("prefix", ("defen",))]
    assert parse('"air def*"').terms() == [Term("prefix", ("air", "def"))]


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("query", "text", "expected"),
    [
        ("nato summit", "NATO summit in Vilnius", True),
        ("nato summit", "NATO meeting", False),
        ("nato AND summit", "summit of NATO", True),
        ("nato AND summit", "summit", False),
        ("nato OR otan", "OTAN", True),
        ("nato OR otan", "UN", False),
        ("nato NOT summit", "NATO meeting", True),
        ("nato NOT summit", "NATO summit", False),
        ("NOT nato", "UN", True),
        ("NOT nato", "NATO", False),
        ("(nato OR otan) summit", "OTAN summit", True),
        ("(nato OR otan) summit", "OTAN meeting", False),
        ("NOT (nato OR otan)", "OTAN", False),
        ("NOT NOT nato", "NATO", True),
        # operators only in upper case: lower-case words are plain terms
        ("nato and summit", "NATO summit", False),
        ("nato and summit", "NATO and summit", True),
        ("nato or otan", "OTAN", False),
        ("not nato", "NATO", False),
        ("not nato", "not NATO", True),
        ("near(nato summit)", "near NATO summit", True),
        ("near(nato summit)", "NATO summit", False),
    ],
)
def test_operators(query: str, text: str, expected: bool) -> None:
    assert hit(query, doc(text=text)) is expected


PRECEDENCE_DOCS = [
    doc(text=" ".join(words))
    for words in [(), ("a",), ("b",), ("c",), ("a", "b"), ("a", "c"), ("b", "c"), ("a", "b", "c")]
]


@pytest.mark.parametrize(
    ("query", "same_as", "not_same_as"),
    [
        ("a OR b c", "a OR (b AND c)", "(a OR b) AND c"),
        ("a OR b AND c", "a OR (b AND c)", "(a OR b) AND c"),
        ("a b OR c", "(a AND b) OR c", "a AND (b OR c)"),
        ("NOT a b", "(NOT a) AND b", "NOT (a AND b)"),
        ("NOT a OR b", "(NOT a) OR b", "NOT (a OR b)"),
    ],
)
def test_precedence(query: str, same_as: str, not_same_as: str) -> None:
    assert parse(query).root == parse(same_as).root
    results = [hit(query, d) for d in PRECEDENCE_DOCS]
    assert results == [hit(same_as, d) for d in PRECEDENCE_DOCS]
    assert results != [hit(not_same_as, d) for d in PRECEDENCE_DOCS]


def test_tree_shapes() -> None:
    nato, otan, summit = (Term("word", (w,)) for w in ("nato", "otan", "summit"))
    assert parse("nato OR otan summit").root == Or((nato, And((otan, summit))))
    assert parse("NOT nato summit").root == And((Not(nato), summit))
    assert parse("nato AND otan AND summit").root == And((nato, otan, summit))
    assert parse("NEAR(nato summit, 3)").root == Near((nato, summit), 3)
    assert parse("NEAR(nato summit)").root == Near((nato, summit), 10)
    assert parse("NEAR ( nato  summit ,3 )").root == Near((nato, summit), 3)


# --------------------------------------------------------------------------- NEAR


def words_apart(gap: int) -> str:
    """ "nato" and "summit" with `gap` - 1 filler words between: positions `gap` apart."""
    return " ".join(["nato", *["x"] * (gap - 1), "summit"])


@pytest.mark.parametrize(
    ("query", "gap", "expected"),
    [
        ("NEAR(nato summit, 3)", 1, True),
        ("NEAR(nato summit, 3)", 3, True),
        ("NEAR(nato summit, 3)", 4, False),
        ("NEAR(summit nato, 3)", 3, True),  # order does not matter
        ("NEAR(nato summit)", 10, True),  # default 10
        ("NEAR(nato summit)", 11, False),
        ("NEAR(nato summit, 10)", 10, True),
        ("NEAR(nato summit, 10)", 11, False),
        ("NEAR(nato summit, 50)", 50, True),
        ("NEAR(nato summit, 50)", 51, False),
        ("NEAR(nat* summ*, 2)", 2, True),
        ("NEAR(nat* summ*, 2)", 3, False),
    ],
)
def test_near_distance(query: str, gap: int, expected: bool) -> None:
    assert hit(query, doc(text=words_apart(gap))) is expected


def test_near_chooses_the_closest_occurrences() -> None:
    text = "nato " + "x " * 30 + "summit " + "x " * 30 + "nato summit"
    assert hit("NEAR(nato summit, 1)", doc(text=text))
    assert not hit("NEAR(nato summit, 1)", doc(text="nato x summit x nato"))


def test_near_three_terms_and_phrases() -> None:
    text = "the air defence of the alliance was discussed by nato ministers in brussels"
    #       0   1   2       3  4   5        6   7         8  9    10        11 12
    assert hit('NEAR("air defence" nato ministers, 9)', doc(text=text))
    assert not hit('NEAR("air defence" nato ministers, 8)', doc(text=text))
    assert hit('NEAR("air defence" alliance)', doc(text=text))
    assert not hit('NEAR("air defence" brussels, 9)', doc(text=text))  # phrase counts at "air"
    assert hit('NEAR("air defence" brussels, 11)', doc(text=text))
    assert not hit('NEAR("air defence" moscow)', doc(text=text))


def test_near_needs_one_field() -> None:
    assert not hit("NEAR(nato summit)", doc(title="nato", text="summit"))
    assert not hit("NEAR(nato summit, 1000)", doc(summary="nato", text="summit"))
    assert hit("NEAR(nato summit)", doc(title="nato summit", text="nothing"))
    assert not hit("NEAR(nato summit)", doc(summary="the nato", text="summit"))
    assert hit("NEAR(nato summit)", doc(text="nato summit"))


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("query", "document", "expected"),
    [
        ("nato", doc(title="NATO meets"), True),
        ("nato", doc(summary="NATO meets"), True),
        ("nato", doc(text="NATO meets"), True),
        ("title:nato", doc(title="NATO meets"), True),
        ("title:nato", doc(summary="NATO meets", text="NATO"), False),
        ("Title:nato", doc(title="NATO meets"), True),
        ('title:"air defence"', doc(title="Air-Defence deal"), True),
        ('title:"air defence"', doc(text="Air-Defence deal"), False),
        ("title:defen*", doc(title="Defending"), True),
        ("title:defen*", doc(text="Defending"), False),
        ("title:(nato OR otan)", doc(title="OTAN"), True),
        ("title:(nato OR otan)", doc(text="OTAN"), False),
        ("title:(nato otan)", doc(title="NATO", text="OTAN"), False),
        ("title:(nato NOT otan)", doc(title="NATO", text="OTAN"), True),
        ("title:NEAR(nato summit)", doc(title="NATO summit"), True),
        ("title:NEAR(nato summit)", doc(text="NATO summit"), False),
        ("title:nato summit", doc(title="NATO", text="summit"), True),
    ],
)
def test_fields(query: str, document: Document, expected: bool) -> None:
    assert hit(query, document) is expected


def test_field_applies_to_every_term_in_a_group() -> None:
    assert parse("title:(a OR (b NOT c))").terms() == [
        Term("word", ("a",), "title"),
        Term("word", ("b",), "title"),
        Term("word", ("c",), "title"),
    ]
    assert parse("title:a b").terms() == [Term("word", ("a",), "title"), Term("word", ("b",))]


# --------------------------------------------------------------------------- matched terms


@pytest.mark.parametrize(
    ("query", "document", "terms"),
    [
        (
            'NATO AND ("air defence" OR "air defense")',
            doc(title="NATO buys", text="new air defence systems"),
            ["nato", "air defence"],
        ),
        (
            '("air defence" OR "air defense") nato',
            doc(text="NATO: air defense, air defence"),
            ["air defence", "air defense", "nato"],
        ),
        ("nato OR otan OR nato", doc(text="OTAN NATO"), ["nato", "otan"]),
        ("nato NOT summit", doc(text="NATO"), ["nato"]),
        ("nato OR (otan NOT nato)", doc(text="NATO"), ["nato"]),
        ("NOT nato", doc(text="UN"), []),
        ("NOT NOT nato", doc(text="NATO"), ["nato"]),
        ("defen* AND Air-Defence", doc(text="Air-Defence"), ["defen*", "air defence"]),
        (
            "title:nato OR title:Air-Def*",
            doc(title="NATO air defence"),
            ["title:nato", 'title:"air def*"'],
        ),
        ("title:nato nato", doc(title="NATO"), ["title:nato", "nato"]),
        ("NEAR(nato summit) OR otan", doc(text="NATO summit"), ["nato", "summit"]),
        ("Türkiye", doc(text="Turkiye"), ["turkiye"]),
    ],
)
def test_matched_terms(query: str, document: Document, terms: list[str]) -> None:
    assert parse(query).matches(document) == terms


def test_no_match_is_none() -> None:
    assert parse("nato").matches(doc(text="UN")) is None
    assert parse("NOT nato").matches(doc(text="NATO")) is None


def test_document_is_reusable_across_queries() -> None:
    document = doc("NATO summit", "Air-Defence", "IRIS-T from Türkiye")
    queries = [
        "nato",
        "defen*",
        "iris-t",
        '"air defence"',
        "NEAR(iris turkiye, 3)",
        "natoo",
        "def*",
    ]
    first = [parse(q).matches(document) for q in queries]
    second = [parse(q).matches(document) for q in reversed(queries)][::-1]
    assert first == second
    assert first == [
        ["nato"],
        ["defen*"],
        ["iris t"],
        ["air defence"],
        ["iris", "turkiye"],
        None,
        ["def*"],
    ]


def test_document_from_fields() -> None:
    document = Document.from_fields("NATO's summit", None, "Air-Défense")
    assert document.title == ("nato", "s", "summit")
    assert document.body == ("air", "defense")
    assert Document.from_fields(None, None, None).body == ()
    built = Document(title=("nato",), body=("air", "defence"))
    assert parse('nato "air defence"').matches(built) == ["nato", "air defence"]


def test_terms_lists_every_leaf_once_in_order() -> None:
    query = parse('nato (otan OR "air defence") NOT defen* NEAR(a b) nato title:x')
    assert query.terms() == [
        Term("word", ("nato",)),
        Term("word", ("otan",)),
        Term("phrase", ("air", "defence")),
        Term("prefix", ("defen",)),
        Term("word", ("a",)),
        Term("word", ("b",)),
        Term("word", ("x",), "title"),
    ]


def test_query_keeps_its_text() -> None:
    query = parse("  NATO  summit ")
    assert isinstance(query, Query)
    assert query.text == "  NATO  summit "


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ("nato (a OR b", "unbalanced parenthesis", 5),
        ("(nato", "unbalanced parenthesis", 0),
        ("nato)", "unbalanced parenthesis", 4),
        ("(a) b)", "unbalanced parenthesis", 5),
        (") nato", "unbalanced parenthesis", 0),
        ('nato "air defence', "unterminated quote", 5),
        ('nato ""', "empty phrase", 5),
        ('"  "', "empty phrase", 0),
        ('"--"', "phrase has no letters or digits", 0),
        ("nato AND", "dangling operator 'AND'", 5),
        ("nato OR", "dangling operator 'OR'", 5),
        ("OR nato", "dangling operator 'OR'", 0),
        ("AND nato", "dangling operator 'AND'", 0),
        ("NOT", "dangling operator 'NOT'", 0),
        ("nato NOT", "dangling operator 'NOT'", 5),
        ("(nato AND) b", "dangling operator 'AND'", 6),
        ("a AND OR b", "dangling operator 'AND'", 2),
        ("NEAR nato", "NEAR without parentheses", 0),
        ("x NEAR", "NEAR without parentheses", 2),
        ("NEAR(nato)", "NEAR needs at least two terms", 0),
        ("a NEAR()", "NEAR needs at least two terms", 2),
        ("NEAR(a b, x)", "bad NEAR distance 'x'", 10),
        ("NEAR(a b, 0)", "bad NEAR distance '0'", 10),
        ("NEAR(a b, -3)", "bad NEAR distance '-3'", 10),
        ("NEAR(a b, 1001)", "bad NEAR distance '1001'", 10),
        ("NEAR(a b,)", "missing NEAR distance", 8),
        ("NEAR(a b, 5", "unbalanced parenthesis", 4),
        ("NEAR(a b", "unbalanced parenthesis", 4),
        ("NEAR(a b, 5, 6)", "unexpected ',' in NEAR", 11),
        ("NEAR(a OR b)", "'OR' inside NEAR", 7),
        ("NEAR(a (b c))", "'(' inside NEAR", 7),
        ("NEAR(title:a b)", "field inside NEAR", 5),
        ("foo:bar", "unknown field 'foo'", 0),
        ("nato body:x", "unknown field 'body'", 5),
        ("title:", "field 'title:' is followed by nothing", 0),
        ("title: AND x", "field 'title:' is followed by 'AND'", 0),
        ("*", "lone '*'", 0),
        ("nato *", "lone '*'", 5),
        ('"air defence"*', "lone '*'", 13),
        ("de*fen", "'*' inside a word", 2),
        ('"air* defence"', "misplaced '*' in a phrase", 4),
        ('"air *"', "misplaced '*' in a phrase", 5),
        ("a, b", "unexpected ','", 1),
        ("()", "empty parentheses", 0),
        ("nato & otan", "'&' has no letters or digits", 5),
        ("nato -summit", "'-summit' starts with '-'", 5),
        ("(" * 101 + "a" + ")" * 101, "query nested too deeply", 100),
    ],
)
def test_errors(query: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    err = caught.value
    assert err.message == message
    assert err.position == position
    assert err.query == query
    assert str(err).startswith(f"{message} at column {position + 1}")


def test_error_is_one_sentence_with_a_hint() -> None:
    with pytest.raises(QueryError) as caught:
        parse("nato (a OR b")
    err = caught.value
    assert isinstance(err, CrawlerError)
    assert str(err) == (
        "unbalanced parenthesis at column 6: this '(' is never closed; add a ')' after the group"
    )
    assert err.column == 6
    assert err.pointer() == "nato (a OR b\n     ^"


def test_error_without_hint_and_pickling() -> None:
    err = QueryError("something odd", "nato", 2)
    assert str(err) == "something odd at column 3"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.query, copy.position, str(copy)) == (
        "something odd",
        "nato",
        2,
        "something odd at column 3",
    )


@pytest.mark.parametrize(
    ("query", "hint_word"),
    [
        ("nato AND", "lower case: and"),
        ("NEAR nato", "NEAR(a b, 10)"),
        ("foo:bar", "title:"),
        ("nato -summit", "NOT summit"),
        ("a, b", "a OR b"),
    ],
)
def test_error_hints(query: str, hint_word: str) -> None:
    with pytest.raises(QueryError, match=None) as caught:
        parse(query)
    assert hint_word in str(caught.value)


# --------------------------------------------------------------------------- to_fts


@pytest.mark.parametrize(
    ("query", "fts"),
    [
        ("nato", '"nato"'),
        ("NATO's", '"nato s"'),
        ('"Air-Defence"', '"air defence"'),
        ("IRIS-T", '"iris t"'),
        ("defen*", '"defen"*'),
        ('"air def*"', '"air def"*'),
        ("nato summit", '"nato" AND "summit"'),
        ("nato OR otan", '"nato" OR "otan"'),
        (
            'NATO AND ("air defence" OR "air defense")',
            '"nato" AND ("air defence" OR "air defense")',
        ),
        ("a OR b c", '"a" OR ("b" AND "c")'),
        ("(a OR b) (c OR d)", '("a" OR "b") AND ("c" OR "d")'),
        ("nato NOT summit", '"nato"'),
        ("nato (summit OR NOT x)", '"nato"'),
        ("NEAR(nato summit, 3)", '"nato" AND "summit"'),
        ("title:nato", '"nato"'),
        ("title:(nato OR otan)", '"nato" OR "otan"'),
        # FTS keywords and punctuation stay inside quoted strings
        ("and or near not", '"and" AND "or" AND "near" AND "not"'),
        ('"NOT" OR "NEAR"', '"not" OR "near"'),
        # no useful prefilter
        ("NOT nato", None),
        ("nato OR NOT otan", None),
        ("NOT (a OR b)", None),
        # outside the Latin script FTS5 does not fold accents as tokenize does: no prefilter
        ("Київ", None),
        ("Київ nato", '"nato"'),
        ("Київ OR nato", None),
    ],
)
def test_to_fts(query: str, fts: str | None) -> None:
    assert parse(query).to_fts() == fts


FTS_DOCS = [
    ("NATO summit in Vilnius", "Leaders agree on air defence", "The alliance's Air-Defence plan."),
    ("OTAN: sommet", "La Défense aérienne", "l'OTAN et la défense"),
    ("Türkiye buys IRIS-T", None, "IRIS-T SLM systems delivered to Türkiye by Diehl"),
    ("Weather", "Rain and wind", "nothing about the alliance at all, not near anything"),
    ("Defending the line", "defensive positions", "F-35 jets and F-16 jets"),
    ("Київ", "Ukraine", "Air defense of Kyiv, Київ, near the river"),
    ("NATO's new chief", "and or not near", "NEAR AND OR NOT words as text"),
    ("Athens: Αθήνα", "Greece", "Москва и Бойко"),
]

FTS_QUERIES = [
    "nato",
    "otan",
    "nato OR otan",
    '"air defence"',
    '"air defense" OR "air defence"',
    'NATO AND ("air defence" OR "air defense")',
    "defen*",
    "title:defen*",
    "défense",
    "turkiye",
    "Türkiye IRIS-T",
    "IRIS-T NOT slm",
    "F-35",
    "NEAR(nato summit, 2)",
    'NEAR("air defence" alliance, 20)',
    "NOT nato",
    "nato NOT summit",
    "weather OR NOT rain",
    "title:(nato OR otan) defen*",
    "and or not near",
    '"near" OR "and"',
    "Київ",
    "kyiv OR Київ",
    "αθηνα",
    "Αθήνα athens",
    "бойко",
    "NATO's",
    "air-def*",
]


@pytest.fixture
def fts_db() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE VIRTUAL TABLE articles USING "
        'fts5(title, summary, text, tokenize="unicode61 remove_diacritics 2")'
    )
    db.executemany(
        "INSERT INTO articles(rowid, title, summary, text) VALUES (?, ?, ?, ?)",
        [(i, *fields) for i, fields in enumerate(FTS_DOCS)],
    )
    return db


def fts_rows(db: sqlite3.Connection, expression: str) -> set[int]:
    rows = db.execute("SELECT rowid FROM articles WHERE articles MATCH ?", (expression,))
    return {row[0] for row in rows}


def test_to_fts_is_accepted_by_sqlite_and_selects_a_superset(fts_db: sqlite3.Connection) -> None:
    documents = [Document.from_fields(*fields) for fields in FTS_DOCS]
    prefiltered = 0
    for text in FTS_QUERIES:
        query = parse(text)
        matching = {i for i, d in enumerate(documents) if query.matches(d) is not None}
        fts = query.to_fts()
        if fts is None:
            continue
        prefiltered += 1
        candidates = fts_rows(fts_db, fts)
        assert matching <= candidates, (text, fts, matching, candidates)
    assert prefiltered >= 20


def test_superset_check_is_not_vacuous(fts_db: sqlite3.Connection) -> None:
    documents = [Document.from_fields(*fields) for fields in FTS_DOCS]
    query = parse('NATO AND ("air defence" OR "air defense")')
    assert [i for i, d in enumerate(documents) if query.matches(d) is not None] == [0]
    assert fts_rows(fts_db, query.to_fts() or "") == {0}
    assert fts_rows(fts_db, parse("defen*").to_fts() or "") == {0, 1, 4, 5}


def test_non_latin_terms_get_no_fts_prefilter(fts_db: sqlite3.Connection) -> None:
    """FTS5 keeps Cyrillic and Greek accents that tokenize folds away: a naive FTS string from
    our tokens would miss these matches, so to_fts leaves such terms out."""
    documents = [Document.from_fields(*fields) for fields in FTS_DOCS]
    for text, tokens, index in [("Київ", "киів", 5), ("бойко", "боико", 7), ("αθηνα", "αθηνα", 7)]:
        query = parse(text)
        assert query.matches(documents[index]) == [tokens]
        assert query.to_fts() is None
        assert index not in fts_rows(fts_db, f'"{tokens}"')


def test_every_combining_mark_is_below_the_table_limit() -> None:
    import sys
    import unicodedata

    from crawler.query import nodes as query

    above = [
        c
        for c in range(query._COMBINING_LIMIT, sys.maxunicode + 1)
        if unicodedata.combining(chr(c))
    ]
    assert above == []
    assert query.tokenize("Ame\u0301lie Tu\u0308rkiye") == ["amelie", "turkiye"]


# --------------------------------------------------------------------------- compiled matching
#
# Query.matches runs a compiled form of the tree over lazily built lookups of the Document. Here
# it is compared with the language's definition written out plainly: every window of tokens,
# every choice of NEAR positions, the tree walked node by node.

_WORDS = ["nato", "air", "defence", "defense", "patriot", "summit", "baltic", "navy", "def"]
# alias sets of the random queries: words, phrases and exact forms over the same words
_ALIASES = expansions(
    alias_sets(
        {
            "nato": ["NATO", "baltic navy", "=summit"],
            "ad": ["air defence", "air defense", "Patriot"],
            "one": ["navy"],
        }
    )
)


def _reference_starts(document: Document, term: Term, field: str) -> list[int]:
    """Where `term` starts in one field: windows that do not cross the summary/text boundary."""
    tokens = document.title if field == "title" else document.body
    split = None if field == "title" else document.summary_length
    n, found = len(term.tokens), []
    for i in range(len(tokens) - n + 1):
        window = tokens[i : i + n]
        if split is not None and i < split < i + n:
            continue
        last = window[-1].startswith(term.tokens[-1]) if term.kind == "prefix" else None
        if window[:-1] == term.tokens[:-1] and (last or window[-1] == term.tokens[-1]):
            found.append(i + (1001 if split is not None and i >= split else 0))
    return found


def _reference_fields(term: Term) -> tuple[str, ...]:
    return ("title",) if term.field == "title" else ("title", "body")


def _reference(node: object, document: Document) -> bool:
    if isinstance(node, Term):
        return any(_reference_starts(document, node, f) for f in _reference_fields(node))
    if isinstance(node, And):
        return all(_reference(child, document) for child in node.children)
    if isinstance(node, Or):
        return any(_reference(child, document) for child in node.children)
    if isinstance(node, Not):
        return not _reference(node.child, document)
    assert isinstance(node, Near)
    for field in _reference_fields(node.terms[0]):
        lists = [_reference_starts(document, t, field) for t in node.terms]
        if any(max(c) - min(c) <= node.distance for c in itertools.product(*lists)):
            return True
    return False


def _reference_matches(query: Query, document: Document) -> list[str] | None:
    if not _reference(query.root, document):
        return None
    found: list[str] = []
    for term, negated in _leaves_of(query.root):
        if not negated and str(term) not in found and _reference(term, document):
            found.append(str(term))
    return found


def _leaves_of(node: object, negated: bool = False) -> list[tuple[Term, bool]]:
    if isinstance(node, Term):
        return [(node, negated)]
    if isinstance(node, Near):
        return [(t, negated) for t in node.terms]
    if isinstance(node, Not):
        return _leaves_of(node.child, not negated)
    assert isinstance(node, And | Or)
    return [leaf for child in node.children for leaf in _leaves_of(child, negated)]


def _random_query(rng: random.Random, depth: int = 0) -> str:
    def term() -> str:
        kind = rng.random()
        if kind < 0.08:
            return "@" + rng.choice(list(_ALIASES))
        if kind < 0.16:
            return "=" + rng.choice(_WORDS)
        if kind < 0.2:
            return '="' + " ".join(rng.choices(_WORDS, k=rng.randint(1, 2))) + '"'
        if kind < 0.5:
            return rng.choice(_WORDS)
        if kind < 0.75:
            return '"' + " ".join(rng.choices(_WORDS, k=rng.randint(2, 3))) + '"'
        return rng.choice(_WORDS)[: rng.randint(1, 3)] + "*"

    shape = rng.random() if depth < 3 else 0.0
    if shape < 0.35:
        return ("title:" if rng.random() < 0.2 else "") + term()
    if shape < 0.5:
        terms = " ".join(term() for _ in range(rng.randint(2, 3)))
        return f"NEAR({terms}, {rng.randint(1, 6)})"
    if shape < 0.6:
        return f"NOT {_random_query(rng, depth + 1)}"
    joiner = " OR " if shape < 0.8 else rng.choice([" ", " AND "])
    parts = [_random_query(rng, depth + 1) for _ in range(rng.randint(2, 3))]
    return "(" + joiner.join(parts) + ")"


def test_compiled_matching_agrees_with_the_definition_on_random_queries() -> None:
    rng = random.Random(7)
    queries = [parse(_random_query(rng), _ALIASES) for _ in range(400)]
    documents = [
        doc(*(" ".join(rng.choices(_WORDS, k=rng.randint(0, n))) for n in (4, 8, 14)))
        for _ in range(60)
    ]
    # and without a summary/text boundary, as a Document can be built directly
    documents += [
        Document(tuple(rng.choices(_WORDS, k=rng.randint(0, 4))), tuple(rng.choices(_WORDS, k=n)))
        for n in range(0, 30, 2)
    ]
    matched = 0
    for query in queries:
        for document in documents:
            expected = _reference_matches(query, document)
            assert query.matches(document) == expected, (query.text, document)
            matched += expected is not None
    assert 0.1 < matched / (len(queries) * len(documents)) < 0.9  # both answers are tried


def test_a_pickled_query_matches_as_the_original() -> None:
    query = parse('NEAR(air def*, 3) OR (title:"baltic navy" NOT nato)')
    document = doc("Baltic navy", "air defence", "nato")
    assert query.matches(document) == ["air", "def*", 'title:"baltic navy"']
    copy = pickle.loads(pickle.dumps(query))  # the compiled closures are not pickled
    assert copy == query and copy.matches(document) == query.matches(document)
