"""Shared by the fault-injection tests: a local news site of N distinct NATO articles with
their pages, the checks every case ends with, and a program holding the archive locked."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
from pathlib import Path

from servers import FixtureSite

VOCABULARY = [
    f"{a}{b}" for a in ("al", "bo", "ki", "mu", "ra", "te", "vo", "zu") for b in range(60)
]


def words(seed: int, n: int = 120) -> str:
    """Text of ``n`` words of its own: no two articles are near-copies (one story each)."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCABULARY) for _ in range(n))


def serve_articles(site: FixtureSite, n: int, path: str = "/feed.xml") -> list[str]:
    """A feed of ``n`` items whose pages are distinct NATO articles; their URLs."""
    urls, items = [], []
    for i in range(n):
        url = f"{site.url}/news/{i}.html"
        title = f"NATO story {i}"
        body = f"<p>NATO story {i} about readiness plan {i * 7}. {words(i)}.</p>"
        site.set(
            f"/news/{i}.html",
            f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
            f"{body}</article></body></html>",
        )
        items.append(f"<item><title>{title}</title><link>{url}</link><guid>{url}</guid></item>")
        urls.append(url)
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
    site.set(path, head + "".join(items) + "</channel></rss>", content_type="application/xml")
    return urls


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(sql).fetchone()[0])


_HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another program holding the archive's write lock for ``seconds``: returns once it holds
    it (wait() on the process for the lock to go)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder
