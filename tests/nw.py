"""Running the real `newswatch` command in a subprocess, with a config written for the test."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "newswatch"


def command() -> list[str]:
    """The installed console script, or the module when running from a source tree."""
    return [str(BIN)] if BIN.exists() else [sys.executable, "-m", "scheduler.cli"]


def newswatch(
    config: Path | None, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = command() + (["-c", str(config)] if config else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


def json_out(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def write_config(tmp: Path, body: str, name: str = "newswatch.toml") -> Path:
    """A config file whose archive is tmp/nw.db (unless `body` sets [archive])."""
    head = "" if "[archive]" in body else '[archive]\npath = "nw.db"\n\n'
    crawl = "" if "[crawl]" in body else '[crawl]\ndelay = "0s"\ntimeout = "10s"\n\n'
    path = tmp / name
    path.write_text(head + crawl + body, encoding="utf-8")
    return path


def db_rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Read the archive the way an operator with sqlite3 would."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def db_exec(db: Path, sql: str, params: tuple[Any, ...] = ()) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)
