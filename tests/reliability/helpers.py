"""Shared by the fault-injection tests: a local news site of N distinct NATO articles with
their pages, and the checks every case ends with."""

from __future__ import annotations

import random
import sqlite3
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
