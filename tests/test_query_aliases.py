"""Alias sets (`@name`) and exact terms (`=term`) in the query language (docs/query-language.md):
parsing and matching, the config's `[aliases]`, the caches keyed by the sets, and the real CLI
(`check`, `rules aliases`, `search`, `rules test`) on a real archive crawled from a local feed."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from nw import json_out, newswatch, write_config
from servers import FixtureSite

from crawler.query import Document, Or, QueryError, Term, parse
from crawler.query.aliases import alias_sets, alias_term, builtin_sets, expansions
from crawler.query.matcher import RuleIndex
from scheduler.config import load

ITEMS = [  # (title, description) of the feed the CLI tests crawl
    ("OTAN renforce sa défense aérienne", "Les alliés de l'OTAN se réunissent à Bruxelles."),
    ("Саміт НАТО у Вашингтоні", "Союзники обговорили протиповітряну оборону."),
    ("North Atlantic Treaty Organization summit ends", "Leaders agreed a new air plan."),
    ("Patriots win the derby", "A late goal settled it for the New England side."),
    ("Harbour festival draws crowds", "Smoked fish and bread all weekend."),
]


def doc(title: str, summary: str = "", text: str = "") -> Document:
    return Document.from_fields(title, summary, text)


# ------------------------------------------------------------------ the language


def test_an_alias_set_means_the_or_of_its_terms_written_out() -> None:
    nato = builtin_sets()["nato"]
    written = " OR ".join(f'"{t}"' for t in nato.terms)
    alias, plain = parse("@nato"), parse(written)
    assert alias.root == plain.root
    documents = [doc(title) for title, _ in ITEMS] + [doc("Natoo is not a word", "ОТАН")]
    found = [alias.matches(d) for d in documents]
    assert found == [plain.matches(d) for d in documents]
    # the matched terms name the term that was found, not the set
    assert found == [["otan"], ["нато"], ["north atlantic treaty organization"], None, None, None]


def test_a_set_works_under_title_not_and_near() -> None:
    sets = expansions(alias_sets({"ad": ["air defence", "Patriot"], "one": ["radar"]}))
    title = parse("title:@ad", sets)
    assert title.matches(doc("New Patriot battery")) == ["title:patriot"]
    assert title.matches(doc("Weather", "air defence")) is None
    negated = parse("nato NOT @ad", sets)
    assert negated.matches(doc("NATO meets")) == ["nato"]
    assert negated.matches(doc("NATO meets", "air defence")) is None
    near = parse("NEAR(@ad @one, 2)", sets)
    assert isinstance(near.root, Or) and len(near.root.children) == 2  # one NEAR per pair
    # in the order of the expansion: NEAR(air defence radar), then NEAR(patriot radar)
    assert near.matches(doc("Patriot radar failed")) == ["radar", "patriot"]
    assert near.matches(doc("Patriot team uses a new radar")) is None
    single = parse("@one", sets)
    assert single.root == Term("word", ("radar",))


def test_a_config_set_replaces_the_built_in_one() -> None:
    sets = alias_sets({"nato": ["NATO", "Alliance"], "mine": ["=Widget"]})
    assert sets["nato"].terms == ("NATO", "Alliance") and not sets["nato"].builtin
    assert sets["patriot"].builtin and sets["mine"].source == "config"
    query = parse("@nato", expansions(sets))
    assert query.matches(doc("OTAN")) is None
    assert query.matches(doc("The alliance meets")) == ["alliance"]


def test_exact_terms_match_that_form_and_are_marked_for_the_normaliser() -> None:
    word, phrase, title = parse("=Patriot"), parse('="air defence"'), parse("title:=nato")
    assert word.root == Term("word", ("patriot",), exact=True)
    assert phrase.root == Term("phrase", ("air", "defence"), exact=True)
    assert title.root == Term("word", ("nato",), field="title", exact=True)
    assert [str(q.root) for q in (word, phrase, title)] == [
        "=patriot",
        '="air defence"',
        "title:=nato",
    ]
    # case and accents are still folded, like every term; other forms do not match
    assert word.matches(doc("PATRIOT battery")) == ["=patriot"]
    assert word.matches(doc("Patriots win")) is None
    assert parse("=Türkiye").matches(doc("turkiye")) == ["=turkiye"]
    assert phrase.matches(doc("", "Air-Defence")) == ['="air defence"']
    # a term of a set may be exact too
    assert alias_term("=Patriot") == Term("word", ("patriot",), exact=True)
    copy = pickle.loads(pickle.dumps(word))
    assert copy == word and copy.matches(doc("patriot")) == ["=patriot"]


@pytest.mark.parametrize(
    ("text", "column", "start"),
    [
        ("nato OR @natoo", 9, "unknown alias set '@natoo'"),
        ("@", 1, "'@' without a set name"),
        ("x =defen*", 3, "'=' with '*'"),
        ('="air def*"', 1, "'=' with '*'"),
        ("=@nato", 1, "'=@'"),
        ("a =", 3, "lone '='"),
        ("NEAR(@nato @patriot x)", 6, "NEAR over alias sets makes"),
    ],
)
def test_mistakes_say_their_column(text: str, column: int, start: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse(text)
    assert caught.value.column == column and caught.value.message.startswith(start)
    assert caught.value.hint


def test_unknown_set_suggests_a_close_name() -> None:
    with pytest.raises(QueryError, match="did you mean @nato"):
        parse("@natoo")


@pytest.mark.parametrize(
    ("term", "problem"),
    [("", "no letters"), ("--", "no letters"), ('"a b"', "contains '\"'"), ("def*", "'*'")],
)
def test_bad_set_terms_are_refused(term: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        alias_term(term)


def test_every_built_in_set_parses_and_the_index_agrees_with_evaluation() -> None:
    from crawler.model import Rule

    sets = builtin_sets()
    assert len(sets) > 100 and all(s.terms and s.source for s in sets.values())
    rules = [Rule(name, f"@{name}", parse(f"@{name}")) for name in sets]
    index = RuleIndex(rules)
    for title, summary in ITEMS:
        document = doc(title, summary)
        expected = [(r.name, r.query.matches(document)) for r in rules]
        expected = [(n, m) for n, m in expected if m is not None]
        got = [(r.name, m) for r, m in index.match(doc(title, summary))]
        assert got == expected
    assert ("nato", ["otan"]) in [(r.name, m) for r, m in index.match(doc(*ITEMS[0]))]


# ------------------------------------------------------------------ the config and its caches


def test_the_config_checks_its_sets_and_the_queries_naming_them(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[aliases]\nmine = ["Widget", "gadget thing"]\nBad = ["x"]\nempty = []\n\n'
        "[topic]\nquery = 'nato OR @nosuch'\n\n"
        "[[rules]]\nname = \"r\"\nquery = '@mine'\n",
    )
    result = newswatch(config, "check")
    assert result.returncode == 2
    written = config.read_text(encoding="utf-8").splitlines()

    def at(start: str) -> int:
        return next(n for n, line in enumerate(written, 1) if line.startswith(start))

    lines = result.stderr.splitlines()
    assert f"{config}:{at('Bad')}: aliases.Bad: invalid alias set name 'Bad'" in lines[0]
    assert f"{config}:{at('empty')}: aliases.empty: must list at least one term" in lines[1]
    assert lines[2].startswith(
        f"{config}:{at('query')}: topic.query: invalid query: "
        "unknown alias set '@nosuch' at column 9"
    )
    assert not any("rules[0]" in line for line in lines)  # @mine is defined


def test_the_rules_cache_misses_when_the_sets_change(tmp_path: Path) -> None:
    def write(terms: str) -> Path:
        return write_config(
            tmp_path,
            f'[aliases]\nmine = [{terms}]\n\n[[rules]]\nname = "r"\nquery = "@mine"\n'
            'notify = ["hook"]\n\n[channels.hook]\ntype = "webhook"\nurl = "https://e.org/h"\n',
        )

    widget, gadget = doc("A widget"), doc("A gadget")
    for terms, hit, miss in [('"Widget"', widget, gadget), ('"Gadget"', gadget, widget)] * 2:
        config = load(write(terms), {}, cached=True)
        assert config.rules_cache is not None
        (rule,) = config.rules
        assert rule.query.matches(hit) is not None and rule.query.matches(miss) is None
        index = config.rules_cache.index(config.rules)
        assert [r.name for r, _ in index.match(hit)] == ["r"] and not index.match(miss)
        config.rules_cache.save()
    again = load(write('"Gadget"'), {}, cached=True)  # this very file again: the whole config
    assert again.rules_cache is not None and again.rules_cache.config_hit
    assert again.aliases == {"mine": ("Gadget",)} and again.alias_sets()["mine"].terms == (
        "Gadget",
    )
    assert again.rules[0].query.matches(gadget) == ["gadget"]


# ------------------------------------------------------------------ the CLI on a real archive


def _feed(items: list[tuple[str, str]]) -> str:
    body = "".join(
        f"<item><title>{t}</title><link>{{{{SITE}}}}/a/{i}.html</link>"
        f"<guid>urn:x:{i}</guid><pubDate>Mon, 09 Jun 2025 10:0{i}:00 +0000</pubDate>"
        f"<description>{d}</description></item>"
        for i, (t, d) in enumerate(items)
    )
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>F</title>'
    return f"{head}{body}</channel></rss>"


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("aliases")
    root = tmp / "site"
    (root / "feeds").mkdir(parents=True)
    (root / "feeds" / "f.xml").write_text(_feed(ITEMS), encoding="utf-8")
    with FixtureSite(root) as site:
        body = (
            '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
            '[aliases]\nsport = ["Patriots", "derby"]\nnato = ["OTAN", "НАТО"]\n\n'
            f'[[sources]]\nname = "f"\nfeed = "{site.url}/feeds/f.xml"\n\n'
            "[[rules]]\nname = \"alliance\"\nquery = '@nato OR title:@sport'\n"
        )
        config = write_config(tmp, body)
        result = newswatch(config, "crawl")
        assert result.returncode == 0, result.stderr
    yield config


def test_search_rules_test_and_the_rule_agree_on_sets(crawled: Path) -> None:
    by_name = json_out(newswatch(crawled, "rules", "test", "alliance", "--json"))
    searched = json_out(newswatch(crawled, "search", "@nato OR title:@sport", "--json"))
    as_query = json_out(newswatch(crawled, "rules", "test", "@nato OR title:@sport", "--json"))
    assert by_name == searched == as_query
    found = {a["title"]: a["matched"] for a in searched}
    assert found == {
        ITEMS[0][0]: ["otan"],
        ITEMS[1][0]: ["нато"],
        ITEMS[3][0]: ["title:patriots", "title:derby"],
    }
    # the config's @nato replaced the built-in one: its English name is not in it
    exact = json_out(
        newswatch(crawled, "search", '="north atlantic treaty organization"', "--json")
    )
    assert [a["title"] for a in exact] == [ITEMS[2][0]]


def test_search_with_an_unknown_set_is_a_usage_error_with_its_column(crawled: Path) -> None:
    result = newswatch(crawled, "search", "summit AND @sprot")
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown alias set '@sprot' at column 12" in result.stderr
    assert "did you mean @sport" in result.stderr


def test_rules_aliases_lists_the_sets(crawled: Path) -> None:
    listed = json_out(newswatch(crawled, "rules", "aliases", "--json"))
    by_name = {s["name"]: s for s in listed}
    assert by_name["nato"] == {
        "name": "nato",
        "builtin": False,
        "source": "config",
        "note": None,
        "terms": ["OTAN", "НАТО"],
    }
    assert by_name["patriot"]["builtin"] and "MIM-104" in by_name["patriot"]["terms"]
    assert [s["name"] for s in listed] == sorted(by_name)
    one = json_out(newswatch(crawled, "rules", "aliases", "@patriot", "--json"))
    assert one == by_name["patriot"]
    text = newswatch(crawled, "rules", "aliases", "sport")
    assert text.returncode == 0
    assert text.stdout.splitlines()[:2] == ["@sport (from the config, 2 terms)", "source: config"]
    table = newswatch(crawled, "rules", "aliases").stdout.splitlines()
    assert table[0].split() == ["SET", "FROM", "TERMS", "FIRST", "TERMS"]
    assert len(table) == len(listed) + 1
    unknown = newswatch(crawled, "rules", "aliases", "sprot")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "no alias set named 'sprot'; did you mean sport?" in unknown.stderr


# ------------------------------------------------------------------ both engines

ENGINE_QUERIES = [
    "@ad",  # Latin only: the prefilter narrows
    "@nato OR @ad",  # Cyrillic in the config's @nato: no prefilter, every article read
    "title:@ad NOT derby",
    "=summit OR =otan",
    'NEAR(@ad ="new air plan", 6)',
]


def test_sets_search_alike_on_both_engines_and_the_prefilter_is_a_superset(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from crawler.archive import open_archive

    root = tmp_path / "site"
    (root / "feeds").mkdir(parents=True)
    (root / "feeds" / "f.xml").write_text(_feed(ITEMS), encoding="utf-8")
    if engine == "postgres":
        url = request.getfixturevalue("postgres_url")
        archive_table, where = f'[archive]\nurl = "{url}"\n\n', {"url": url}
    else:
        archive_table, where = '[archive]\npath = "nw.db"\n\n', {"path": tmp_path / "nw.db"}
    with FixtureSite(root) as site:
        body = (
            archive_table + '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
            '[aliases]\nad = ["défense aérienne", "air plan", "=summit"]\n'
            'nato = ["OTAN", "НАТО"]\n\n'
            f'[[sources]]\nname = "f"\nfeed = "{site.url}/feeds/f.xml"\n'
        )
        config = write_config(tmp_path, body)
        result = newswatch(config, "crawl")
        assert result.returncode == 0, result.stderr
    loaded = load(config, {})
    queries = [parse(text, loaded.alias_terms()) for text in ENGINE_QUERIES]
    assert queries[0].to_fts() is not None and queries[1].to_fts() is None
    found = {}
    for text in ENGINE_QUERIES:
        listed = json_out(newswatch(config, "search", text, "--json"))
        found[text] = sorted(a["title"] for a in listed)
    assert found == {
        "@ad": sorted([ITEMS[0][0], ITEMS[2][0]]),
        "@nato OR @ad": sorted([ITEMS[0][0], ITEMS[1][0], ITEMS[2][0]]),
        "title:@ad NOT derby": sorted([ITEMS[0][0], ITEMS[2][0]]),
        "=summit OR =otan": sorted([ITEMS[0][0], ITEMS[2][0]]),
        'NEAR(@ad ="new air plan", 6)': [ITEMS[2][0]],
    }
    archive = open_archive(**where)  # type: ignore[arg-type]
    try:
        everything = list(archive.search_candidates(None))
        for query in queries:
            candidates = {a.url for a in archive.search_candidates(query.to_fts())}
            matching = {
                a.url
                for a in everything
                if query.matches(Document.from_fields(a.title, a.summary, a.text)) is not None
            }
            assert matching <= candidates, query.text
            assert matching, query.text
    finally:
        archive.close()
    assert len(everything) == len(ITEMS)


# ------------------------------------------------------------------ the web view


def test_the_web_view_reads_the_configs_sets(tmp_path: Path) -> None:
    from typing import Any

    from aiohttp.test_utils import TestClient
    from webkit import API_TOKEN, CONFIG, kit, newsroom, with_client

    k = kit(tmp_path, CONFIG + '\n[aliases]\nmine = ["Patriot", "=Baltic"]\n')
    newsroom(k)
    config = k.config.path
    k.archive.close()
    expected = json_out(newswatch(config, "search", "@mine", "--json"))
    assert expected == json_out(newswatch(config, "search", "patriot OR =baltic", "--json"))
    assert expected
    k = kit(tmp_path, CONFIG + '\n[aliases]\nmine = ["Patriot", "=Baltic"]\n')
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}

    async def body(client: TestClient[Any, Any]) -> None:
        answer = await client.get("/api/v1/articles", params={"q": "@mine"}, headers=bearer)
        assert answer.status == 200 and await answer.json() == expected
        bad = await client.get("/api/v1/articles", params={"q": "x @mien"}, headers=bearer)
        assert bad.status == 400
        assert "unknown alias set '@mien' at column 3" in (await bad.json())["error"]
        page = await (await client.get("/search", params={"q": "@mine"})).text()
        assert "<mark>Patriot</mark>" in page or "<mark>patriot</mark>" in page

    with_client(k.site(), body)


def test_the_caches_code_key_covers_the_built_in_sets(tmp_path: Path) -> None:
    """Editing crawler/query/aliases.toml changes the key every rules cache is read with, so a
    cache of queries expanded from the old sets is not used (checked on a copy of the code)."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("crawler", "scheduler"):
        shutil.copytree(repo / package, tmp_path / package, ignore=ignore)
    script = "from scheduler.config.rulecache import _code_key; print(_code_key())"

    def key() -> str:
        run = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    before = key()
    assert key() == before
    builtin = tmp_path / "crawler" / "query" / "aliases.toml"
    builtin.write_text(
        builtin.read_text(encoding="utf-8") + '\n[extra]\nsource = "t"\nterms = ["x"]\n'
    )
    assert key() != before
