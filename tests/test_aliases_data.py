"""The built-in alias file crawler/query/aliases.toml (docs/languages.md): well-formed data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from crawler.query import tokenize

ALIASES = Path(__file__).resolve().parent.parent / "crawler" / "query" / "aliases.toml"
SETS = tomllib.loads(ALIASES.read_text(encoding="utf-8"))

MEMBERS = [
    "albania",
    "belgium",
    "bulgaria",
    "canada",
    "croatia",
    "czechia",
    "denmark",
    "estonia",
    "finland",
    "france",
    "germany",
    "greece",
    "hungary",
    "iceland",
    "italy",
    "latvia",
    "lithuania",
    "luxembourg",
    "montenegro",
    "netherlands",
    "north_macedonia",
    "norway",
    "poland",
    "portugal",
    "romania",
    "slovakia",
    "slovenia",
    "spain",
    "sweden",
    "turkey",
    "uk",
    "usa",
]


def test_every_set_has_an_identifier_name_a_source_and_terms() -> None:
    for name, table in SETS.items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), f"{name!r} is not usable as @name"
        assert set(table) <= {"source", "terms", "note"}, f"{name}: unknown keys {set(table)}"
        assert table["source"].strip(), f"{name} has no source"
        assert table["terms"], f"{name} has no terms"


@pytest.mark.parametrize("name", sorted(SETS))
def test_terms_are_distinct_and_tokenize(name: str) -> None:
    forms = [tuple(tokenize(term)) for term in SETS[name]["terms"]]
    assert all(forms), f"{name}: a term with no letters or digits"
    assert len(forms) == len(set(forms)), f"{name}: two terms tokenize alike"


def test_the_required_entities_are_covered() -> None:
    assert len(MEMBERS) == 32
    for country in (*MEMBERS, "ukraine", "russia"):
        assert f"{country}_mod" in SETS and f"{country}_forces" in SETS, country
    for name in ("nato", "nac", "shape", "aco", "act", "jfc_brunssum", "jfc_naples", "jfc_norfolk"):
        assert name in SETS
    for name in ("nspa", "patriot", "iris_t", "nasams", "samp_t", "s400", "iron_dome", "arrow_3"):
        assert name in SETS
    for name in ("thaad", "aegis_ashore", "f35", "himars", "leopard2", "abrams", "air_defence"):
        assert name in SETS


def test_nato_is_spelled_in_latin_cyrillic_and_greek_script() -> None:
    words = {tuple(tokenize(term)) for term in SETS["nato"]["terms"]}
    assert {("nato",), ("otan",), ("навo".replace("o", "о").replace("в", "т"),), ("νατο",)} <= words
    assert ("navo",) in words


def test_ambiguous_bare_names_are_left_out() -> None:
    # A bare "Patriot" would match "the New England Patriots" once inflection is folded.
    for name, word in (("patriot", "patriot"), ("shape", "shape"), ("abrams", "abrams")):
        assert (word,) not in {tuple(tokenize(t)) for t in SETS[name]["terms"]}
