"""Dedup on PostgreSQL at archive scale: storing one new article, its story lookup included,
among 10,000 and 1,000,000 archived articles (`bench/cluster.py dedup`).

A fresh database (created on the server at ``--url``, dropped afterwards) gets the archive's
schema, then grows to each size in turn. The background articles are built in the server
(``INSERT ... SELECT generate_series``), not one by one: an ``articles`` row each (distinct URL,
source, fingerprint, title key, a first_seen within the last 30 days, a one-line summary and no
body text), its ``article_urls`` row, 84 random 64-bit band keys (``lsh_bands``: the text's 42
and its lead's 42; distinct articles share none), and its shingles (``article_shingles``:
random bytes of the real size, log-normal word counts with median 550, streamed with ``COPY``).
The band keys' primary key is dropped while they are inserted and built again afterwards (a
sort, not 84 million random index inserts). No search documents for the background articles
(storing a new article writes its own, and a story lookup never reads them).

At each size, `--ops` articles are stored through the real engine
(`crawler.archive.postgres.PostgresArchive.store_article`: the advisory locks on the article's
identity and band keys, the identity lookups, the insert, the search document, the band-key
candidates and their verification, the story merge, one commit), one after another, each timed.
The texts come from `bench/dedup_scale.py`'s generator: half new articles, half copies of
stories stored just before (60% with their original archived, 25% a trimmed and an edited copy
as two stories that the original joins, 15% clusters of 20 copies). The sketch
(`crawler.decide.neardup.sketch`) is computed before the call, as the pipeline's extraction step
does, and timed apart. Beside it, in the same run: the floor of any durable write, one
committed one-row ``INSERT`` on the same server.

Targets: p99 at most 10 ms at 1,000,000, and at most twice the p99 at 10,000 (flat).
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from dedup_scale import MEDIAN_WORDS, Corpus, quantile

from crawler.archive.postgres import PostgresArchive
from crawler.decide import neardup
from crawler.decide.fingerprint import text_fingerprint
from crawler.records import ArticleIn

TARGET_P99_MS = 10.0
TARGET_GROWTH = 2.0
CHUNK = 20_000  # background articles per COPY of shingles
KEYS_PER_ARTICLE = 2 * neardup.BANDS


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


# --------------------------------------------------------------------------- building


def grow(url: str, count: int, seed: int) -> None:
    """Add `count` background articles after the last one archived."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM articles").fetchone()
        first = int(row[0]) if row else 1
        last = first + count - 1
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute(
            """INSERT INTO articles (id, url, source, title, first_seen, updated, summary,
                   fingerprint, story_id, title_key)
               SELECT n, 'https://bg' || (n %% 500) || '.example/news/' || n,
                   'bg-' || (n %% 500), 'Background article ' || n, t, t,
                   'One line of summary for article ' || n, md5(n::text), n,
                   'bg ' || md5(n::text || 't')
               FROM (SELECT n, now() - random() * interval '30 days' AS t
                     FROM generate_series(%s::bigint, %s::bigint) AS n) AS s""",
            (first, last),
        )
        conn.execute("SELECT setval(pg_get_serial_sequence('articles', 'id'), %s)", (last,))
        conn.execute(
            "INSERT INTO article_urls (url, article_id) "
            "SELECT url, id FROM articles WHERE id BETWEEN %s AND %s ORDER BY id",
            (first, last),
        )
        conn.execute("ALTER TABLE lsh_bands DROP CONSTRAINT IF EXISTS lsh_bands_pkey")
        conn.execute(
            """INSERT INTO lsh_bands (band_key, article_id)
               SELECT ((random() * 2 - 1) * 9.2e18)::bigint, n
               FROM generate_series(%s::bigint, %s::bigint) AS n,
                    generate_series(1, %s) AS k""",
            (first, last, KEYS_PER_ARTICLE),
        )
        conn.execute("ALTER TABLE lsh_bands ADD PRIMARY KEY (band_key, article_id)")
        rng = np.random.default_rng(seed)
        with conn.cursor() as cur:
            for start in range(first, last + 1, CHUNK):
                n = min(CHUNK, last + 1 - start)
                lengths = np.clip(rng.lognormal(np.log(MEDIAN_WORDS), 0.6, n), 80, 3000)
                lengths = lengths.astype(int) - (neardup.SHINGLE - 1)
                payload = rng.bytes(int(lengths.sum()) * 8)
                lead = rng.bytes(n * 8 * neardup.BANDS)
                with cur.copy(
                    "COPY article_shingles (article_id, data, lead_keys) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(["int8", "bytea", "bytea"])
                    offset = 0
                    for i, length in enumerate(lengths.tolist()):
                        end = offset + 8 * length
                        keys = lead[i * 8 * neardup.BANDS : (i + 1) * 8 * neardup.BANDS]
                        copy.write_row((start + i, b"\x01" + payload[offset:end], keys))
                        offset = end
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- measuring


@dataclass
class Figures:
    size: int
    p50: float
    p99: float
    sketch_p50: float
    commit_p50: float
    commit_p99: float
    found: float  # share of copies that found their story
    build_s: float
    mode: str = "as configured"


def article(corpus: Corpus, text: str) -> ArticleIn:
    title = " ".join(text.split()[:9])
    return ArticleIn(
        url=f"https://new.example/news/{uuid.uuid4().hex}",
        source="bench",
        guid=None,
        title=title,
        author=None,
        published=None,
        language="en",
        summary=None,
        text=text,
        fingerprint=text_fingerprint(text),
        sketch=neardup.sketch(text),
        title_key=neardup.title_key(title),
    )


def no_alerts(article_id: int, story_id: int, outcome: str) -> list[object]:
    return []


def store(archive: PostgresArchive, item: ArticleIn) -> bool:
    """Store; True if it joined an archived story."""
    stored = archive.store_article(item, datetime.now(UTC), no_alerts)  # type: ignore[arg-type]
    return stored.joined_story


def seed(archive: PostgresArchive, corpus: Corpus, count: int, rng: random.Random) -> list[str]:
    """`count` stories stored (the shapes of bench/dedup_scale.py); a new copy of each."""
    arrivals = []
    for _ in range(count):
        original = corpus.article()
        shape = rng.random()
        if shape < 0.60:
            store(archive, article(corpus, original))
            copy = rng.choice(
                [
                    corpus.wrapped(original),
                    corpus.trimmed(original, 0.6),
                    corpus.edited(original, 0.05),
                ]
            )
        elif shape < 0.85:
            store(archive, article(corpus, corpus.trimmed(original, 0.6)))
            store(archive, article(corpus, corpus.edited(original, 0.06)))
            copy = original
        else:
            store(archive, article(corpus, original))
            for _ in range(19):
                store(archive, article(corpus, corpus.edited(original, 0.03)))
            copy = corpus.wrapped(corpus.edited(original, 0.03))
        arrivals.append(copy)
    return arrivals


def measure(url: str, corpus: Corpus, ops: int, size: int) -> Figures:
    rng = random.Random(size)
    with PostgresArchive(url) as archive, psycopg.connect(url, autocommit=True) as conn:
        copies = seed(archive, corpus, ops // 2, rng)
        texts = [(t, True) for t in copies] + [(corpus.article(), False) for _ in copies]
        rng.shuffle(texts)
        conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id text PRIMARY KEY)")
        times, sketches, commits = [], [], []
        found = 0
        for text, is_copy in texts:
            started = time.perf_counter()
            item = article(corpus, text)
            sketches.append(time.perf_counter() - started)
            started = time.perf_counter()
            joined = store(archive, item)
            times.append(time.perf_counter() - started)
            found += is_copy and joined
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_floor VALUES (gen_random_uuid()::text)")
            commits.append(time.perf_counter() - started)
    return Figures(
        size=size,
        p50=quantile(times, 0.5) * 1e3,
        p99=quantile(times, 0.99) * 1e3,
        sketch_p50=quantile(sketches, 0.5) * 1e3,
        commit_p50=quantile(commits, 0.5) * 1e3,
        commit_p99=quantile(commits, 0.99) * 1e3,
        found=found / max(1, len(copies)),
        build_s=0.0,
    )


UNSYNCED = "options=-c%20synchronous_commit%3Doff"  # libpq: for this session only


def run(
    admin_url: str, sizes: Sequence[int], ops: int, seed_value: int, unsynced: bool = False
) -> bool:
    """Measure at each size (with `unsynced`, also with ``synchronous_commit = off`` in the
    archive's sessions: the WAL flush's share); print the figures beside the targets; True if
    both are met (as configured)."""
    name = f"nw_bench_dedup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(admin_url, name)
    corpus = Corpus(seed_value)
    rows: list[Figures] = []
    try:
        PostgresArchive(url).close()  # the schema
        for size in sorted(sizes):
            started = time.perf_counter()
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM articles").fetchone()
                have = int(row[0]) if row else 0
            if size > have:
                grow(url, size - have, seed_value + size)
            built = time.perf_counter() - started
            modes = [("as configured", url)]
            if unsynced:
                joiner = "&" if "?" in url else "?"
                modes.append(("synchronous_commit off", f"{url}{joiner}{UNSYNCED}"))
            for mode, mode_url in modes:
                figures = measure(mode_url, corpus, ops, size)
                figures.build_s, figures.mode = built, mode
                rows.append(figures)
                print(
                    f"dedup {size:,} background articles, {mode}: store p50 {figures.p50:.2f}"
                    f" ms, p99 {figures.p99:.2f} ms (commit floor p50 {figures.commit_p50:.2f},"
                    f" p99 {figures.commit_p99:.2f}); copies found {figures.found:.3f}; built"
                    f" in {built:.0f} s",
                    flush=True,
                )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(
        f"\n{'articles':>10}{'p50 ms':>8}{'p99 ms':>8}{'sketch p50':>11}"
        f"{'commit p50/p99':>16}{'copies found':>13}{'build s':>8}  sessions"
    )
    for f in rows:
        print(
            f"{f.size:>10,}{f.p50:>8.2f}{f.p99:>8.2f}{f.sketch_p50:>11.2f}"
            f"{f.commit_p50:>8.2f}/{f.commit_p99:<7.2f}{f.found:>13.3f}{f.build_s:>8.0f}  "
            f"{f.mode}"
        )
    configured = [f for f in rows if f.mode == "as configured"]
    first, last = configured[0], configured[-1]
    ok_p99 = last.p99 <= TARGET_P99_MS
    growth = last.p99 / first.p99 if first.p99 else float("inf")
    ok_flat = growth <= TARGET_GROWTH
    print(
        f"dedup target: p99 at {last.size:,} {last.p99:.2f} ms (target <= {TARGET_P99_MS}) "
        f"{'met' if ok_p99 else 'MISSED'}; p99 {first.size:,} -> {last.size:,} x{growth:.2f} "
        f"(target <= {TARGET_GROWTH}) {'met' if ok_flat else 'MISSED'}; a commit alone: p99 "
        f"{last.commit_p99:.2f} ms"
    )
    return ok_p99 and ok_flat
