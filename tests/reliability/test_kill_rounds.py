"""SIGKILL at random moments of crawling and of delivery, round after round (fixed seed): the
archive passes `PRAGMA integrity_check`, no article is lost, every queued alert is delivered,
and a delivery id reaches the receiver twice only for the one send in flight when killed.

Each round is a fresh archive: `newswatch crawl` of a feed whose items' pages are fetched
(through the extraction workers) and whose alerts go to a webhook receiver that answers each
POST after 50 ms, killed with SIGKILL after a random delay; then `crawl --all` again, which
must finish the work. `--soak` runs 200 rounds instead of 20. With NEWSWATCH_RELIABILITY_REPORT
set to a file, the figures of the run are written there as JSON (docs/reliability.md)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

from helpers import count, integrity, serve_articles
from nw import command, newswatch, write_config
from servers import FixtureSite, WebhookReceiver

SEED = 20261128
N = 12  # articles (and alerts) per round


def config_text(site: FixtureSite, hook: WebhookReceiver) -> str:
    return (
        f'[crawl]\ndelay = "0s"\n\n[[sources]]\nname = "wire"\nfeed = "{site.url}/feed.xml"\n\n'
        '[[rules]]\nname = "nato"\nquery = "NATO"\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{hook.url}"\ntimeout = "5s"\n'
    )


def test_sigkill_rounds_lose_nothing(tmp_path: Path, site: FixtureSite, soak: bool) -> None:
    rounds = 200 if soak else 20
    rng = random.Random(SEED)
    serve_articles(site, N)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    figures: Counter[str] = Counter()
    with WebhookReceiver(responses=[(200, {}, b"ok", 0.05)]) as hook:
        for n in range(rounds):
            folder = tmp_path / f"round-{n}"
            folder.mkdir()
            config = write_config(folder, config_text(site, hook))
            db = folder / "nw.db"
            hook.clear()
            proc = subprocess.Popen(
                [*command(), "-c", str(config), "crawl"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
            )
            time.sleep(rng.uniform(0.2, 3.0))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                figures[
                    "killed while delivering" if hook.requests else "killed while crawling"
                ] += 1
            else:
                figures["finished before the kill"] += 1
            proc.wait(timeout=30)
            assert integrity(db) == "ok", f"round {n}"

            done = newswatch(config, "crawl", "--all", timeout=120)
            assert done.returncode == 0, (n, done.stderr[-2000:])

            assert integrity(db) == "ok", f"round {n}"
            assert count(db, "SELECT count(*) FROM articles") == N, f"round {n}: articles lost"
            assert count(db, "SELECT count(*) FROM outbox") == N, f"round {n}: alerts lost"
            assert count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N, n
            ids = [r.headers["X-Newswatch-Delivery"] for r in hook.requests]
            assert len(set(ids)) == N, f"round {n}: not every alert delivered"
            repeats = len(ids) - len(set(ids))
            assert repeats <= 1, f"round {n}: {repeats} deliveries repeated"
            figures["deliveries repeated (in flight at the kill)"] += repeats
            figures["deliveries"] += len(set(ids))
    figures["rounds"] = rounds
    figures["deliveries lost"] = 0
    report = os.environ.get("NEWSWATCH_RELIABILITY_REPORT")
    if report:
        Path(report).write_text(json.dumps(dict(figures), indent=1) + "\n", encoding="utf-8")
    print(dict(figures))


def descendants(pid: int) -> set[int]:
    """The processes below ``pid`` (read from /proc), at any depth."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_crawl_leaves_no_worker_behind(tmp_path: Path, site: FixtureSite) -> None:
    """SIGKILL while the extraction workers run: they and their fork server go too."""
    serve_articles(site, N)
    with WebhookReceiver() as hook:
        config = write_config(tmp_path, config_text(site, hook))
        proc = subprocess.Popen(
            [*command(), "-c", str(config), "crawl"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            below: set[int] = set()
            while len(below) < 3 and time.monotonic() < deadline:  # fork server + workers
                below = {p for p in descendants(proc.pid) if "forkserver" in cmdline(p)}
                time.sleep(0.05)
            assert len(below) >= 3, below
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        deadline = time.monotonic() + 15
        while any(alive(p) for p in below) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for p in below if alive(p)], "workers outlived the killed crawl"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
