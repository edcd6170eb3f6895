"""The whole config in the rules cache (scheduler.config.kept): an unchanged file under the same
variables is served from the cache and equals a fresh load; any change of the file or of a
variable it names misses; a damaged cache never serves a config; no secret is ever written to
the cache, and secrets are read from the file and the environment again on every use, so an
unset variable is still reported by `check` and `crawl`."""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
from pathlib import Path

import pytest
from nw import command as nw_command
from nw import newswatch, write_config
from servers import FixtureSite

from crawler.query import Document
from crawler.query.matcher import RuleIndex
from scheduler.config import Config, ConfigError, load
from scheduler.config.rulecache import RuleCache, cache_path

SMTP_PASSWORD = "literal-smtp-pass-1234"
TOPIC_TOKEN = "alerts-topic-token-9876"
SIGNING_KEY = "signing-key-from-env-abcdef"
HOOK_TOKEN = "hook-query-token-5555"
WEB_PASSWORD = "web-password-from-env-7777"
WEB_SECRET = "web-signing-secret-literal-0123456789"
API_TOKEN = "api-token-literal-abcdefghijklmnop"
ENV = {
    "NW_TEST_TOPIC": TOPIC_TOKEN,
    "NW_TEST_SIGNING": SIGNING_KEY,
    "NW_TEST_AGENT": "nw-test",
    "NW_TEST_WEB": WEB_PASSWORD,
}

FULL = f"""
[archive]
path = "nw.db"

[crawl]
delay = "0s"
fetch_articles = false
user_agent = "${{NW_TEST_AGENT}}/1.0"

[web]
password = "${{NW_TEST_WEB:-}}"
secret = "{WEB_SECRET}"
api_tokens = ["{API_TOKEN}", "${{NW_TEST_API:-}}"]

[topic]
query = 'NATO OR Patriot OR frigate*'

[[sources]]
name = "a"
feed = "FEED"

[[rules]]
name = "air"
query = '(NATO OR OTAN) AND ("air defence" OR Patriot)'
notify = ["hook", "mail"]
digest = "off"

[[rules]]
name = "navy"
query = 'title:frigate* OR NEAR(baltic navy, 5)'
notify = ["chat"]

[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook?token={HOOK_TOKEN}"
secret = "${{NW_TEST_SIGNING:-}}"

[channels.mail]
type = "email"
host = "mail.example.org"
from = "a@example.org"
to = ["b@example.org"]
username = "newswatch"
password = "{SMTP_PASSWORD}"

[channels.chat]
type = "apprise"
url = "ntfys://ntfy.example.net/${{NW_TEST_TOPIC}}"
"""
SECRETS = (SMTP_PASSWORD, TOPIC_TOKEN, SIGNING_KEY, HOOK_TOKEN, WEB_PASSWORD, WEB_SECRET, API_TOKEN)

DOC = Document.from_fields("Frigates sail", None, "NATO moves Patriot batteries; the Baltic navy")


def full(feed: str = "http://127.0.0.1:1/f.xml") -> str:
    return FULL.replace("FEED", feed)


def cached_load(path: Path, environ: dict[str, str] = ENV) -> tuple[bool, Config]:
    """(whether the config came from the cache, the config), the cache written afterwards as
    a crawl writes it."""
    config = load(path, environ, cached=True)
    assert config.rules_cache is not None
    hit = config.rules_cache.config_hit
    config.rules_cache.index(config.rules)
    config.rules_cache.save()
    return hit, config


def answers(index: RuleIndex) -> list[tuple[str, list[str]]]:
    return [(rule.name, terms) for rule, terms in index.match(DOC, "a")]


def test_an_unchanged_file_is_served_from_the_cache_as_a_fresh_load(tmp_path: Path) -> None:
    path = write_config(tmp_path, full())
    assert cached_load(path) == (False, load(path, ENV))
    hit, config = cached_load(path)
    assert hit and config == load(path, ENV)  # every value, the secrets too
    assert config.channels["chat"].options["url"] == f"ntfys://ntfy.example.net/{TOPIC_TOKEN}"
    assert config.channels["hook"].options["secret"] == SIGNING_KEY
    assert config.channels["mail"].options["password"] == SMTP_PASSWORD
    assert config.crawl.user_agent == "nw-test/1.0"
    assert config.web is not None and config.web.password == WEB_PASSWORD
    assert config.web.secret == WEB_SECRET and config.web.api_tokens == (API_TOKEN,)
    assert config.topic is not None and config.topic.matches(DOC) == ["nato", "patriot", "frigate*"]
    assert config.rules_cache is not None
    index = config.rules_cache.index(config.rules)
    fresh = RuleIndex([r for r in load(path, ENV).rules if r.notify])
    assert (
        answers(index)
        == answers(fresh)
        == [
            ("air", ["nato", "patriot"]),
            ("navy", ["title:frigate*", "baltic", "navy"]),
        ]
    )


def test_no_secret_is_written_to_the_cache(tmp_path: Path) -> None:
    path = write_config(tmp_path, full())
    cached_load(path)
    assert cached_load(path)[0]
    written = cache_path(tmp_path / "nw.db").read_bytes()
    assert b"mail.example.org" in written  # the config is there...
    for secret in SECRETS:  # ...but none of its secrets, written in the file or from the env
        assert secret.encode() not in written, secret


def test_secrets_are_read_again_from_the_file_and_the_environment(tmp_path: Path) -> None:
    path = write_config(tmp_path, full())
    cached_load(path)
    changed = {**ENV, "NW_TEST_SIGNING": "another-signing-key", "NW_TEST_TOPIC": "other"}
    hit, config = cached_load(path, changed)
    assert hit and config == load(path, changed)  # the new values, though not digested
    assert config.channels["hook"].options["secret"] == "another-signing-key"
    assert config.channels["chat"].options["url"].endswith("/other")
    # blank now: the signing key is unset, the web view off, as a fresh load has them
    blank = {**ENV, "NW_TEST_SIGNING": "", "NW_TEST_WEB": ""}
    hit, config = cached_load(path, blank)
    assert hit and config == load(path, blank)
    assert config.channels["hook"].options["secret"] is None and config.web is None
    # a second API token from the environment: checked as the loader checks it
    hit, config = cached_load(path, {**ENV, "NW_TEST_API": "another-api-token-0123456789"})
    assert hit and config.web is not None and len(config.web.api_tokens) == 2
    with pytest.raises(ConfigError, match=r"web\.api_tokens: must be at least 16 characters"):
        load(path, {**ENV, "NW_TEST_API": "short"}, cached=True)
    # unset now: the problem is reported, not hidden by the cache
    unset = {k: v for k, v in ENV.items() if k != "NW_TEST_TOPIC"}
    with pytest.raises(ConfigError, match="NW_TEST_TOPIC is not set"):
        load(path, unset, cached=True)
    # invalid now: reported as a fresh load reports it
    path.write_text(full().replace("ntfys://ntfy.example.net/", ""), encoding="utf-8")
    whole = {**ENV, "NW_TEST_TOPIC": "ntfys://ntfy.example.net/alerts"}
    cached_load(path, whole)
    assert cached_load(path, whole)[0]
    with pytest.raises(ConfigError, match=r"channels\.chat\.url: must not be empty"):
        load(path, {**ENV, "NW_TEST_TOPIC": "  "}, cached=True)


CHANGES = {
    "a query": ("(NATO OR OTAN)", "(NATO OR OTAN OR Alliance)"),
    "a rule's name": ('name = "navy"', 'name = "navy2"'),
    "a rule's channels": ('notify = ["chat"]', 'notify = ["chat", "mail"]'),
    "a rule's sources": ('digest = "off"', 'digest = "off"\nsources = ["a"]'),
    "a rule's digest": ('digest = "off"', 'digest = "daily"'),
    "a rule's cap": ('digest = "off"', 'digest = "off"\nmax_per_hour = 5'),
    "the topic": ("frigate*'", "frigates'"),
    "a comment": ("[topic]", "# the topic\n[topic]"),
    "the archive": ('path = "nw.db"', 'path = "other.db"'),
    "a channel": ("mail.example.org", "smtp.example.org"),
    "a secret": (SMTP_PASSWORD, "another-password"),
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_any_change_of_the_file_misses(tmp_path: Path, change: str) -> None:
    path = write_config(tmp_path, full())
    cached_load(path)
    assert cached_load(path)[0]
    old, new = CHANGES[change]
    assert old in full()
    path.write_text(full().replace(old, new, 1), encoding="utf-8")
    fresh = load(path, ENV)
    assert cached_load(path) == (False, fresh)
    assert cached_load(path) == (True, fresh)  # and the new one is kept


def test_a_change_of_a_variable_it_names_misses(tmp_path: Path) -> None:
    path = write_config(tmp_path, full())
    cached_load(path)
    assert cached_load(path, {**ENV, "UNRELATED": "x"})[0]  # a variable it never names
    changed = {**ENV, "NW_TEST_AGENT": "other-agent"}
    hit, config = cached_load(path, changed)
    assert not hit and config == load(path, changed)
    assert config.crawl.user_agent == "other-agent/1.0"
    assert cached_load(path, changed)[0]
    # a variable that was unset, now set: ${NW_TEST_MISSING:-x} reads it
    path.write_text(full().replace('"nw.db"', '"${NW_TEST_MISSING:-nw}.db"'), encoding="utf-8")
    cached_load(path)
    assert cached_load(path)[0]
    hit, config = cached_load(path, {**ENV, "NW_TEST_MISSING": "elsewhere"})
    assert not hit and config.archive_path == tmp_path / "elsewhere.db"


def test_a_variable_of_a_secret_and_of_another_value_is_not_kept(tmp_path: Path) -> None:
    text = full().replace("mail.example.org", "${NW_TEST_TOPIC}.example.org")
    path = write_config(tmp_path, text)
    for _ in range(2):  # never from the cache, but loads as a fresh load does
        hit, config = cached_load(path)
        assert not hit and config == load(path, ENV)
    assert TOPIC_TOKEN.encode() not in cache_path(tmp_path / "nw.db").read_bytes()
    # the queries are still cached
    assert RuleCache.load(cache_path(tmp_path / "nw.db")).queries.keys() == {
        r.query_text for r in config.rules
    } | {"NATO OR Patriot OR frigate*"}


def test_the_same_file_elsewhere_misses(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    path = write_config(tmp_path / "a", full().replace('path = "nw.db"', 'path = "../nw.db"'))
    cached_load(path)
    assert cached_load(path)[0]
    moved = write_config(tmp_path / "b", path.read_text())  # the same archive, another file
    hit, config = cached_load(moved)
    assert not hit and config == load(moved, ENV)


def test_a_damaged_cache_never_serves_a_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, full())
    cached_load(path)
    file = cache_path(tmp_path / "nw.db")
    good = file.read_bytes()
    for damaged in (good[: len(good) // 2], good[:-1], good[:40] + b"x" + good[41:], b""):
        file.write_bytes(damaged)
        assert cached_load(path) == (False, load(path, ENV))  # ignored, and written again
        assert cached_load(path) == (True, load(path, ENV))


def test_an_archive_written_otherwise_is_found_by_the_full_read(tmp_path: Path) -> None:
    # archive.path as a dotted key: the cache cannot be found without reading the whole
    # file, so the config is read every time; the queries and the index still come from it
    text = full().replace('[archive]\npath = "nw.db"\n', 'archive.path = "nw.db"\n')
    path = tmp_path / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    assert cached_load(path) == (False, load(path, ENV))
    hit, config = cached_load(path)
    assert not hit and config == load(path, ENV)
    assert RuleCache.load(cache_path(tmp_path / "nw.db")).queries.keys() == {
        r.query_text for r in config.rules
    } | {"NATO OR Patriot OR frigate*"}


def test_cached_and_fresh_answers_are_equal_on_random_queries(tmp_path: Path) -> None:
    rng = random.Random(11)
    words = ["nato", "air", "defence", "patriot", "summit", "baltic", "navy", "frigate", "def"]

    def term() -> str:
        kind = rng.random()
        if kind < 0.5:
            return rng.choice(words)
        if kind < 0.75:
            return '"' + " ".join(rng.choices(words, k=rng.randint(2, 3))) + '"'
        return rng.choice(words)[: rng.randint(2, 4)] + "*"

    def query(depth: int = 0) -> str:
        shape = rng.random() if depth < 2 else 0.0
        if shape < 0.4:
            return ("title:" if rng.random() < 0.2 else "") + term()
        if shape < 0.55:
            return f"NEAR({term()} {term()}, {rng.randint(1, 8)})"
        if shape < 0.65:
            return f"NOT {query(depth + 1)}"
        joiner = " OR " if shape < 0.85 else " AND "
        return "(" + joiner.join(query(depth + 1) for _ in range(rng.randint(2, 3))) + ")"

    rules = "".join(
        f"\n[[rules]]\nname = \"r{i}\"\nquery = '''{query()}'''\nnotify = [\"hook\"]\n"
        for i in range(300)
    )
    path = write_config(tmp_path, full() + rules)
    cached_load(path)
    hit, cached = cached_load(path)
    assert hit
    fresh = load(path, ENV)
    docs = [
        Document.from_fields(
            *(" ".join(rng.choices(words, k=rng.randint(0, n))) for n in (4, 8, 30))
        )
        for _ in range(80)
    ]
    assert cached.rules_cache is not None
    index = cached.rules_cache.index(cached.rules)
    matched = 0
    for doc in docs:
        naive = [(r.name, r.query.matches(doc)) for r in fresh.rules if r.notify]
        expected = [(name, terms) for name, terms in naive if terms is not None]
        assert [(r.name, r.query.matches(doc)) for r in cached.rules if r.notify] == naive
        assert [(r.name, terms) for r, terms in index.match(doc, "a")] == expected
        matched += len(expected)
    assert matched > 0


def without(name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    env.update(ENV)
    env.pop(name, None)
    return env


@pytest.mark.parametrize("variable", ["NW_TEST_TOPIC", "NW_TEST_AGENT"])
def test_an_unset_variable_is_reported_by_check_and_crawl_with_the_cache_present(
    tmp_path: Path, site: FixtureSite, variable: str
) -> None:
    site.set(
        "/f.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title></channel></rss>',
    )
    path = write_config(tmp_path, full(f"{site.url}/f.xml"))
    for _ in range(2):  # written, then read
        assert newswatch(path, "crawl", env=ENV).returncode == 0
    assert RuleCache.load(cache_path(tmp_path / "nw.db")).kept is not None
    line = next(n for n, t in enumerate(path.read_text().splitlines(), 1) if variable in t)
    for command in ("check", "crawl"):
        result = subprocess.run(
            [*nw_command(), "-c", str(path), command],
            capture_output=True,
            text=True,
            timeout=120,
            env=without(variable),
            check=False,
        )
        assert result.returncode == 2, (command, result.stderr)
        assert f"newswatch.toml:{line}: " in result.stderr
        assert f"environment variable {variable} is not set" in result.stderr


def test_a_postgresql_url_is_never_kept(tmp_path: Path) -> None:
    # the cache of a PostgreSQL archive lies beside the config file; the URL's password,
    # written in the file or from the environment, is read again on every use
    literal = "pg-password-literal-4242"
    text = full().replace(
        '[archive]\npath = "nw.db"\n',
        f'[archive]\nurl = "postgresql://nw:{literal}@127.0.0.1:5432/${{NW_TEST_DB}}"\n',
    )
    path = write_config(tmp_path, text)
    env = {**ENV, "NW_TEST_DB": "newswatch"}
    assert cached_load(path, env) == (False, load(path, env))
    hit, config = cached_load(path, env)
    assert hit and config == load(path, env)
    assert config.archive_url == f"postgresql://nw:{literal}@127.0.0.1:5432/newswatch"
    written = cache_path(path).read_bytes()
    assert literal.encode() not in written and b"postgresql://" not in written
    hit, config = cached_load(path, {**env, "NW_TEST_DB": "other"})  # read again
    assert hit and config.archive_url is not None and config.archive_url.endswith("/other")
    with pytest.raises(ConfigError, match="NW_TEST_DB is not set"):
        load(path, ENV, cached=True)


def test_every_field_of_the_config_has_been_weighed_for_secrets() -> None:
    # scheduler/config/reuse.py keeps these fields, with the channels' secret options, the web
    # view and the archive's url as holes; a new field must be weighed there before it is kept
    assert {f.name for f in dataclasses.fields(Config)} == {
        "path",
        "archive_path",
        "archive_url",
        "keep_days",
        "crawl",
        "listen",
        "node",
        "lease",
        "topic",
        "topic_text",
        "sources",
        "rules",
        "health_notify",
        "health_failures",
        "channels",
        "web",
        "aliases",
        "rules_cache",
    }
