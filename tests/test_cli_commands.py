"""The command line (docs/commands.md) as real `newswatch` subprocesses: init, check, errors,
--help everywhere, NEWSWATCH_CONFIG, usage errors, and `rules test` agreeing with `search`."""

from __future__ import annotations

import argparse
import re
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import FIXTURE_SITE
from nw import json_out, newswatch, write_config
from servers import FixtureSite

from scheduler.cli.main import build_parser, main

AIR_DEFENCE = '(NATO OR OTAN) AND ("air defence" OR "air defense" OR Patriot OR "IRIS-T")'
SPEC_COMMANDS = {
    ("init",),
    ("check",),
    ("crawl",),
    ("run",),
    ("search",),
    ("rules", "test"),
    ("alerts",),
    ("alerts", "retry"),
    ("sources",),
    ("export",),
    ("demo",),
}


def run_all(
    calls: Sequence[tuple[Path | None, tuple[str, ...]]], env: dict[str, str] | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run several `newswatch` processes at once (each is a real subprocess)."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(lambda call: newswatch(call[0], *call[1], env=env), calls))


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator:
    """Every (sub)command of the parser, e.g. ("rules",), ("rules", "test")."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from command_paths(sub, (*prefix, name))


# ------------------------------------------------------------------------------ init


def test_init_writes_a_config_that_check_accepts_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "site-config"
    written = newswatch(None, "init", str(target))
    assert written.returncode == 0, written.stderr
    config = target / "newswatch.toml"
    assert config.is_file()
    assert str(config) in written.stdout
    before = config.read_bytes()
    assert before.lstrip().startswith(b"#")  # commented

    checked = newswatch(config, "check")
    assert checked.returncode == 0, checked.stderr
    assert "ok" in checked.stdout

    config.write_text(before.decode() + "\n# my own edits\n", encoding="utf-8")
    edited = config.read_bytes()
    again = newswatch(None, "init", str(target))
    assert again.returncode != 0
    assert config.read_bytes() == edited
    assert "already exists" in again.stderr and "not overwriting" in again.stderr
    assert "Traceback" not in again.stderr


def test_init_without_dir_writes_the_config_path(tmp_path: Path) -> None:
    config = tmp_path / "deep" / "nw.toml"
    result = newswatch(config, "init")
    assert result.returncode == 0, result.stderr
    assert newswatch(config, "check").returncode == 0


# ------------------------------------------------------------------------------ check

MISTAKES = """\
[archive]
path = "nw.db"

[crawl]
every = 15
colour = "blue"

[[sources]]
name = "wire"
feed = "https://example.org/rss.xml"

[[sources]]
name = "wire"
site = "https://example.com/news/"
follow = ['^https://example\\.com/(news']

[[rules]]
name = "nato"
query = 'NATO AND ('
notify = ["ops-hook", "pager"]

[channels.ops-hook]
type = "webhook"
url = "https://hooks.example.org/x"
"""


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if line.startswith(needle)]
    return lines[occurrence - 1]


def test_check_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    config = tmp_path / "mistakes.toml"
    config.write_text(MISTAKES, encoding="utf-8")
    result = newswatch(config, "check")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ok" not in result.stdout
    expected = [
        (line_of(MISTAKES, "every = 15"), "crawl.every", "expected a duration"),
        (line_of(MISTAKES, "colour"), "crawl.colour", "unknown key"),
        (line_of(MISTAKES, 'name = "wire"', 2), "sources[1].name", 'duplicate source name "wire"'),
        (line_of(MISTAKES, "follow"), "sources[1].follow", "invalid regular expression"),
        (line_of(MISTAKES, "query"), "rules[0].query", "invalid query"),
        (line_of(MISTAKES, "notify"), "rules[0].notify", 'no channel named "pager"'),
    ]
    problems = [line for line in result.stderr.splitlines() if line.startswith(str(config))]
    assert len(problems) == len(expected), result.stderr
    for problem, (line, key, message) in zip(problems, expected, strict=True):
        prefix = f"{config}:{line}: {key}: "
        assert problem.startswith(prefix), (problem, prefix)
        assert message in problem
    # each problem on one line; nothing else but a one-line summary
    others = [line for line in result.stderr.splitlines() if line not in problems]
    assert len(others) == 1 and "6 problems" in others[0]
    first_wire = line_of(MISTAKES, 'name = "wire"')
    assert f"the first is at line {first_wire}" in problems[2]
    assert "column 11" in problems[4]


def test_check_accepts_a_valid_config(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[[sources]]\nname = "a"\nfeed = "https://e.org/rss"\n')
    result = newswatch(config, "check")
    assert result.returncode == 0, result.stderr
    assert str(config) in result.stdout and "1 sources" in result.stdout


def test_check_accepts_crontab_weekdays(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[[sources]]\nname = "a"\nfeed = "https://e.org/rss"\ncron = "0 6 * * 5-7"\n'
    )
    result = newswatch(config, "check")
    assert result.returncode == 0, result.stderr


BAD_CONFIG_COMMANDS = [
    ("check",),
    ("crawl",),
    ("crawl", "--all"),
    ("run",),
    ("search", "nato"),
    ("rules", "test", "nato"),
    ("alerts",),
    ("alerts", "retry", "--failed"),
    ("sources",),
    ("export",),
]


def test_every_command_refuses_a_bad_config_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "newswatch.toml"
    config.write_text('[archive]\npath = "nw.db"\n\n[crawl]\ncolour = "blue"\n', encoding="utf-8")
    results = run_all([(config, args) for args in BAD_CONFIG_COMMANDS])
    for args, result in zip(BAD_CONFIG_COMMANDS, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr, args
        assert result.stdout == "", args
        first = result.stderr.splitlines()[0]
        assert re.fullmatch(rf"{re.escape(str(config))}:5: crawl\.colour: unknown key.*", first)
    assert not (tmp_path / "nw.db").exists()  # nothing was started


def test_a_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    commands = [("check",), ("crawl",), ("search", "nato")]
    for args, result in zip(commands, run_all([(missing, a) for a in commands]), strict=True):
        assert result.returncode == 2, args
        assert f"{missing}:1:" in result.stderr and "newswatch init" in result.stderr
        assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ --help


def test_help_works_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(command_paths(build_parser()))
    assert {("init",), ("rules",), ("rules", "test"), ("alerts", "retry")} <= set(paths)
    for path in paths:
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        assert exited.value.code in (0, None), path
        out = capsys.readouterr().out
        assert out.startswith(f"usage: newswatch {' '.join(path)}"), path
    # and the installed command, top level and nested
    calls: list[tuple[Path | None, tuple[str, ...]]] = [
        (None, ("--help",)),
        (None, ("rules", "test", "--help")),
    ]
    for (_, args), result in zip(calls, run_all(calls), strict=True):
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith("usage: newswatch"), args


def test_every_spec_command_exists() -> None:
    assert set(command_paths(build_parser())) >= SPEC_COMMANDS


# ------------------------------------------------------------------------------ NEWSWATCH_CONFIG


def test_newswatch_config_is_used_when_c_is_absent(tmp_path: Path) -> None:
    good = write_config(tmp_path, "", name="good.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('[crawl]\ncolour = "blue"\n', encoding="utf-8")

    from_env = newswatch(None, "check", env={"NEWSWATCH_CONFIG": str(good)})
    assert from_env.returncode == 0, from_env.stderr
    assert str(good) in from_env.stdout

    wrong = newswatch(None, "check", env={"NEWSWATCH_CONFIG": str(bad)})
    assert wrong.returncode == 2 and f"{bad}:2: crawl.colour" in wrong.stderr

    flag_wins = newswatch(good, "check", env={"NEWSWATCH_CONFIG": str(bad)})
    assert flag_wins.returncode == 0, flag_wins.stderr


# ------------------------------------------------------------------------------ usage errors


BAD_QUERIES = [("NATO AND (", 11), ('"air defence', 1)]


def test_search_and_rules_test_with_a_bad_query_point_at_the_column(crawled: Path) -> None:
    calls: list[tuple[Path | None, tuple[str, ...]]] = [
        (crawled, (command, query)) for query, _ in BAD_QUERIES for command in ("search",)
    ]
    calls += [(crawled, ("rules", "test", query)) for query, _ in BAD_QUERIES]
    results = run_all(calls)
    for (_, args), result in zip(calls, results, strict=True):
        column = dict(BAD_QUERIES)[args[-1]]
        assert result.returncode == 2, args
        assert f"column {column}" in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) <= 2


def test_crawl_an_unknown_source(tmp_path: Path, site: FixtureSite) -> None:
    config = write_config(
        tmp_path, f'[[sources]]\nname = "real"\nfeed = "{site.url}/feeds/defence.xml"\n'
    )
    result = newswatch(config, "crawl", "--source", "nope")
    assert result.returncode == 2
    assert "nope" in result.stderr and "Traceback" not in result.stderr
    assert site.requests == []


def test_alerts_retry_needs_ids_or_failed(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    result = newswatch(config, "alerts", "retry")
    assert result.returncode == 2
    assert "--failed" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ rules test


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A config whose archive holds the fixture site's feeds (crawled once per module)."""
    tmp = tmp_path_factory.mktemp("crawled")
    with FixtureSite(FIXTURE_SITE) as site:
        body = '[crawl]\ndelay = "0s"\ntimeout = "10s"\nfetch_articles = false\n\n'
        for name, path in [
            ("defence-daily", "defence.xml"),
            ("northern-wire", "other-outlet.xml"),
            ("radar-weekly", "malformed.xml"),
        ]:
            body += f'[[sources]]\nname = "{name}"\nfeed = "{site.url}/feeds/{path}"\n\n'
        body += f"[[rules]]\nname = \"air-defence\"\nquery = '{AIR_DEFENCE}'\n\n"
        body += '[[rules]]\nname = "radar-nato"\nquery = "nato"\nsources = ["radar-weekly"]\n'
        config = write_config(tmp, body)
        result = newswatch(config, "crawl")
        assert result.returncode == 0, result.stderr
    yield config


def test_rules_test_by_name_lists_what_search_lists(crawled: Path) -> None:
    backtest, found = run_all(
        [
            (crawled, ("rules", "test", "air-defence", "--json")),
            (crawled, ("search", AIR_DEFENCE, "--json", "--limit", "1000")),
        ]
    )
    listed = json_out(backtest)
    assert listed == json_out(found)
    titles = {article["title"] for article in listed}
    assert titles == {
        "NATO allies agree to boost air defence on eastern flank",
        "NATO tests new air defense radar",
    }
    assert all(article["matched"] for article in listed)


def test_rules_test_with_a_query_lists_what_search_lists(crawled: Path) -> None:
    query = "nato OR NOT orchestra"
    human = "title:nato OR defen*"
    calls: list[tuple[Path | None, tuple[str, ...]]] = [
        (crawled, ("rules", "test", query, "--json")),
        (crawled, ("search", query, "--json", "--limit", "1000")),
        (crawled, ("rules", "test", human)),
        (crawled, ("search", human)),
    ]
    backtest_json, search_json, backtest_text, search_text = run_all(calls)
    listed = json_out(backtest_json)
    assert len(listed) >= 5
    assert listed == json_out(search_json)
    assert backtest_text.returncode == 0 and search_text.returncode == 0
    assert backtest_text.stdout == search_text.stdout
    assert re.search(r"^[2-9] articles$", backtest_text.stdout, re.MULTILINE)


def test_rules_test_of_a_rule_with_sources(crawled: Path) -> None:
    backtest, found = run_all(
        [
            (crawled, ("rules", "test", "radar-nato", "--json")),
            (crawled, ("search", "nato", "--source", "radar-weekly", "--json")),
        ]
    )
    listed = json_out(backtest)
    assert [a["title"] for a in listed] == ["NATO tests new air defense radar"]
    assert listed == json_out(found)
