"""The config loader: schema, defaults, env expansion, problems with their lines, durations.

Fixtures in tests/fixtures/config/ carry their own expectation: `# expect: LINE: key.path:
start of the message` lines, in the order the problems are reported, and `# env: NAME=value`
lines for the environment the file is checked with.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from crawler.model import CrawlOptions
from crawler.query import Query
from scheduler import SchedulerError
from scheduler.config import (
    REQUIRED,
    SCHEMA,
    STARTER_CONFIG,
    TABLES,
    Computed,
    ConfigError,
    Problem,
    channel_types,
    load,
    locate_keys,
    schema_keys,
    validate,
)
from scheduler.config.durations import format_duration, parse_duration

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example.toml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"

MINIMAL_SOURCE = '[[sources]]\nname = "a"\nfeed = "https://example.org/feed.xml"\n'


def write(tmp_path: Path, text: str, name: str = "newswatch.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, environ: dict[str, str] | None = None) -> list[str]:
    return [str(problem) for problem in validate(str(path), environ or {})]


# ------------------------------------------------------------------ the example is the docs


def test_example_loads_with_an_empty_environment() -> None:
    config = load(EXAMPLE, environ={})
    assert {source.kind for source in config.sources} == {"feed", "sitemap", "site"}
    assert {channel.type for channel in config.channels.values()} == {
        "email",
        "webhook",
        "apprise",
    }
    assert isinstance(config.topic, Query)
    assert config.archive_path == (ROOT / "data" / "newswatch.db")
    email = config.channels["analysts"].options
    assert email["username"] is None and email["password"] is None  # "" means no login
    assert config.channels["ops-hook"].options["secret"] is None  # "" means unsigned


def test_starter_config_is_the_example() -> None:
    assert EXAMPLE.read_text(encoding="utf-8") == STARTER_CONFIG


def test_starter_config_loads_where_init_writes_it(tmp_path: Path) -> None:
    config = load(write(tmp_path, STARTER_CONFIG, "config/newswatch.toml"), environ={})
    assert config.archive_path == tmp_path / "data" / "newswatch.db"


EXCLUSIVE = {"archive.url": "# url = "}  # keys the example cannot set beside another


def test_example_sets_every_schema_key_and_comments_it() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = locate_keys(text)
    text_lines = text.splitlines()
    example = load(EXAMPLE, environ={})
    channel_names: dict[str, list[str]] = {kind: [] for kind in channel_types()}
    for name, channel in example.channels.items():
        channel_names[channel.type].append(name)

    def places(pattern: str) -> list[int]:
        table, _, key = pattern.partition(".")
        paths: list[tuple[str | int, ...]]
        if table.endswith("[]"):
            table = table[:-2]
            count = len(getattr(example, table))
            paths = [(table, i, key) for i in range(count)]
        elif table == "aliases":
            paths = [("aliases", name) for name in example.aliases]
        elif table == "channels":
            kind, _, key = key.partition(".")
            paths = [("channels", name, key) for name in channel_names[kind.strip("<>")]]
        else:
            paths = [(table, key)]
        return [lines[path] for path in paths if path in lines]

    checked = 0
    for pattern, _key in schema_keys():
        if pattern in EXCLUSIVE:  # set instead of another key: shown commented out
            assert f"\n{EXCLUSIVE[pattern]}" in text, f"{pattern} is not in config/example.toml"
            checked += 1
            continue
        found = places(pattern)
        assert found, f"{pattern} is not set in config/example.toml"
        assert any("#" in text_lines[line - 1] or "#" in text_lines[line - 2] for line in found), (
            f"{pattern} has no comment in config/example.toml"
        )
        checked += 1
    assert checked == len(list(schema_keys())) > 40


def test_every_key_has_help_and_optional_keys_have_defaults_that_pass_their_checks() -> None:
    for pattern, key in schema_keys():
        assert key.help, pattern
        if key.default is REQUIRED or key.default is None or isinstance(key.default, Computed):
            continue
        value = key.type.convert(key.default)
        assert (key.check(value) if key.check else value) == value, pattern


def test_crawl_schema_is_crawl_options() -> None:
    keys = {key.name: key for key in TABLES["crawl"].keys}
    assert list(keys) == [f.name for f in dataclasses.fields(CrawlOptions)]
    defaults = CrawlOptions()
    for name, key in keys.items():
        assert key.type.convert(key.default) == getattr(defaults, name), name


# ------------------------------------------------------------------ defaults and values


def test_an_empty_file_gives_every_default(tmp_path: Path) -> None:
    config = load(write(tmp_path, ""), environ={})
    assert config.path == tmp_path / "newswatch.toml"
    assert config.archive_path == tmp_path.parent / "data" / "newswatch.db"
    assert config.keep_days == 0
    assert config.crawl == CrawlOptions()
    assert config.listen == "127.0.0.1:9180"
    assert (config.topic, config.topic_text) == (None, None)
    assert (config.sources, config.rules, config.channels) == ((), (), {})
    assert (config.health_notify, config.health_failures) == ((), 3)


def test_entry_defaults_and_values(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[crawl]
every = "1h30m"
delay = "0s"
[topic]
query = "NATO"
[[sources]]
name = "feed-1"
feed = "https://example.org/feed.xml"
[[sources]]
name = "site_2"
site = "https://example.com/news/"
cron = "0 * * * *"
topic = false
follow = ['^https://example\\.com/news/\\d+']
[[rules]]
name = "r"
query = 'nato AND "air defence"'
notify = ["tls-mail", "plain-mail"]
sources = ["site_2"]
digest = "daily"
max_per_hour = 5
[channels.tls-mail]
type = "email"
host = "mail.example.org"
security = "tls"
username = "u"
password = "p"
from = "n@example.org"
to = ["a@example.org", "b@example.org"]
[channels.plain-mail]
type = "email"
host = "mail.example.org"
security = "none"
from = "n@example.org"
to = ["a@example.org"]
[channels.starttls-mail]
type = "email"
host = "mail.example.org"
port = 2525
from = "n@example.org"
to = ["a@example.org"]
[channels.hook]
type = "webhook"
url = "https://hooks.example.org/x"
secret = "s3cret"
""",
    )
    config = load(path, environ={})
    assert (config.crawl.every, config.crawl.delay, config.crawl.timeout) == (5400.0, 0.0, 30.0)
    assert config.topic_text == "NATO"
    feed, site = config.sources
    assert (feed.kind, feed.url, feed.every, feed.cron, feed.topic, feed.follow) == (
        "feed",
        "https://example.org/feed.xml",
        None,
        None,
        True,
        (),
    )
    assert (site.kind, site.cron, site.topic, site.follow) == (
        "site",
        "0 * * * *",
        False,
        (r"^https://example\.com/news/\d+",),
    )
    assert config.source("site_2") is site
    with pytest.raises(KeyError):
        config.source("nope")
    (rule,) = config.rules
    assert (rule.query_text, rule.notify, rule.sources, rule.digest) == (
        'nato AND "air defence"',
        ("tls-mail", "plain-mail"),
        ("site_2",),
        "daily",
    )
    assert isinstance(rule.query, Query)
    assert config.rule("r") is rule
    tls = config.channels["tls-mail"].options
    assert (tls["port"], tls["username"], tls["password"], tls["timeout"]) == (465, "u", "p", 30.0)
    assert tls["to"] == ("a@example.org", "b@example.org")
    assert config.channels["plain-mail"].options["port"] == 25
    assert config.channels["starttls-mail"].options["port"] == 2525
    assert config.channels["starttls-mail"].options["security"] == "starttls"
    hook = config.channels["hook"]
    assert (hook.type, hook.options) == (
        "webhook",
        {"url": "https://hooks.example.org/x", "secret": "s3cret", "timeout": 10.0},
    )


def test_default_smtp_port_with_starttls(tmp_path: Path) -> None:
    text = '[channels.m]\ntype = "email"\nhost = "h"\nfrom = "a@example.org"\n'
    text += 'to = ["b@example.org"]\n'
    assert load(write(tmp_path, text), environ={}).channels["m"].options["port"] == 587


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("news.db", "conf/news.db"),
        ("../data/news.db", "data/news.db"),
        ("sub/./dir/../news.db", "conf/sub/news.db"),
    ],
)
def test_relative_archive_path_resolves_against_the_config_directory(
    tmp_path: Path, written: str, expected: str
) -> None:
    path = write(tmp_path, f'[archive]\npath = "{written}"\n', "conf/newswatch.toml")
    assert load(path, environ={}).archive_path == tmp_path / expected


def test_absolute_archive_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "a.db"
    path = write(tmp_path, f'[archive]\npath = "{target.as_posix()}"\n', "conf/newswatch.toml")
    assert load(path, environ={}).archive_path == target


# ------------------------------------------------------------------ environment


def test_environment_expansion(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[archive]
path = "${DATA:-data}/${NAME}.db"
[crawl]
user_agent = "bot $${NOT_A_VAR} $HOME ${EMPTY:-fallback}"
every = "${EVERY:-15m}"
[channels.m]
type = "email"
host = "${SMTP_HOST}"
username = "${SMTP_USER:-}"
password = "${SMTP_PASSWORD:-}"
from = "n@example.org"
to = ["${TO}", "${CC:-cc@example.org}"]
""",
    )
    environ = {"NAME": "news", "EMPTY": "", "EVERY": "2h", "SMTP_HOST": "mx.example.org"}
    environ["TO"] = "to@example.org"
    config = load(path, environ=environ)
    assert config.archive_path == tmp_path / "data" / "news.db"
    assert config.crawl.user_agent == "bot ${NOT_A_VAR} $HOME fallback"
    assert config.crawl.every == 7200.0
    options = config.channels["m"].options
    assert options["host"] == "mx.example.org"
    assert options["to"] == ("to@example.org", "cc@example.org")
    assert (options["username"], options["password"]) == (None, None)


def test_environ_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWATCH_TEST_LISTEN", "0.0.0.0:8080")
    path = write(tmp_path, '[service]\nlisten = "${NEWSWATCH_TEST_LISTEN}"\n')
    assert load(path).listen == "0.0.0.0:8080"


def test_unset_variable_is_named(tmp_path: Path) -> None:
    text = '[channels.ops-hook]\ntype = "webhook"\nurl = "https://example.org/"\n'
    path = write(tmp_path, text + 'secret = "${WEBHOOK_SECRET}"\n')
    assert problems_of(path) == [
        f"{path}:4: channels.ops-hook.secret: environment variable WEBHOOK_SECRET is not set; "
        "set it or write ${WEBHOOK_SECRET:-default}"
    ]


def test_integers_do_not_expand(tmp_path: Path) -> None:
    text = '[channels.m]\ntype = "email"\nhost = "h"\nport = "${PORT:-587}"\n'
    text += 'from = "a@example.org"\nto = ["b@example.org"]\n'
    (problem,) = validate(write(tmp_path, text), {})
    assert (problem.line, problem.key) == (4, "channels.m.port")
    assert problem.message == 'expected an integer, got string "587" (write it without quotes: 587)'


# ------------------------------------------------------------------ problems, located


def fixture_cases() -> list[Path]:
    return sorted(FIXTURES.glob("*.toml"))


@pytest.mark.parametrize("fixture", fixture_cases(), ids=lambda path: path.stem)
def test_fixture_problems(fixture: Path) -> None:
    text = fixture.read_text(encoding="utf-8")
    environ = dict(
        line.removeprefix("# env: ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("# env: ")
    )
    expected = [
        line.removeprefix("# expect: ").split(": ", 2)
        for line in text.splitlines()
        if line.startswith("# expect: ")
    ]
    assert expected, f"{fixture.name} has no `# expect:` line"
    problems = validate(str(fixture), environ)
    found = [(problem.line, problem.key, problem.message) for problem in problems]
    assert [(line, key) for line, key, _ in found] == [
        (int(line), key) for line, key, _ in expected
    ], "\n".join(map(str, problems))
    for (_, _, message), (_, _, start) in zip(found, expected, strict=True):
        assert message.startswith(start.strip())
    for problem in problems:
        assert str(problem).startswith(f"{fixture}:{problem.line}: {problem.key}: ")
    assert [problem.line for problem in problems] == sorted(problem.line for problem in problems)
    with pytest.raises(ConfigError) as raised:
        load(str(fixture), environ)
    assert raised.value.problems == problems


def test_five_mistakes_are_all_reported_formatted_and_sorted() -> None:
    path = FIXTURES / "five-mistakes.toml"
    with pytest.raises(ConfigError) as raised:
        load(str(path), environ={})
    error = raised.value
    assert isinstance(error, SchedulerError)
    lines = str(error).splitlines()
    assert len(lines) == len(error.problems) >= 5
    prefix = str(path)
    assert lines[0] == (
        f"{prefix}:14: crawl.evry: unknown key; expected one of: user_agent, every, "
        "fetch_articles, obey_robots, allow_private, per_host, delay, timeout, max_page_bytes; "
        "did you mean 'every'?"
    )
    assert lines[1] == (
        f'{prefix}:15: crawl.per_host: expected an integer, got string "2" '
        "(write it without quotes: 2)"
    )
    assert lines[3] == (
        f'{prefix}:27: sources[2].name: duplicate source name "wire"; the first is at line 18'
    )
    assert re.fullmatch(rf"{re.escape(prefix)}:32: rules\[0\]\.query: invalid query: .+", lines[4])
    assert lines[5] == (
        f'{prefix}:33: rules[0].notify: no channel named "pager" (defined channels: ops-hook)'
    )


def test_problem_format() -> None:
    problem = Problem("conf/x.toml", 7, "sources[0].every", "must be at least 1s, got 0s")
    assert str(problem) == "conf/x.toml:7: sources[0].every: must be at least 1s, got 0s"
    error = ConfigError([problem, Problem("x.toml", 9, "k", "m")])
    assert str(error) == f"{problem}\nx.toml:9: k: m"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert problems_of(path) == [
        f"{path}:1: (file): config file not found; create one with `newswatch init`"
    ]
    with pytest.raises(ConfigError, match="create one with `newswatch init`"):
        load(path)


def test_file_is_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "[archive]\nkeep_days = -1\n")
    assert problems_of(Path("newswatch.toml")) == [
        "newswatch.toml:2: archive.keep_days: must be at least 0, got -1"
    ]


def test_syntax_error_at_end_of_document_points_at_the_duplicate_key(tmp_path: Path) -> None:
    path = write(tmp_path, '[crawl]\nevery = "1m"\n\nevery = "2m"')  # no newline at the end
    (problem,) = validate(path, {})
    assert (problem.line, problem.key) == (4, "(syntax)")
    assert problem.message == "invalid TOML: Cannot overwrite a value"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[crawl]\nuser_agent = "caf\xe9"\n')
    (problem,) = validate(path, {})
    assert (problem.line, problem.key) == (2, "(file)")


def test_inline_tables_fall_back_to_their_key_line(tmp_path: Path) -> None:
    path = write(tmp_path, '\nsources = [\n  { name = "a", feed = "ftp://x" },\n]\n')
    assert problems_of(path) == [
        f'{path}:2: sources[0].feed: expected an http:// or https:// URL, got "ftp://x"'
    ]


def test_wrong_table_shapes(tmp_path: Path) -> None:
    path = write(tmp_path, 'archive = "x.db"\n[sources]\nname = "a"\n[[crawl]]\nevery = "1m"\n')
    assert problems_of(path) == [
        f'{path}:1: archive: expected a table, got string "x.db"',
        f"{path}:2: sources: expected an array of tables (write [[sources]] before each entry), "
        "got a table",
        f"{path}:4: crawl: expected a table, got an array",
    ]


def test_listen_must_be_host_and_port(tmp_path: Path) -> None:
    for listen, message in [
        ("9180", 'expected "host:port" such as "127.0.0.1:9180", got "9180"'),
        ("localhost:99999", "port must be between 0 and 65535, got 99999"),
    ]:
        path = write(tmp_path, f'[service]\nlisten = "{listen}"\n')
        assert problems_of(path) == [f"{path}:2: service.listen: {message}"]
    path = write(tmp_path, '[service]\nlisten = "[::1]:0"\n')
    assert load(path, environ={}).listen == "[::1]:0"


def test_a_valid_file_has_no_problems(tmp_path: Path) -> None:
    assert validate(write(tmp_path, MINIMAL_SOURCE), {}) == []


def test_locate_keys() -> None:
    text = (
        "top = 1\n"
        "[a]\n"
        "x.y = 2\n"
        '"q.k" = """\n'
        "z = 3\n"
        '"""\n'
        "[[arr]]\n"
        "k = [\n"
        "  1,\n"
        "]\n"
        "[[arr]]\n"
        "k = 4\n"
        "[arr.sub]\n"
        "m = 5\n"
    )
    assert locate_keys(text) == {
        ("top",): 1,
        ("a",): 2,
        ("a", "x"): 3,
        ("a", "x", "y"): 3,
        ("a", "q.k"): 4,
        ("arr",): 7,
        ("arr", 0): 7,
        ("arr", 0, "k"): 8,
        ("arr", 1): 11,
        ("arr", 1, "k"): 12,
        ("arr", 1, "sub"): 13,
        ("arr", 1, "sub", "m"): 14,
    }


def test_schema_declares_each_table_once() -> None:
    names = [table.name for table in SCHEMA]
    expected = ["archive", "crawl", "service", "web", "aliases", "topic", "sources"]
    expected += ["rules", "health"]
    assert names == [*expected, "channels"]
    for table in SCHEMA:
        key_names = [key.name for key in table.keys]
        assert len(key_names) == len(set(key_names)), table.name
    for kind, keys in channel_types().items():
        assert keys[0].name == "type", kind
        assert len({key.name for key in keys}) == len(keys), kind


# ------------------------------------------------------------------ durations


@pytest.mark.parametrize(
    ("text", "seconds", "canonical"),
    [
        ("0s", 0.0, "0s"),
        ("1s", 1.0, "1s"),
        ("90s", 90.0, "1m30s"),
        ("15m", 900.0, "15m"),
        ("2h", 7200.0, "2h"),
        ("7d", 604800.0, "7d"),
        ("1h30m", 5400.0, "1h30m"),
        ("1d12h", 129600.0, "1d12h"),
        ("90m", 5400.0, "1h30m"),
        ("1.5h", 5400.0, "1h30m"),
        (" 10m ", 600.0, "10m"),
        ("0.5s", 0.5, "0.5s"),
    ],
)
def test_parse_and_format_duration(text: str, seconds: float, canonical: str) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == canonical
    assert parse_duration(canonical) == seconds


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty duration"),
        ("15", 'add a unit, e.g. "15s" or "15m"'),
        ("15 m", "write a number and a unit"),
        ("1w", "write a number and a unit"),
        ("-5s", "write a number and a unit"),
        ("1h1h", "each unit may appear only once"),
        ("M15", "write a number and a unit"),
    ],
)
def test_parse_duration_rejects(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_duration(text)


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError):
        format_duration(-1)
    assert format_duration(90.5) == "1m30.5s"


# ------------------------------------------------------------------ the archive's engine


def test_archive_url_names_a_postgresql_archive_instead_of_a_path(tmp_path: Path) -> None:
    path = write(
        tmp_path, '[archive]\nurl = "postgresql://nw:${PGPASSWORD}@db.example.org:5433/news"\n'
    )
    config = load(path, environ={"PGPASSWORD": "hunter2-long"})
    assert config.archive_url == "postgresql://nw:hunter2-long@db.example.org:5433/news"
    assert config.archive_path is None
    assert config.archive_label == "postgresql://nw:[secret]@db.example.org:5433/news"
    default = load(write(tmp_path, "", "other.toml"), environ={})
    assert (default.archive_url, default.archive_label) == (None, str(default.archive_path))


def test_archive_path_and_url_together_are_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[archive]\npath = "nw.db"\nurl = "postgresql://nw@db/news"\n')
    [problem] = problems_of(path)
    assert "archive.url" in problem and "both path" in problem and "remove the other" in problem


@pytest.mark.parametrize(
    "url", ["mysql://nw:pw-secret@db/news", "postgresql://nw:pw-secret@db", "db.example.org"]
)
def test_an_archive_url_that_is_not_postgresql_is_a_config_error(tmp_path: Path, url: str) -> None:
    [problem] = problems_of(write(tmp_path, f'[archive]\nurl = "{url}"\n'))
    assert "expected a PostgreSQL URL" in problem
    assert "pw-secret" not in problem


def test_a_blank_archive_url_leaves_the_sqlite_default(tmp_path: Path) -> None:
    config = load(write(tmp_path, '[archive]\nurl = "${ARCHIVE_URL:-}"\n'), environ={})
    assert config.archive_url is None
    assert config.archive_path == tmp_path.parent / "data" / "newswatch.db"
