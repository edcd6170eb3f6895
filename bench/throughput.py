"""Articles per second through the whole pipeline, beside bare extraction on one core.

Usage::

    python bench/throughput.py DATA_DIR [--limit N] [--rules N]

The pages of DATA_DIR's ``article-extraction-benchmark/`` and ``fundus-news/`` are served on
127.0.0.1 with a feed and a news sitemap (as ``bench/extraction.py`` does), and crawled by the
real ``newswatch crawl --all`` (fetch over local HTTP, extract in the process pool, identify,
archive, match N rules, queue nothing). A pass takes at most 500 new pages per source and says
so when a listing had more; passes are repeated until none says so (or one archives nothing
new). The figure is archived articles per second of wall time over those passes, process
start-up included.

In the same run, the baseline: bare ``trafilatura.bare_extraction(..., with_metadata=True)``
of the same pages, one after another in this process (one core). Target: the pipeline on two
cores at 1.3 times the baseline's rate or better.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import MORE_NEXT_PASS, LocalSite, newswatch
from extraction import CONFIG, Page, load_aeb, load_fundus, site_resources

TARGET = 1.3
RULE_WORDS = ["NATO", "election", "climate", "police", "market", "football", "Ukraine", "court"]


def bare_rate(pages: list[Page]) -> tuple[float, float]:
    """(pages per second, seconds) of bare trafilatura on one core, in this process."""
    import trafilatura

    trafilatura.bare_extraction(b"<html><body><p>warm-up</p></body></html>")
    start = time.perf_counter()
    for page in pages:
        trafilatura.bare_extraction(
            page.html, url=page.url, with_metadata=True, include_comments=False
        )
    secs = time.perf_counter() - start
    return len(pages) / secs, secs


def rules(n: int) -> str:
    out = []
    for i in range(n):
        a, b = RULE_WORDS[i % len(RULE_WORDS)], RULE_WORDS[(i * 3 + 1) % len(RULE_WORDS)]
        out.append(f'[[rules]]\nname = "r{i}"\nquery = \'{a} OR "{b} {a}"\'\nnotify = []\n')
    return "\n".join(out)


def pipeline_rate(pages: list[Page], aeb: list[Page], fundus: list[Page], n_rules: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="nw-throughput-") as tmp, LocalSite({}) as site:
        site.resources.update(site_resources(aeb, fundus, site.base))
        config = Path(tmp) / "newswatch.toml"
        config.write_text(CONFIG.format(base=site.base) + "\n" + rules(n_rules), encoding="utf-8")
        start = time.perf_counter()
        passes, archived = 0, 0
        while passes < 10:
            passes += 1
            crawl = newswatch(config, "crawl", "--all")
            if crawl.returncode != 0:
                print(crawl.stdout, crawl.stderr[-2000:])
                break
            export = newswatch(config, "export")
            now = sum(1 for line in export.stdout.splitlines() if line.strip())
            if now <= archived:
                break
            archived = now
            if MORE_NEXT_PASS not in crawl.stdout:
                break
        wall = time.perf_counter() - start
        # the export runs are not pipeline work: time one and take it out
        t = time.perf_counter()
        newswatch(config, "export")
        export_secs = time.perf_counter() - t
    crawl_secs = wall - export_secs * passes
    return {
        "articles": archived,
        "passes": passes,
        "seconds": crawl_secs,
        "rate": archived / crawl_secs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument("--limit", type=int, default=None, help="first N pages of each set")
    parser.add_argument("--rules", type=int, default=100, help="rules to match (default 100)")
    args = parser.parse_args(argv)
    aeb, fundus = load_aeb(args.data_dir, args.limit), load_fundus(args.data_dir, args.limit)
    pages = aeb + fundus
    print(f"pages: {len(pages)} ({len(aeb)} extraction benchmark + {len(fundus)} fundus)")
    print(f"cores: {os.cpu_count()}")

    base, base_secs = bare_rate(pages)
    print(f"baseline, bare trafilatura on one core: {base:.1f} pages/s ({base_secs:.1f} s)")
    result = pipeline_rate(pages, aeb, fundus, args.rules)
    ratio = result["rate"] / base
    print(
        f"pipeline (newswatch crawl, {args.rules} rules): {result['rate']:.1f} articles/s "
        f"({result['articles']} articles in {result['seconds']:.1f} s, "
        f"{result['passes']} passes, start-up included)"
    )
    verdict = "met" if ratio >= TARGET else "MISSED"
    print(f"pipeline / baseline: {ratio:.2f}x (target >= {TARGET}x: {verdict})")
    print(json.dumps({"baseline_rate": base, **result, "ratio": ratio}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
