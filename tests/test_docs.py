"""Documentation is executable: the README and the user docs it links to (docs/commands.md,
configuration.md, query-language.md, how-it-decides.md, operations.md, limits.md: read here as
one text, `README`), docs/architecture.md and bench/README.md against the code.

A command or option the CLI has, a config key the schema has, or a metric the service exports
that the docs do not document fails here; so does a README example (config, query, error
message, signature check, webhook and digest bodies, retry delays) that no longer works as
shown, a module or archive table missing from docs/architecture.md, and a benchmark script
missing from bench/README.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nw import command

from crawler.query import Document, QueryError, parse
from scheduler.cli.main import build_parser
from scheduler.config import REQUIRED, Computed, ConfigError, load, schema_keys
from scheduler.config.durations import format_duration
from scheduler.delivery.notify.webhook import signature
from scheduler.delivery.render import alert_payload, digest_payload
from scheduler.service.metrics import Metrics
from scheduler.service.schedule import RETRY_DELAYS

ROOT = Path(__file__).resolve().parent.parent
USER_DOCS = (
    "README.md",
    "docs/commands.md",
    "docs/configuration.md",
    "docs/query-language.md",
    "docs/how-it-decides.md",
    "docs/operations.md",
    "docs/limits.md",
)
README = "\n".join((ROOT / name).read_text(encoding="utf-8") for name in USER_DOCS)
FRONT_DOOR = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
BENCH_README = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
COMMON_OPTIONS = {"-h", "--help", "-c", "--config", "--debug"}


# ------------------------------------------------------------------ reading the README


def section(title: str) -> str:
    """The text of the `## title` section, up to the next `## ` heading."""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert found, f"no '## {title}' section in {', '.join(USER_DOCS)}"
    return found.group(1)


def fenced_blocks(language: str, text: str | None = None) -> list[str]:
    """The contents of every ```language fenced block (indented ones too), in the README or
    `text`."""
    pattern = rf"^([ \t]*)```{language}\n(.*?)^\1```$"
    return [
        re.sub(rf"^{indent}", "", body, flags=re.M)
        for indent, body in re.findall(pattern, README if text is None else text, re.M | re.S)
    ]


def block_after(marker: str, language: str) -> str:
    """The first ```language block after `<!-- marker -->`."""
    start = README.find(f"<!-- {marker} -->")
    assert start >= 0, f"README.md has no <!-- {marker} --> marker"
    blocks = fenced_blocks(language, README[start:])
    assert blocks, f"no ```{language} block after <!-- {marker} -->"
    return blocks[0]


def table_after(marker: str) -> list[list[str]]:
    """The cells of the Markdown table right after `<!-- marker -->`, header row excluded."""
    start = README.find(f"<!-- {marker} -->")
    assert start >= 0, f"README.md has no <!-- {marker} --> marker"
    lines = README[start:].splitlines()[1:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append(cells(line))
    assert rows, f"no table after <!-- {marker} -->"
    return rows


def cells(row: str) -> list[str]:
    """The cells of one table row; `\\|` inside a cell is a literal bar."""
    parts = re.split(r"(?<!\\)\|", row.strip().strip("|"))
    return [part.strip().replace("\\|", "|") for part in parts]


def unquote(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1]


# ------------------------------------------------------------------ commands


def commands(
    parser: argparse.ArgumentParser, prefix: str = ""
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every (sub)command as ("rules test", its parser), parents before children."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                path = f"{prefix} {name}".strip()
                yield path, sub
                yield from commands(sub, path)


def command_rows() -> dict[str, str]:
    """Commands table: the command path of each row (before its first argument) -> the row."""
    rows = {}
    for line in section("Commands").splitlines():
        found = re.match(r"\| `([a-z][a-z ]*?)(?: [\[(A-Z-].*?)?` \|", line)
        if found:
            rows[found.group(1)] = line
    return rows


def test_every_command_is_in_the_commands_table() -> None:
    rows = command_rows()
    found = dict(commands(build_parser()))
    assert {"init", "crawl", "rules test", "alerts", "alerts retry", "export"} <= set(found)
    for path, parser in found.items():
        if parser.get_default("func") is None:
            continue  # a group only (`rules`): its commands have the rows
        assert path in rows, f"`newswatch {path}` is not in the README's commands table"


def test_the_commands_table_lists_only_real_commands() -> None:
    paths = {path for path, _ in commands(build_parser())}
    for path in command_rows():
        assert path in paths, f"the README documents `{path}`, which the CLI does not have"
    assert {"demo", "rebuild"} <= set(command_rows()), "demo and rebuild need their rows"


def test_every_option_argument_and_choice_is_in_its_command_row() -> None:
    rows = command_rows()
    for path, parser in commands(build_parser()):
        if path not in rows:
            continue
        row = rows[path]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            names = [n for n in action.option_strings if n not in COMMON_OPTIONS]
            if action.option_strings and not names:
                continue
            if names:
                assert any(n in row for n in names), f"{path}: {names} not documented"
            else:
                shown = (action.metavar or action.dest).upper()
                assert shown in row.upper(), f"{path}: argument {shown} not documented"
            for choice in action.choices or ():
                assert str(choice) in row, f"{path}: choice {choice} not documented"


def test_global_options_are_documented() -> None:
    text = section("Commands")
    for action in build_parser()._actions:
        for name in action.option_strings:
            assert f"`{name}" in text or name in ("-h",), f"{name} is not documented"
    assert "$NEWSWATCH_CONFIG" in text and "config/newswatch.toml" in text


# ------------------------------------------------------------------ configuration reference


def reference_rows() -> dict[str, list[str]]:
    rows = {}
    for line in section("Configuration reference").splitlines():
        if line.startswith("| `") and "." in line.split("|")[1]:
            row = cells(line)
            rows[unquote(row[0])] = row
    return rows


def documented_default(cell: str) -> Any:
    if cell == "required":
        return REQUIRED
    if cell == "none":
        return None
    if cell.startswith("`"):
        return tomllib.loads(f"value = {unquote(cell)}")["value"]
    return cell  # a computed default, in words


def test_every_config_key_is_in_the_reference_with_its_type_and_default() -> None:
    rows = reference_rows()
    keys = list(schema_keys())
    assert len(keys) > 40
    for pattern, key in keys:
        assert pattern in rows, f"config key {pattern} is not in the README's reference"
        _, type_name, default, meaning = rows[pattern]
        assert type_name == key.type.name, pattern
        expected = key.default.describe if isinstance(key.default, Computed) else key.default
        if key.default is REQUIRED:
            assert default == "required", pattern
        else:
            assert documented_default(default) == expected, pattern
        assert meaning, pattern


def test_the_reference_documents_only_real_keys() -> None:
    patterns = {pattern for pattern, _ in schema_keys()}
    for documented in reference_rows():
        assert documented in patterns, f"the README documents {documented}, not in the schema"


# ------------------------------------------------------------------ configs that must load


def test_quickstart_config_loads(tmp_path: Path) -> None:
    text = block_after("quickstart-config", "toml")
    names = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text))
    assert names == {"WEBHOOK_SECRET"}
    path = tmp_path / "mydir" / "newswatch.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    config = load(path, environ={name: f"value of {name}" for name in names})
    [source] = config.sources
    [rule] = config.rules
    [(name, channel)] = config.channels.items()
    assert source.kind == "feed"
    assert channel.type == "webhook" and rule.notify == (name,)
    assert channel.options["secret"] == "value of WEBHOOK_SECRET"
    assert config.archive_path == path.parent / "newswatch.db"
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET is not set"):
        load(path, environ={})


def test_config_errors_example_is_what_check_prints(tmp_path: Path) -> None:
    (tmp_path / "newswatch.toml").write_text(block_after("bad-config", "toml"), encoding="utf-8")
    start = README.index("<!-- bad-config -->")
    shown = fenced_blocks("text", README[start:])[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    env.pop("WEBHOOK_SECRET", None)
    result = subprocess.run(
        [*command(), "-c", "newswatch.toml", "check"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == shown


@pytest.mark.parametrize("name", ["example.toml", "newswatch.toml"])
def test_shipped_configs_load(name: str) -> None:
    config = load(ROOT / "config" / name, environ={})
    assert config.sources and config.rules
    assert config.archive_path == ROOT / "data" / "newswatch.db"  # as the README says


def test_every_toml_block_parses() -> None:
    blocks = fenced_blocks("toml")
    assert blocks
    for block in blocks:
        tomllib.loads(block)


# ------------------------------------------------------------------ what the README promises


def test_the_readme_is_a_front_door() -> None:
    """What it is, the two commands, the quickstart and links: the references live in docs/."""
    assert len(FRONT_DOOR.encode("utf-8")) <= 12 * 1024
    headings = re.findall(r"^## (.+)$", FRONT_DOOR, re.M)
    assert headings[:2] == ["The two commands", "Quickstart"]
    for name in USER_DOCS[1:]:
        assert f"]({name})" in FRONT_DOOR, f"the README does not link {name}"


def test_relative_links_in_the_docs_lead_somewhere() -> None:
    for name in (*USER_DOCS, "docs/architecture.md", "docs/benchmarks.md", "docs/reliability.md"):
        path = ROOT / name
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            assert (path.parent / target).exists(), f"{name} links {target}, which is not there"


def test_make_targets_are_what_the_readme_says() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "CONFIG ?= config/newswatch.toml" in makefile
    assert re.search(r"^run: .*\n\t\$\(BIN\)/newswatch -c \$\(CONFIG\) run$", makefile, re.M)
    for tool in ("ruff check", "ruff format --check", "mypy", "pytest"):
        assert tool in makefile, tool
    assert "make test" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make run" in FRONT_DOOR and "make test" in FRONT_DOOR


def test_signature_snippet_verifies_real_signatures() -> None:
    namespace: dict[str, Any] = {}
    exec(block_after("verify-signature", "python"), namespace)
    verify = namespace["verify"]
    body = b'{"event": "alert"}'
    assert verify("s3cret", body, signature("s3cret", body))
    assert not verify("s3cret", body + b" ", signature("s3cret", body))
    assert not verify("other", body, signature("s3cret", body))
    assert not verify("s3cret", body, None)


def key_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: key_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_tree(item) for item in value[:1]]
    return None


def sample_alert() -> dict[str, Any]:
    """An alert as sent, for a story another outlet reported too."""
    return alert_payload(
        delivery="d",
        rule="r",
        matched=["nato"],
        article={"url": "u", "source": "s", "title": "NATO", "text": "NATO"},
        story_id=1,
        also_reported_by=[{"source": "s2", "url": "u2", "title": "NATO too"}],
        created="2025-06-09T10:01:02Z",
    )


def test_webhook_body_example_has_the_fields_sent() -> None:
    shown = json.loads(block_after("webhook-body", "json"))
    assert key_tree(shown) == key_tree(sample_alert())
    assert shown["event"] == "alert" and shown["created"].endswith("Z")
    assert shown["story"]["also_reported_by"], "the example should show a story's other copies"


def test_digest_body_example_has_the_fields_sent() -> None:
    shown = json.loads(block_after("digest-body", "json"))
    sent = digest_payload(
        delivery="d",
        rule="r",
        start="2025-06-09T10:00:00Z",
        end="2025-06-09T11:00:00Z",
        alerts=[sample_alert()],
    )
    assert key_tree(shown) == key_tree(sent)
    assert shown["event"] == "digest"
    assert shown["from"].endswith("Z") and shown["to"].endswith("Z")


def test_every_metric_is_in_the_readme() -> None:
    families = list(Metrics().registry.collect())
    assert len(families) >= 6
    for family in families:
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}" in README, f"metric {name} is not in the README"


def test_retry_schedule_is_the_documented_one() -> None:
    written = ", ".join(f"`{format_duration(seconds)}`" for seconds in RETRY_DELAYS)
    assert written in README, f"README should list the retry delays as: {written}"


# ------------------------------------------------------------------ the query language


@pytest.mark.parametrize("row", table_after("query-examples"), ids=lambda row: row[0])
def test_query_examples(row: list[str]) -> None:
    query, matching, other = unquote(row[0]), row[1], row[2]
    parsed = parse(query)
    assert parsed.matches(Document.from_fields(matching, None, None)) is not None, matching
    assert parsed.matches(Document.from_fields(other, None, None)) is None, other


@pytest.mark.parametrize("row", table_after("query-errors"), ids=lambda row: row[0])
def test_query_error_messages(row: list[str]) -> None:
    query, message = unquote(row[0]), unquote(row[1])
    with pytest.raises(QueryError) as error:
        parse(query)
    assert str(error.value) == message


# ------------------------------------------------------------------ docs/architecture.md


def test_crawler_never_imports_scheduler() -> None:
    assert "scheduler -> crawler" in ARCHITECTURE
    modules = sorted((ROOT / "crawler").rglob("*.py"))
    assert modules
    for module in modules:
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "scheduler", f"{module.name} imports {name}"


def test_architecture_maps_every_module() -> None:
    modules = sorted(
        path.relative_to(ROOT).as_posix()
        for package in ("crawler", "scheduler")
        for path in (ROOT / package).rglob("*.py")
    )
    assert "scheduler/service/main.py" in modules
    for module in modules:
        assert f"`{module}`" in ARCHITECTURE, f"{module} is not in docs/architecture.md"


def test_bench_readme_lists_every_benchmark() -> None:
    scripts = sorted(path.name for path in (ROOT / "bench").glob("*.py"))
    assert scripts
    for script in scripts:
        assert f"bench/{script}" in BENCH_README, f"bench/{script} is not in bench/README.md"


def test_architecture_names_the_archive_tables(tmp_path: Path) -> None:
    from crawler.archive import Archive

    with Archive(tmp_path / "nw.db") as archive:
        tables = {
            name
            for (name,) in archive.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
            if not name.startswith(("sqlite_", "articles_fts_"))
        }
    assert "outbox" in tables
    for table in tables:
        assert f"`{table}`" in ARCHITECTURE, f"table {table} is not in docs/architecture.md"
