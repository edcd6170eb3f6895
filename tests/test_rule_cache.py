"""The rules cache beside the archive (scheduler.rulecache): what it serves is what a fresh
parse gives, any change of a rule misses it, a damaged or foreign file is ignored and written
again, and an invalid query is never hidden by it."""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
from pathlib import Path

import pytest
from nw import command as nw_command
from nw import newswatch, write_config
from servers import FixtureSite

from crawler.matcher import RuleIndex
from crawler.query import Document
from scheduler.config import ConfigError, load
from scheduler.rulecache import RuleCache, cache_path

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


# ---------------------------------------------------------------------------- the whole config

TOPIC = "\n[topic]\nquery = 'NATO OR Patriot OR frigate*'\n"
FULL = (
    config_text("http://127.0.0.1:1/f.xml", RULES.replace('"hook"]', '"hook"]\ndigest = "off"', 1))
    + TOPIC
    + '\n[channels.mail]\ntype = "email"\nhost = "mail.example.org"\nfrom = "a@example.org"'
    + '\nto = ["b@example.org"]\npassword = "${NW_TEST_SMTP:-}"\nusername = "${NW_TEST_SMTP:-}"\n'
    + '\n[channels.chat]\ntype = "apprise"\nurl = "ntfys://ntfy.example.net/${NW_TEST_TOPIC}"\n'
)
ENV = {"NW_TEST_TOPIC": "alerts"}


def cached_load(path: Path, environ: dict[str, str] = ENV) -> tuple[bool, object]:
    """(whether the config came from the cache, the config), the cache written afterwards."""
    config = load(path, environ, cached=True)
    assert config.rules_cache is not None
    hit = config.rules_cache.config_hit
    config.rules_cache.index(config.rules)
    config.rules_cache.save()
    return hit, config


def test_an_unchanged_config_file_is_not_read_again(tmp_path: Path) -> None:
    path = write_config(tmp_path, FULL)
    assert cached_load(path) == (False, load(path, ENV))
    hit, config = cached_load(path)
    assert hit and config == load(path, ENV)  # every value, as a fresh load gives it
    assert isinstance(config, type(load(path, ENV)))
    assert config.channels["chat"].options["url"] == "ntfys://ntfy.example.net/alerts"
    assert config.topic is not None and config.topic.matches(DOC) == ["nato", "patriot", "frigate*"]
    assert config.rules_cache is not None
    index = config.rules_cache.index(config.rules)
    assert answers(index) == answers(RuleIndex([r for r in load(path, ENV).rules if r.notify]))


CHANGES = {
    "a query": ("(NATO OR OTAN)", "(NATO OR OTAN OR Alliance)"),
    "a rule's name": ('name = "navy"', 'name = "navy2"'),
    "a rule's channels": ('"hook"]\ndigest', '"hook", "mail"]\ndigest'),
    "a rule's sources": ('digest = "off"', 'digest = "off"\nsources = ["a"]'),
    "a rule's digest": ('digest = "off"', 'digest = "daily"'),
    "a rule's cap": ('digest = "off"', 'digest = "off"\nmax_per_hour = 5'),
    "the topic": ("frigate*", "frigates"),
    "a comment": ("[topic]", "# the topic\n[topic]"),
    "the archive": ('path = "nw.db"', 'path = "other.db"'),
    "a channel": ("mail.example.org", "smtp.example.org"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_any_change_of_the_file_misses(tmp_path: Path, change: str) -> None:
    path = write_config(tmp_path, FULL)
    cached_load(path)
    assert cached_load(path)[0]
    old, new = CHANGES[change]
    assert old in FULL
    path.write_text(FULL.replace(old, new, 1), encoding="utf-8")
    fresh = load(path, ENV)
    (tmp_path / "orig").mkdir()
    assert fresh != load(write_config(tmp_path / "orig", FULL), ENV) or change == "a comment"
    assert cached_load(path) == (False, fresh)
    assert cached_load(path) == (True, fresh)  # and the new one is kept


def test_the_environment_it_looked_up_must_be_the_same(tmp_path: Path) -> None:
    path = write_config(tmp_path, FULL)
    cached_load(path)
    assert cached_load(path, {**ENV, "UNRELATED": "x"})[0]  # a variable it never looked up
    changed = {"NW_TEST_TOPIC": "other"}
    hit, config = cached_load(path, changed)
    assert not hit and config == load(path, changed)
    assert load(path, changed).channels["chat"].options["url"].endswith("/other")
    assert not cached_load(path, {**changed, "NW_TEST_SMTP": "secret"})[0]  # was unset
    # unset: the problem is reported, not hidden by the cache
    with pytest.raises(ConfigError, match="NW_TEST_TOPIC is not set"):
        load(path, {}, cached=True)


def test_the_same_file_elsewhere_misses(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    path = write_config(tmp_path / "a", FULL.replace('path = "nw.db"', 'path = "../nw.db"'))
    cached_load(path)
    assert cached_load(path)[0]
    moved = write_config(tmp_path / "b", path.read_text())  # the same archive, another file
    hit, config = cached_load(moved)
    assert not hit and config == load(moved, ENV)


def test_a_damaged_cache_never_serves_a_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, FULL)
    cached_load(path)
    file = cache_path(tmp_path / "nw.db")
    good = file.read_bytes()
    for damaged in (good[: len(good) // 2], good[:-1], good[:32] + b"x" + good[33:], b""):
        file.write_bytes(damaged)
        assert cached_load(path) == (False, load(path, ENV))  # ignored, and written again
        assert cached_load(path) == (True, load(path, ENV))


def test_an_archive_written_otherwise_is_found_by_the_full_read(tmp_path: Path) -> None:
    # archive.path as a dotted key: the cache cannot be found without reading the whole
    # file, so the config is read every time, the queries and index still come from the cache
    text = FULL.replace('[archive]\npath = "nw.db"\n', 'archive.path = "nw.db"\n')
    path = tmp_path / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    assert cached_load(path) == (False, load(path, ENV))
    hit, config = cached_load(path)
    assert not hit and config == load(path, ENV)
    assert cache_path(tmp_path / "nw.db").is_file()
    assert RuleCache.load(cache_path(tmp_path / "nw.db")).queries.keys() == {
        r.query_text for r in load(path, ENV).rules
    } | {"NATO OR Patriot OR frigate*"}


def test_an_unset_variable_is_reported_by_the_cli_with_the_cache_present(
    tmp_path: Path, site: FixtureSite
) -> None:
    site.set(
        "/f.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title></channel></rss>',
    )
    path = write_config(tmp_path, FULL.replace("http://127.0.0.1:1/f.xml", f"{site.url}/f.xml"))
    for _ in range(2):  # written, then read
        assert newswatch(path, "crawl", env=ENV).returncode == 0
    assert cache_path(tmp_path / "nw.db").is_file()
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if "NW_TEST_T" in t)
    for command in ("check", "crawl"):
        result = newswatch(path, command, env={"NW_TEST_TOPIC": ""})
        assert result.returncode == 0, result.stderr  # set but empty: a valid config
        result = subprocess_without(path, command, "NW_TEST_TOPIC")
        assert result.returncode == 2, (command, result.stderr)
        assert f"newswatch.toml:{line}: channels.chat.url: environment variable" in result.stderr


def subprocess_without(path: Path, command: str, name: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != name and not k.startswith("NEWSWATCH_")}
    return subprocess.run(
        [*nw_command(), "-c", str(path), command],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
