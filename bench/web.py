"""The web view over a large archive: p95 time of ``/search`` and ``/rules/NAME`` at 100,000
articles (target: at most 200 ms on SQLite; measured on PostgreSQL too).

Usage::

    python bench/web.py [--articles 100000] [--requests 30] [--dir DIR] [--keep] [--seed N]
    python bench/web.py --url postgresql://postgres@127.0.0.1:5432/DB [--workers 4] [...]

An archive of synthetic articles (300 words each from a 30,000-word Zipf vocabulary, spread
over 60 days and 20 sources; "NATO" in 5 % of them, "air defence" in 2 %, "Patriot" in 1 %,
"OTAN" in 0.5 %; 10 % are edited copies of an earlier article, with near-duplicate sketches, so
stories have several outlets) is written through the archive API (`store_article`, as the
pipeline does; ~3 min at 100,000, kept in `--dir` with `--keep` and reused). With `--url` the
archive is that PostgreSQL database instead (an existing, empty one: `createdb`); it is built
when it holds no article (by `--workers` processes, each storing every N-th article of the
same sequence: 25-90 articles a second with 4 on a shared two-core machine) and kept for
the next run. The real aiohttp
application (`scheduler.web.app.make_app`) is served on 127.0.0.1 and a signed-in client asks
each page `--requests` times; wall-clock per request is timed from the client.

Printed per page: p50, p95, max, beside the baseline of the same run: the bare
`crawler.query.search` call the page is built on (`search` with the page's limit, or
`backtest` for the rule bench), timed the same number of times. Exit 1 if a p95 is over the
target.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.archive import open_archive  # noqa: E402
from crawler.archive.interface import Storage  # noqa: E402
from crawler.decide import neardup  # noqa: E402
from crawler.decide.fingerprint import text_fingerprint  # noqa: E402
from crawler.model import Rule, Source  # noqa: E402
from crawler.query import parse  # noqa: E402
from crawler.query.search import backtest, search  # noqa: E402
from crawler.records import ArticleIn  # noqa: E402
from scheduler.web.app import make_app  # noqa: E402
from scheduler.web.options import WebOptions  # noqa: E402
from scheduler.web.pages import SEARCH_ARTICLES  # noqa: E402
from scheduler.web.site import Site  # noqa: E402

TARGET_MS = 200.0
VOCABULARY = 30_000
WORDS = 300
SOURCES = 20
DAYS = 60
PLANTED = (("NATO", 0.05), ("air defence", 0.02), ("Patriot", 0.01), ("OTAN", 0.005))
COPIES = 0.10
PASSWORD = "bench-password"
OPTIONS = WebOptions(PASSWORD, "bench-secret-0123456789abcdef", ())
SEARCHES = ["nato", '"air defence"', "patriot AND nato", "defen*", "nato NOT patriot", "w29999"]
RULES = {
    "air-defence": '(NATO OR OTAN) AND ("air defence" OR Patriot)',
    "nato": "NATO OR OTAN",
    "rare": "w29000 OR w29001",
}


def build(
    archive: Storage, count: int, seed: int, now: datetime, part: int = 0, writers: int = 1
) -> None:
    """Store the archive's articles, or (`writers` > 1) those of one `part`: every article is
    made in every part (the same random sequence), the i-th stored by part i % writers."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(VOCABULARY)]
    weights = [1 / (i + 1) for i in range(VOCABULARY)]
    originals: list[str] = []
    started = time.perf_counter()
    for i in range(count):
        if originals and rng.random() < COPIES:
            base = rng.choice(originals).split()
            text = " ".join("edited" if n % 20 == 7 else w for n, w in enumerate(base))
            sketch = True
        else:
            parts = rng.choices(words, weights, k=WORDS)
            for term, share in PLANTED:
                if rng.random() < share:
                    parts.insert(rng.randrange(len(parts)), term)
            text = " ".join(parts)
            sketch = False
            if rng.random() < COPIES:
                originals.append(text)
                sketch = True
        if i % writers != part:
            continue
        title = " ".join(text.split()[:8])
        article = ArticleIn(
            url=f"https://s{i % SOURCES}.example/{i}",
            source=f"s{i % SOURCES}",
            guid=None,
            title=title,
            author=None,
            published=None,
            language="en",
            summary=None,
            text=text,
            fingerprint=text_fingerprint(text),
            sketch=neardup.sketch(text) if sketch else None,
            title_key=neardup.title_key(title),
        )
        when = now - timedelta(seconds=DAYS * 86400 * (count - i) / count)
        archive.store_article(article, when, lambda *_: [])
        if i >= writers and (i + 1) % 10_000 < writers:
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"  built {i + 1:,} articles ({rate:.0f}/s)", file=sys.stderr, flush=True)


def build_part(url: str, count: int, seed: int, now: datetime, part: int, writers: int) -> None:
    archive = open_archive(url=url)
    try:
        build(archive, count, seed, now, part, writers)
    finally:
        archive.close()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def row(label: str, times: list[float], base: list[float]) -> tuple[str, float]:
    p95 = percentile(times, 0.95)
    print(
        f"{label:<44} p50 {statistics.median(times):7.1f}  p95 {p95:7.1f}  "
        f"max {max(times):7.1f} ms   baseline search p95 {percentile(base, 0.95):7.1f} ms"
    )
    return label, p95


async def measure(site: Site, requests: int) -> list[tuple[str, float]]:
    results = []
    async with TestClient(TestServer(make_app(site))) as client:
        origin = str(client.make_url("")).rstrip("/")
        answer = await client.post(
            "/login", data={"password": PASSWORD}, headers={"Origin": origin}
        )
        assert answer.status == 200, answer.status
        pages: list[tuple[str, dict[str, str], Any]] = []
        for q in SEARCHES:
            query = parse(q)
            pages.append(
                (
                    "/search",
                    {"q": q},
                    lambda query=query: search(site.archive, query, limit=SEARCH_ARTICLES),
                )
            )
        now = site.clock()
        for name in RULES:
            rule = site.rule(name)
            assert rule is not None
            pages.append(
                (
                    f"/rules/{name}",
                    {},
                    lambda rule=rule: backtest(site.archive, rule.query, now - timedelta(30)),
                )
            )
        for path, params, baseline in pages:
            times, base = [], []
            for _ in range(requests):
                started = time.perf_counter()
                answer = await client.get(path, params=params)
                await answer.read()
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status == 200, (path, params, answer.status)
                started = time.perf_counter()
                baseline()
                base.append((time.perf_counter() - started) * 1000)
            label = path + (f"?q={params['q']}" if params else "")
            results.append(row(label, times, base))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--dir", type=Path, help="where the archive is built (and reused)")
    parser.add_argument("--keep", action="store_true", help="keep the archive for the next run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--url", help="a PostgreSQL database to build in (when empty) and read")
    parser.add_argument("--workers", type=int, default=1, help="writers building --url's archive")
    args = parser.parse_args()
    if args.url:
        archive = open_archive(url=args.url)
        if archive.count_articles() == 0 and args.workers > 1:
            now = datetime.now(UTC).replace(microsecond=0)
            print(f"building {args.articles:,} articles (PostgreSQL, {args.workers} writers)")
            with multiprocessing.get_context("fork").Pool(args.workers) as pool:
                pool.starmap(
                    build_part,
                    [
                        (args.url, args.articles, args.seed, now, k, args.workers)
                        for k in range(args.workers)
                    ],
                )
        return run(archive, "PostgreSQL", args, None, None)
    directory = args.dir or Path(tempfile.mkdtemp(prefix="nw-bench-web-"))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"web-{args.articles}-{args.seed}.db"
    return run(open_archive(path=path), "SQLite", args, directory, path)


def run(
    archive: Storage,
    engine: str,
    args: argparse.Namespace,
    directory: Path | None,
    path: Path | None,
) -> int:
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        if archive.count_articles() == 0:
            print(f"building {args.articles:,} articles ({engine})", file=sys.stderr, flush=True)
            build(archive, args.articles, args.seed, now)
        total = archive.count_articles()
        # The pages' "now" is the newest article's time: a kept archive read later (or one whose
        # build was stopped early) is read over the same last 30 days of its articles.
        newest = archive.search_candidates(None)
        now = next(newest).first_seen
        getattr(newest, "close", lambda: None)()
        rules = [Rule(name, text, parse(text)) for name, text in RULES.items()]
        sources = [Source(f"s{i}", "feed", f"https://s{i}.example/rss") for i in range(SOURCES)]
        site = Site(archive, sources, rules, OPTIONS, clock=lambda: now)
        print(
            f"archive: {total:,} articles, {engine}, newest {now:%Y-%m-%d %H:%M}; "
            f"{args.requests} requests a page"
        )
        results = asyncio.run(measure(site, args.requests))
    finally:
        archive.close()
        if directory is not None and not args.keep and args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)
        elif path is not None and not args.keep:
            path.unlink(missing_ok=True)
    worst = max(p95 for _, p95 in results)
    verdict = "ok" if worst <= TARGET_MS else "OVER"
    print(f"worst p95 {worst:.1f} ms; target <= {TARGET_MS:.0f} ms: {verdict}")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
