"""The labelled set of bench/language.py (bench/data/language/, docs/languages.md) is well formed:
every rule it names exists, an item's lists do not overlap, the alias sets it uses exist, and it
keeps the size, languages and decoys the benchmark is described with."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bench" / "data" / "language"
ITEMS = [
    json.loads(line)
    for line in (DATA / "items.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
]
RULES = tomllib.loads((DATA / "rules.toml").read_text(encoding="utf-8"))["rules"]
ALIASES = tomllib.loads((ROOT / "crawler" / "query" / "aliases.toml").read_text(encoding="utf-8"))


def test_items_name_known_rules_and_their_lists_do_not_overlap() -> None:
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids))
    for item in ITEMS:
        assert set(item) <= {"id", "lang", "part", "title", "text", "match", "no_match", "ignore"}
        assert item["title"].strip() and item["text"].strip(), item["id"]
        lists = [set(item["match"]), set(item["no_match"]), set(item.get("ignore", ()))]
        for names in lists:
            assert names <= RULES.keys(), (item["id"], names - RULES.keys())
        assert not (lists[0] & lists[1] or lists[0] & lists[2] or lists[1] & lists[2]), item["id"]
        assert item.get("part", "tuned") in {"tuned", "held-out"}


def test_rules_are_one_alias_set_or_one_term() -> None:
    for name, rule in RULES.items():
        assert ("set" in rule) != ("term" in rule), name
        if "set" in rule:
            assert rule["set"] in ALIASES, name


def test_the_set_has_the_size_languages_and_decoys_it_is_described_with() -> None:
    langs = Counter(item["lang"] for item in ITEMS)
    assert len(ITEMS) >= 300 and len(langs) >= 8
    assert set(langs) >= {"en", "fr", "de", "es", "it", "nl", "pl", "ro", "cs", "uk", "ru", "tr"}
    assert sum(item.get("part") == "held-out" for item in ITEMS) == 48
    text = {item["id"]: f"{item['title']} {item['text']}" for item in ITEMS}
    decoys = {(item["id"], name) for item in ITEMS for name in item["no_match"]}
    matches = {(item["id"], name) for item in ITEMS for name in item["match"]}
    assert any(name == "nato" and "Otani" in text[i] for i, name in decoys)
    assert any(name == "patriot" and "New England" in text[i] for i, name in decoys)
    assert any(name == "nato" and "NATO-style" in text[i] for i, name in matches)
    for rule in ("nato", "air_defence", "patriot", "missile", "raketa_cyr", "obrona_powietrzna"):
        assert any(name == rule for _, name in matches), rule
