"""Property-based fuzzing (hypothesis) of the two parsers users type into: the query language
and the config loader. Whatever the input, they return a value or raise their own error type
(QueryError, ConfigError) with a message that says where; never another exception."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.query import Document, QueryError, parse
from scheduler.config import SCHEMA, ConfigError, load

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# The query language's own pieces, so that generated queries get past the first character.
QUERY_PIECES = st.sampled_from(
    [
        "NATO",
        "air",
        "defence",
        "Patriot*",
        '"air defence"',
        '"',
        "AND",
        "OR",
        "NOT",
        "NEAR/3",
        "NEAR/",
        "NEAR/x",
        "(",
        ")",
        "title:",
        "title:(",
        "@nato",
        "@patriot",
        "@",
        "@nosuch",
        "=",
        "=nato",
        '="air',
        "*",
        "-",
        "é",
        "ß",
        "北约",
        ":",
        "/",
        "\\",
        "\x00",
        "  ",
    ]
)
QUERIES = st.one_of(
    st.text(max_size=80),
    st.lists(QUERY_PIECES, max_size=14).map(" ".join),
    st.lists(QUERY_PIECES, max_size=14).map("".join),
)
DOC = Document.from_fields(
    "NATO air defence on the eastern flank", "Patriot batteries", "Allied ministers met."
)


@FUZZ
@given(QUERIES)
def test_the_query_parser_raises_only_query_errors(text: str) -> None:
    try:
        query = parse(text)
    except QueryError as err:
        assert err.message and "column" in str(err), str(err)
        assert 0 <= err.position <= len(text)
        return
    query.matches(DOC)  # a parsed query always evaluates
    fts = query.to_fts()
    if fts is not None:  # and its full-text form is valid FTS5 syntax
        with sqlite3.connect(":memory:") as db:
            db.execute("CREATE VIRTUAL TABLE t USING fts5(title, body)")
            db.execute("SELECT * FROM t WHERE t MATCH ?", (fts,)).fetchall()


# ---------------------------------------------------------------------------- the config

KEYS = sorted({key.name for table in SCHEMA for key in table.keys})
TABLES = [table.name for table in SCHEMA]
SCALARS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["15m", "0s", "1h30m", "http://127.0.0.1:9/feed.xml", "${NOPE}", "${X:-1s}"]),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3))


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # a basic TOML string


TABLE_BODIES = st.dictionaries(st.sampled_from(KEYS) | st.text(min_size=1, max_size=8), VALUES)


@st.composite
def config_texts(draw: st.DrawFn) -> str:
    parts = []
    for name in draw(st.lists(st.sampled_from(TABLES), max_size=4)):
        header = f"[[{name}]]" if draw(st.booleans()) else f"[{name}]"
        body = draw(TABLE_BODIES)
        lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
        parts.append("\n".join([header, *lines]))
    return "\n\n".join(parts)


def assert_loads_or_explains(path: Path) -> None:
    try:
        load(path, environ={"X": "2s"})
    except ConfigError as err:
        assert err.problems
        for problem in err.problems:
            assert problem.message and problem.line >= 1, problem
            assert str(problem).startswith(str(path)), problem


@FUZZ
@given(config_texts())
def test_the_config_loader_raises_only_config_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "newswatch.toml"
    path.write_text(text, encoding="utf-8")
    assert_loads_or_explains(path)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_as_a_config_raise_only_config_errors(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "newswatch.toml"
    path.write_bytes(raw)
    assert_loads_or_explains(path)
