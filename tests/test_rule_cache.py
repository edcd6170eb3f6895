"""The rules cache beside the archive (scheduler.config.rulecache): what it serves is what a fresh
parse gives, any change of a rule misses it, a damaged or foreign file is ignored and written
again, and an invalid query is never hidden by it."""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

from nw import newswatch, write_config
from servers import FixtureSite

from crawler.query import Document
from crawler.query.matcher import RuleIndex
from scheduler.config import load
from scheduler.config.rulecache import RuleCache, cache_path

RULES = """
[[rules]]
name = "air"
query = '(NATO OR OTAN) AND ("air defence" OR Patriot)'
notify = ["hook"]

[[rules]]
name = "navy"
query = 'title:frigate* OR NEAR(baltic navy, 5)'
notify = ["hook"]
"""


def config_text(feed: str, rules: str = RULES) -> str:
    return (
        '[archive]\npath = "nw.db"\n\n[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "a"\nfeed = "{feed}"\n'
        + rules
        + '\n[channels.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
    )


DOC = Document.from_fields("Frigates sail", None, "NATO moves Patriot batteries; the Baltic navy")


def answers(index: RuleIndex) -> list[tuple[str, list[str]]]:
    return sorted((rule.name, terms) for rule, terms in index.match(DOC, "a"))


def test_a_hit_gives_what_a_fresh_parse_gives_and_any_change_misses(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_text("http://127.0.0.1:1/f.xml"))
    first = load(path, cached=True)
    assert first.rules_cache is not None
    built = first.rules_cache.index(first.rules)
    first.rules_cache.save()
    assert cache_path(first.archive_path).is_file()
    assert oct(cache_path(first.archive_path).stat().st_mode & 0o777) == "0o600"

    again = load(path, cached=True)
    assert again.rules_cache is not None
    assert set(again.rules_cache.queries) == {r.query_text for r in again.rules}
    assert again.rules == load(path).rules  # the same rules as a fresh parse
    served = again.rules_cache.index(again.rules)
    fresh = RuleIndex([r for r in load(path).rules if r.notify])
    assert (
        answers(served)
        == answers(fresh)
        == answers(built)
        == [
            ("air", ["nato", "patriot"]),
            ("navy", ["title:frigate*", "baltic", "navy"]),
        ]
    )
    assert again.rules_cache.index(again.rules) is served  # from the file: not built again

    # any change of a rule misses: here only the channels it notifies
    changed = write_config(
        tmp_path, config_text("http://127.0.0.1:1/f.xml", RULES.replace('"hook"]', '"hook2"]', 1))
    )
    changed.write_text(
        changed.read_text() + '[channels.hook2]\ntype = "webhook"\nurl = "http://127.0.0.1:9/b"\n'
    )
    other = load(changed, cached=True)
    assert other.rules_cache is not None
    rebuilt = other.rules_cache.index(other.rules)
    assert rebuilt is not served
    assert [r.notify for r in rebuilt.rules] == [("hook2",), ("hook",)]


def test_a_damaged_or_foreign_cache_is_ignored_and_written_again(tmp_path: Path) -> None:
    path = write_config(tmp_path, config_text("http://127.0.0.1:1/f.xml"))
    file = cache_path(load(path).archive_path)
    for damaged in (b"", b"not a pickle", b"\x80\x05\x95"):  # empty, garbage, truncated
        file.write_bytes(damaged)
        assert RuleCache.load(file).queries == {}
        config = load(path, cached=True)  # loads all the same
        assert config.rules_cache is not None
        config.rules_cache.index(config.rules)
        config.rules_cache.save()
        assert RuleCache.load(file).queries.keys() == {r.query_text for r in config.rules}

    # a file whose bytes changed: one letter of a cached query (its checksum no longer fits)
    good = file.read_bytes()
    assert b"nato" in good
    file.write_bytes(good.replace(b"nato", b"nbto", 1))
    assert RuleCache.load(file).queries == {}

    # pickles that would run code, even with a right checksum: a foreign callable, and a
    # dotted name reaching builtins through an admitted module
    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    def text(value: str) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value.encode()

    dotted = (
        b"\x80\x04" + text("crawler.query") + text("__builtins__.get") + b"\x93"
        + text("__import__") + b"\x85R."
    )  # fmt: skip
    for payload in (pickle.dumps({"code": "x", "queries": Evil()}), dotted):
        file.write_bytes(hashlib.sha256(payload).digest() + payload)
        assert RuleCache.load(file).queries == {}
    assert not (tmp_path / "pwned").exists()


def test_an_invalid_query_is_reported_with_the_cache_present(
    tmp_path: Path, site: FixtureSite
) -> None:
    site.set(
        "/f.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title></channel></rss>',
    )
    path = write_config(tmp_path, config_text(f"{site.url}/f.xml"))
    assert newswatch(path, "crawl").returncode == 0
    assert cache_path(tmp_path / "nw.db").is_file()
    broken = RULES.replace("NEAR(baltic navy, 5)", "NEAR(baltic navy, 5")
    path.write_text(config_text(f"{site.url}/f.xml", broken))
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if "NEAR(" in text)
    for command in ("check", "crawl"):
        result = newswatch(path, command)
        assert result.returncode == 2, (command, result.stderr)
        assert f"newswatch.toml:{line}: rules[1].query: invalid query" in result.stderr
