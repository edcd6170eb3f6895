"""Near-duplicate identification at archive scale: 10k, 100k and 1M articles in SQLite.

Usage::

    python bench/dedup_scale.py [--sizes 10000,100000,1000000] [--ops 2000]
                                [--checkpoint auto,background,deferred] [--cache-mib N]
                                [--dir DIR] [--keep]

One real SQLite file (WAL, ``synchronous = NORMAL``, the archive's settings) with
`crawler.decide.neardup.SCHEMA_SQL` and a stand-in for the archive's ``articles`` table
(``id``, ``story_id``, indexed on ``story_id``) grows to each size in turn. At each size, `--ops`
articles go through identify-and-cluster, timed one by one, each in its own transaction::

    sketch(text) -> band lookup (the text's and its lead's keys) -> candidates' stories
    -> verify (decode_shingles, same_story) -> merge stories if it matched several
    -> insert the article, its band keys and shingles

Half are new synthetic articles (no story to find), half are copies of stories put in just
before (re-wrapped, trimmed to 60%, 5% edited): 60% of those stories have their original in
the archive, 25% a trimmed and an edited copy as two stories (the new original merges them),
15% are clusters of 20 copies.

Each size is measured once per WAL checkpoint mode: ``auto`` (SQLite's default: the commit
that takes the WAL past 1000 pages copies it into the database and syncs, and an article dirties
~45 pages), ``background`` (never in a commit; a thread checkpoints every second) and
``deferred`` (never in a commit; once after the batch, as after a crawl pass).

Printed: p50/p99 wall-clock of the whole operation, its CPU time (p50/p99: what it costs
without other load on the machine), `sketch` alone, the final checkpoint per article,
candidates per operation, the share of copies that found their story, merges, the file size
(and its tables, via dbstat), the process's RSS now and at peak; against the targets: p99 under
5 ms at 1M, p99 at 1M at most twice p99 at 10k, flat memory.

The background articles are bulk-inserted by a child process (so the measuring process's memory
is only what identification needs): random 64-bit band keys (distinct articles share none),
random shingle blobs of realistic sizes (log-normal word counts, median 550), in transactions of
10,000 articles with the journal off, then the file goes back to WAL. Text comes from a
synthetic vocabulary (30,000 words, Zipf frequencies). The whole run at 1M takes about 7
minutes and 7 GB of disk.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crawler.decide import neardup

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
DEFAULT_OPS = 2000
BUILD_CHUNK = 10_000
VOCABULARY = 30_000
MEDIAN_WORDS = 550
BIG_CLUSTER = 20
TARGET_P99_MS = 5.0
TARGET_GROWTH = 2.0

ARTICLES_SQL = (
    "CREATE TABLE IF NOT EXISTS articles (id INTEGER PRIMARY KEY, story_id INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS articles_story ON articles(story_id)",
)


# --------------------------------------------------------------------------- text


class Corpus:
    """Synthetic articles: words of a made-up vocabulary with Zipf frequencies."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        syllables = [c + v for c in "bcdfghjklmnprstvwz" for v in "aeiou"]
        words: set[str] = set()
        while len(words) < VOCABULARY:
            words.add("".join(rng.choices(syllables, k=rng.randint(1, 4))))
        self.words = np.array(sorted(words))
        weights = 1.0 / np.arange(1, VOCABULARY + 1)
        self.p = weights / weights.sum()
        self.rng = np.random.default_rng(seed)

    def article(self) -> str:
        n = int(np.clip(self.rng.lognormal(np.log(MEDIAN_WORDS), 0.6), 80, 3000))
        tokens = self.words[self.rng.choice(VOCABULARY, size=n, p=self.p)].tolist()
        for i in range(0, n, 12):  # sentences
            tokens[i] = tokens[i].capitalize()
        return " ".join(tokens) + "."

    def edited(self, text: str, share: float) -> str:
        tokens = text.split()
        for i in self.rng.choice(len(tokens), size=max(1, int(len(tokens) * share)), replace=False):
            tokens[i] = str(self.words[self.rng.integers(VOCABULARY)])
        return " ".join(tokens)

    @staticmethod
    def trimmed(text: str, share: float) -> str:
        tokens = text.split()
        return " ".join(tokens[: int(len(tokens) * share)])

    @staticmethod
    def wrapped(text: str) -> str:
        return (
            f"WASHINGTON (Reuters) - {text}\nReporting by Jane Doe; Editing by John Smith\n"
            "Our Standards: The Thomson Reuters Trust Principles."
        )


# --------------------------------------------------------------------------- the archive


def connect(path: Path, checkpoint: str = "auto", cache_mib: int = 0) -> sqlite3.Connection:
    """The archive's settings: WAL, synchronous NORMAL; a page cache of `cache_mib` MiB (0:
    SQLite's default, 2 MB).

    checkpoint "auto": SQLite's default, the commit that takes the WAL past 1000 pages copies
    it into the database and syncs it; "background": never in a commit, `Checkpointer` does it
    meanwhile; "deferred": never in a commit, once after the batch (after a crawl pass).
    """
    db = sqlite3.connect(str(path), isolation_level=None, timeout=30, check_same_thread=False)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    if checkpoint != "auto":
        db.execute("PRAGMA wal_autocheckpoint = 0")
    if cache_mib:
        db.execute(f"PRAGMA cache_size = {-1024 * cache_mib}")
    for statement in (*neardup.SCHEMA_STATEMENTS, *ARTICLES_SQL):
        db.execute(statement)
    return db


class Checkpointer:
    """A thread with its own connection: a PASSIVE checkpoint every `interval` seconds (it never
    waits for the writer, and the writer never waits for it)."""

    def __init__(self, path: Path, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        db = sqlite3.connect(str(self.path), isolation_level=None, timeout=30)
        try:
            while not self.stop.wait(self.interval):
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def __enter__(self) -> Checkpointer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@dataclass
class Outcome:
    article_id: int
    story_id: int
    candidates: int
    verified: int
    merged: int


def identify_and_cluster(db: sqlite3.Connection, text: str) -> Outcome:
    """What the archive does for one new article, in one transaction."""
    sk = neardup.sketch(text)
    db.execute("BEGIN IMMEDIATE")
    try:
        matched: set[int] = set()
        candidates: list[tuple[int, int]] = []
        verified = 0
        if sk is not None:
            keys = [*sk.band_keys, *sk.lead_keys]  # the whole text's bands and its lead's
            marks = ",".join("?" * len(keys))
            candidates = db.execute(
                f"SELECT a.id, a.story_id FROM articles a WHERE a.id IN "
                f"(SELECT article_id FROM lsh_bands WHERE band_key IN ({marks})) "
                f"ORDER BY a.story_id, a.id",
                keys,
            ).fetchall()
            for candidate, story in candidates:
                if story in matched:
                    continue  # one member proved the story: no need to verify the others
                verified += 1
                (data,) = db.execute(
                    "SELECT data FROM article_shingles WHERE article_id = ?", (candidate,)
                ).fetchone()
                if neardup.same_story(sk.shingles, neardup.decode_shingles(data)):
                    matched.add(story)
        target = neardup.merge_target(matched)
        cursor = db.execute("INSERT INTO articles (story_id) VALUES (0)")
        article_id = int(cursor.lastrowid or 0)
        story_id, merged = (article_id, []) if target is None else target
        db.execute("UPDATE articles SET story_id = ? WHERE id = ?", (story_id, article_id))
        if merged:
            marks = ",".join("?" * len(merged))
            db.execute(
                f"UPDATE articles SET story_id = ? WHERE story_id IN ({marks})",
                (story_id, *merged),
            )
        if sk is not None:
            db.executemany(
                "INSERT INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
                [(key, article_id) for key in (*sk.band_keys, *sk.lead_keys)],
            )
            db.execute(
                "INSERT INTO article_shingles (article_id, data) VALUES (?, ?)",
                (article_id, neardup.encode_shingles(sk.shingles)),
            )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return Outcome(article_id, story_id, len(candidates), verified, len(merged))


def bulk_build(path: str, count: int, seed: int) -> None:
    """Add `count` background articles (child process): random keys and blobs, fast."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1000000")  # 1 GB while building
    rng = np.random.default_rng(seed)
    (first,) = db.execute("SELECT coalesce(max(id), 0) + 1 FROM articles").fetchone()
    for start in range(first, first + count, BUILD_CHUNK):
        n = min(BUILD_CHUNK, first + count - start)
        ids = np.arange(start, start + n, dtype=np.int64)
        per_article = 2 * neardup.BANDS  # the whole text's band keys and its lead's
        keys = rng.integers(-(2**63), 2**63 - 1, size=(n, per_article), dtype=np.int64).ravel()
        owners = np.repeat(ids, per_article)
        order = np.argsort(keys, kind="stable")  # sorted runs insert faster into the B-tree
        lengths = np.clip(rng.lognormal(np.log(MEDIAN_WORDS), 0.6, n), 80, 3000).astype(int)
        lengths -= neardup.SHINGLE - 1
        payload = rng.bytes(int(lengths.sum()) * 8)
        blobs = []
        offset = 0
        for article_id, length in zip(ids.tolist(), lengths.tolist(), strict=True):
            blobs.append((article_id, b"\x01" + payload[offset : offset + 8 * length]))
            offset += 8 * length
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO articles (id, story_id) VALUES (?, ?)",
            zip(ids.tolist(), ids.tolist(), strict=True),
        )
        db.executemany(
            "INSERT INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
            zip(keys[order].tolist(), owners[order].tolist(), strict=True),
        )
        db.executemany("INSERT INTO article_shingles (article_id, data) VALUES (?, ?)", blobs)
        db.execute("COMMIT")
    db.execute("PRAGMA journal_mode = WAL")
    db.close()


# --------------------------------------------------------------------------- measuring


def rss_mib() -> tuple[float, float]:
    """(resident set size now, peak) of this process in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    now = peak
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    now = int(line.split()[1]) / 1024
    except OSError:
        pass
    return now, peak


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed_stories(
    db: sqlite3.Connection, corpus: Corpus, count: int, rng: random.Random
) -> list[str]:
    """Put `count` stories in; return, for each, the text of a new copy to identify."""
    arrivals: list[str] = []
    for _ in range(count):
        original = corpus.article()
        shape = rng.random()
        if shape < 0.60:
            identify_and_cluster(db, original)
            copy = rng.choice(
                [
                    corpus.wrapped(original),
                    corpus.trimmed(original, 0.6),
                    corpus.edited(original, 0.05),
                ]
            )
        elif shape < 0.85:  # two stories that only the original joins
            identify_and_cluster(db, corpus.trimmed(original, 0.6))
            identify_and_cluster(db, corpus.edited(original, 0.06))
            copy = original
        else:
            identify_and_cluster(db, original)
            for _ in range(BIG_CLUSTER - 1):
                identify_and_cluster(db, corpus.edited(original, 0.03))
            copy = corpus.wrapped(corpus.edited(original, 0.03))
        arrivals.append(copy)
    return arrivals


@dataclass
class Figures:
    size: int
    checkpoint: str
    p50: float
    p99: float
    cpu_p50: float  # CPU time of the operation (the same without other load on the machine)
    cpu_p99: float
    checkpoint_ms: float  # the checkpoint after the batch, per article
    sketch_p50: float
    sketch_p99: float
    candidates: float
    matched: float
    merges: int
    file_mb: float
    tables: dict[str, float]
    rss: float
    peak: float
    build_s: float


def measure(
    path: Path, corpus: Corpus, ops: int, size: int, checkpoint: str, cache_mib: int = 0
) -> Figures:
    rng = random.Random(f"{size}-{checkpoint}")
    db = connect(path, checkpoint, cache_mib)
    copies = seed_stories(db, corpus, ops // 2, rng)
    texts = [(text, True) for text in copies] + [(corpus.article(), False) for _ in copies]
    rng.shuffle(texts)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    total: list[float] = []
    cpu: list[float] = []
    sketch_times: list[float] = []
    candidates = matched = merges = 0
    with contextlib.ExitStack() as stack:
        if checkpoint == "background":
            stack.enter_context(Checkpointer(path))
        for text, is_copy in texts:
            started = time.perf_counter()
            neardup.sketch(text)
            sketch_times.append(time.perf_counter() - started)
            started, started_cpu = time.perf_counter(), time.thread_time()
            outcome = identify_and_cluster(db, text)
            total.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)
            candidates += outcome.candidates
            matched += is_copy and outcome.story_id != outcome.article_id
            merges += outcome.merged
    started = time.perf_counter()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    final_checkpoint = time.perf_counter() - started
    try:
        tables = {
            name: pgsize / 1e6
            for name, pgsize in db.execute(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
            )
        }
    except sqlite3.OperationalError:  # SQLite built without dbstat
        tables = {}
    file_mb = sum(
        os.path.getsize(f"{path}{suffix}")
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(f"{path}{suffix}")
    )
    db.close()
    now, peak = rss_mib()
    return Figures(
        size=size,
        checkpoint=checkpoint,
        p50=quantile(total, 0.5) * 1e3,
        p99=quantile(total, 0.99) * 1e3,
        cpu_p50=quantile(cpu, 0.5) * 1e3,
        cpu_p99=quantile(cpu, 0.99) * 1e3,
        checkpoint_ms=final_checkpoint * 1e3 / len(texts),
        sketch_p50=quantile(sketch_times, 0.5) * 1e3,
        sketch_p99=quantile(sketch_times, 0.99) * 1e3,
        candidates=candidates / len(texts),
        matched=matched / max(1, len(copies)),
        merges=merges,
        file_mb=file_mb / 1e6,
        tables=tables,
        rss=now,
        peak=peak,
        build_s=0.0,
    )


def report(rows: list[Figures]) -> bool:
    print(
        f"\n{'articles':>10} {'checkpoint':<11}{'p50 ms':>7}{'p99 ms':>8}{'cpu p50/p99':>13}"
        f"{'sketch p50/p99':>16}{'ckpt ms':>8}{'cand./op':>9}{'copies found':>13}{'merges':>7}"
        f"{'file MB':>8}{'RSS MiB':>8}{'peak':>6}{'build s':>8}"
    )
    for f in rows:
        print(
            f"{f.size:>10,} {f.checkpoint:<11}{f.p50:>7.2f}{f.p99:>8.2f}"
            f"{f.cpu_p50:>7.2f}/{f.cpu_p99:<5.2f}{f.sketch_p50:>9.2f}/{f.sketch_p99:<6.2f}"
            f"{f.checkpoint_ms:>8.2f}{f.candidates:>9.2f}{f.matched:>13.3f}{f.merges:>7}"
            f"{f.file_mb:>8.0f}{f.rss:>8.0f}{f.peak:>6.0f}{f.build_s:>8.0f}"
        )
    for f in rows:
        if f.tables and f.checkpoint == rows[0].checkpoint:
            parts = ", ".join(f"{name} {mb:.0f}" for name, mb in f.tables.items() if mb >= 1)
            print(f"  {f.size:>10,} articles, MB by table: {parts}")
    ok = True
    for mode in dict.fromkeys(f.checkpoint for f in rows):
        mine = [f for f in rows if f.checkpoint == mode]
        first, last = mine[0], mine[-1]
        verdicts = []
        if last.size >= 1_000_000:
            good = last.p99 < TARGET_P99_MS
            verdicts.append(f"p99 at {last.size:,} {last.p99:.2f} ms (target < {TARGET_P99_MS})")
            verdicts[-1] += " OK" if good else " ABOVE TARGET"
            ok = ok and good
        if len(mine) > 1:
            growth = last.p99 / first.p99
            good = growth <= TARGET_GROWTH
            verdicts.append(
                f"p99 {first.size:,} -> {last.size:,} x{growth:.2f} (target <= {TARGET_GROWTH})"
                + (" OK" if good else " ABOVE TARGET")
            )
            ok = ok and good
        verdicts.append(f"RSS {first.rss:.0f} -> {last.rss:.0f} MiB")
        print(f"checkpoint {mode}: " + "; ".join(verdicts))
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, DEFAULT_SIZES)),
        help="archive sizes to measure at, ascending (default: %(default)s)",
    )
    parser.add_argument("--ops", type=int, default=DEFAULT_OPS, help="timed articles per size")
    parser.add_argument("--dir", type=Path, help="where to put the archive (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the archive file")
    parser.add_argument(
        "--checkpoint",
        default="auto,background,deferred",
        help="WAL checkpoint modes to measure (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-mib",
        type=int,
        default=0,
        help="SQLite page cache of the measuring connection, MiB (default: SQLite's 2 MB)",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    modes = [m for m in args.checkpoint.split(",") if m]
    if not modes or set(modes) - {"auto", "background", "deferred"}:
        parser.error("--checkpoint takes auto, background and/or deferred")

    workdir = Path(tempfile.mkdtemp(prefix="dedup-scale-", dir=args.dir))
    path = workdir / "archive.sqlite"
    corpus = Corpus(args.seed)
    rows: list[Figures] = []
    spawn = multiprocessing.get_context("spawn")
    try:
        connect(path).close()
        for size in sizes:
            db = connect(path)
            (have,) = db.execute("SELECT count(*) FROM articles").fetchone()
            db.close()
            started = time.perf_counter()
            if size > have:
                child = spawn.Process(target=bulk_build, args=(str(path), size - have, size))
                child.start()
                child.join()
                if child.exitcode != 0:
                    print(f"building failed (exit code {child.exitcode})", file=sys.stderr)
                    return 2
            build_s = time.perf_counter() - started
            for mode in modes:
                figures = measure(path, corpus, args.ops, size, mode, args.cache_mib)
                figures.build_s = build_s
                rows.append(figures)
                print(
                    f"{size:,}, checkpoint {mode}: p50 {figures.p50:.2f} ms, p99 "
                    f"{figures.p99:.2f} ms, {figures.file_mb:.0f} MB, RSS {figures.rss:.0f} MiB "
                    f"(built in {build_s:.0f} s)",
                    flush=True,
                )
        ok = report(rows)
    finally:
        if args.keep:
            print(f"archive kept: {path}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
