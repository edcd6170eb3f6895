"""Running the real `newswatch` command in a subprocess, with a config written for the test."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent / "newswatch"


def command() -> list[str]:
    """The installed console script, or the module when running from a source tree."""
    return [str(BIN)] if BIN.exists() else [sys.executable, "-m", "scheduler.cli.main"]


def newswatch(
    config: Path | None, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    argv = command() + (["-c", str(config)] if config else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    full_env.update(env or {})
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=full_env, check=False
    )


def fake_dns_pass(config: Path) -> dict[str, Any]:
    """One crawl pass of ``config`` through tests/passrun.py with the fake DNS resolver (no
    real lookup leaves); each source's result as a dict."""
    tests = Path(__file__).parent
    run = subprocess.run(
        [sys.executable, str(tests / "passrun.py"), str(config), "--fake-dns"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tests,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    results: dict[str, Any] = json.loads(run.stdout)
    return results


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


# ------------------------------------------------------------------ `newswatch run`


class Service:
    """A `newswatch run` process; output goes to files (no pipe can fill up)."""

    def __init__(
        self, config: Path, name: str = "run", preexec_fn: Callable[[], None] | None = None
    ) -> None:
        self.out = config.parent / f"{name}.out"
        self.err = config.parent / f"{name}.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [*command(), "-c", str(config), "run"],
                stdout=out,
                stderr=err,
                env=env,
                preexec_fn=preexec_fn,
            )

    def output(self) -> str:
        return (
            f"stdout:\n{self.out.read_text(errors='replace')}\n"
            f"stderr:\n{self.err.read_text(errors='replace')[-4000:]}"
        )

    def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.out.read_text(errors="replace"):
            assert self.process.poll() is None, f"run exited early\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in time\n{self.output()}"
            time.sleep(0.1)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"run did not stop within {timeout}s\n{self.output()}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def service(config: Path, name: str = "run") -> Iterator[Service]:
    running = Service(config, name)
    try:
        yield running
    finally:
        running.kill()
