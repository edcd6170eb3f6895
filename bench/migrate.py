"""`newswatch migrate --to URL` on a generated archive: how long the copy of a whole SQLite
archive into an empty PostgreSQL database takes.

Usage::

    python bench/migrate.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
                            [--articles 20000] [--keep DIR]

An SQLite archive of `--articles` articles (about 2 KB of text each, with their near-duplicate
sketches, so the stories' band and shingle tables are full; one in ten a copy joining another's
story; an alert for one in five) is made through the archive's own `store_article`. Then,
timed: the copy (`crawler.archive.migrate.migrate_archive`: read-only read, ``COPY`` per batch
of 5,000 rows, the search index built, one transaction) into a fresh database created on the
server at `--url` (dropped afterwards); and, as the baseline of the same run, reading every
table of the SQLite archive alone (`crawler.archive.sqlite.dump`), the floor of any copy.
Printed: seconds and rows per second of each, rows per table.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.archive import AlertIn, ArticleIn, open_archive
from crawler.archive.migrate import migrate_archive
from crawler.archive.sqlite.dump import read_archive
from crawler.decide import neardup

WORDS = [f"{a}{b}{c}" for a in "bdfgklmnprst" for b in "aeiou" for c in "lmnrst"]
START = datetime(2025, 1, 1, tzinfo=UTC)


def make_archive(path: Path, articles: int) -> None:
    rng = random.Random(7)
    archive = open_archive(path=path)
    texts: list[str] = []
    try:
        for start in range(0, articles, 1000):
            with archive.transaction():
                for n in range(start, min(start + 1000, articles)):
                    if texts and n % 10 == 9:  # a copy: joins an earlier article's story
                        words = rng.choice(texts).split()
                        words[len(words) // 2] = "edited"
                        text = " ".join(words)
                    else:
                        text = " ".join(rng.choices(WORDS, k=330))
                        texts = [*texts[-50:], text]
                    item = ArticleIn(
                        url=f"https://site{n % 40}.example/news/{n}",
                        source=f"source-{n % 40}",
                        guid=f"guid-{n}",
                        title=" ".join(rng.choices(WORDS, k=8)),
                        author=None,
                        published=None,
                        language="en",
                        summary=text[:200],
                        text=text,
                        fingerprint=None,
                    )
                    item.sketch = neardup.sketch(text)
                    alerts = [AlertIn("rule", "hook", ("word",))] if n % 5 == 0 else []
                    now = START + timedelta(minutes=n)
                    archive.store_article(item, now, lambda *_, a=alerts: a)  # type: ignore[misc]
            print(f"made {min(start + 1000, articles)}/{articles}", file=sys.stderr, end="\r")
    finally:
        archive.close()
    print(file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--keep", type=Path, help="keep the generated archive in this folder")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="nw-migrate-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nw.db"
    if not path.exists():
        started = time.perf_counter()
        make_archive(path, args.articles)
        print(f"archive of {args.articles} articles made in {time.perf_counter() - started:.0f} s")
    print(f"SQLite file: {path.stat().st_size / 1e6:.0f} MB")

    started = time.perf_counter()
    rows = 0
    with read_archive(path) as dump:
        for table in dump.tables():
            for batch in dump.rows(table):
                rows += len(batch)
    read_s = time.perf_counter() - started

    name = f"nw_bench_migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    target = urlunsplit(urlsplit(args.url)._replace(path="/" + name))
    try:
        started = time.perf_counter()
        copied = migrate_archive(path, target)
        copy_s = time.perf_counter() - started
    finally:
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
    total = sum(copied.values())
    assert total == rows, (total, rows)
    print("rows per table: " + ", ".join(f"{k} {v}" for k, v in copied.items() if v))
    print(f"migrate (copy into PostgreSQL): {copy_s:6.1f} s, {total / copy_s:8.0f} rows/s")
    print(f"baseline (read SQLite only):    {read_s:6.1f} s, {rows / read_s:8.0f} rows/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
