"""SIGKILL at random moments of crawling and of delivery, round after round (fixed seed): the
archive passes `PRAGMA integrity_check`, no article is lost, every queued alert is delivered,
and a delivery id reaches the receiver twice only for the one send in flight when killed.

Each round is a fresh archive: `newswatch crawl` of a feed whose items' pages are fetched
(through the extraction workers) and whose alerts go to a webhook receiver that answers each
POST after 50 ms, killed with SIGKILL after a random delay; then `crawl --all` again, which
must finish the work. The service rounds do the same to `newswatch run` (killed mid-pass or
mid-delivery, then started again until everything is delivered, then stopped with SIGTERM).
`--soak` runs 200 and 100 rounds instead of 20 and 10. With NEWSWATCH_RELIABILITY_REPORT set
to a file, the figures of the run are written there as JSON (docs/reliability.md)."""

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
from nw import Service, command, newswatch, write_config
from servers import FixtureSite, WebhookReceiver, free_port

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

            check_round(n, db, hook, figures)
    figures["rounds"] = rounds
    figures["deliveries lost"] = 0
    report("newswatch crawl", figures)


def check_round(n: int, db: Path, hook: WebhookReceiver, figures: Counter[str]) -> None:
    """After a kill and the recovery: the archive intact, every article and alert there and
    sent, each delivery id received, at most one of them twice (the send in flight)."""
    assert integrity(db) == "ok", f"round {n}"
    assert count(db, "SELECT count(*) FROM articles") == N, f"round {n}: articles lost"
    assert count(db, "SELECT count(*) FROM outbox") == N, f"round {n}: alerts lost"
    assert count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N, f"round {n}"
    ids = [r.headers["X-Newswatch-Delivery"] for r in hook.requests]
    assert len(set(ids)) == N, f"round {n}: not every alert delivered"
    repeats = len(ids) - len(set(ids))
    assert repeats <= 1, f"round {n}: {repeats} deliveries repeated"
    figures["deliveries repeated (in flight at the kill)"] += repeats
    figures["deliveries"] += len(set(ids))


def report(name: str, figures: Counter[str]) -> None:
    """Add this test's figures to the JSON file NEWSWATCH_RELIABILITY_REPORT names."""
    print(name, dict(figures))
    path = os.environ.get("NEWSWATCH_RELIABILITY_REPORT")
    if path:
        file = Path(path)
        known = json.loads(file.read_text(encoding="utf-8")) if file.exists() else {}
        known[name] = dict(figures)
        file.write_text(json.dumps(known, indent=1) + "\n", encoding="utf-8")


def service_config_text(site: FixtureSite, hook: WebhookReceiver) -> str:
    return (
        config_text(site, hook).replace('feed.xml"\n', 'feed.xml"\nevery = "1h"\n', 1)
        + f'\n[service]\nlisten = "127.0.0.1:{free_port()}"\n'
    )


def test_sigkill_rounds_of_the_service_lose_nothing(
    tmp_path: Path, site: FixtureSite, soak: bool
) -> None:
    """`newswatch run` killed at a random moment of its first pass (crawling, extracting,
    archiving or delivering), then started again: it finishes the work and sends nothing twice
    but the send in flight."""
    rounds = 100 if soak else 10
    rng = random.Random(SEED + 1)
    serve_articles(site, N)
    figures: Counter[str] = Counter()
    with WebhookReceiver(responses=[(200, {}, b"ok", 0.05)]) as hook:
        for n in range(rounds):
            folder = tmp_path / f"round-{n}"
            folder.mkdir()
            config = write_config(folder, service_config_text(site, hook))
            db = folder / "nw.db"
            hook.clear()
            hits = sites_hit(site)
            first = Service(config, "first")
            time.sleep(rng.uniform(0.8, 4.0))
            if first.process.poll() is not None:
                raise AssertionError(f"round {n}: run exited early\n{first.output()}")
            delivered = len(hook.requests)
            first.kill()
            figures[
                "killed while delivering"
                if delivered
                else "killed while crawling"
                if sites_hit(site) > hits
                else "killed while starting"
            ] += 1
            if delivered == N:
                figures["killed after delivering everything"] += 1
            assert integrity(db) == "ok", f"round {n}"

            second = Service(config, "second")
            try:
                second.wait_for_output("watching", timeout=60)
                deadline = time.monotonic() + 90
                while not (
                    db.exists()
                    and count(db, "SELECT count(*) FROM outbox WHERE status = 'sent'") == N
                ):
                    assert second.process.poll() is None, f"round {n}\n{second.output()}"
                    assert time.monotonic() < deadline, f"round {n}: unfinished\n{second.output()}"
                    time.sleep(0.1)
                assert second.stop(signal.SIGTERM) == 0, f"round {n}\n{second.output()}"
            finally:
                second.kill()
            assert "Traceback" not in second.err.read_text(errors="replace"), second.output()

            check_round(n, db, hook, figures)
    figures["rounds"] = rounds
    figures["deliveries lost"] = 0
    report("newswatch run", figures)


def sites_hit(site: FixtureSite) -> int:
    return sum(site.hits(path) for path in ("/feed.xml", "/robots.txt"))


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
