"""Memory and time of one `newswatch crawl` of a feed of tens or hundreds of thousands of items,
beside feedparser alone parsing the same bytes.

Usage::

    python bench/big_feed.py [--items 20000,100000,300000] [--fetch-articles]

For each size an RSS feed of that many items (title, link, guid, a one-line description: about
190 bytes an item) is served on 127.0.0.1, and a fresh archive is crawled once by the real
`newswatch crawl` (``max_page_bytes`` raised to fit the feed: the default of 10 MB holds about
50,000 such items). Measured in the same run, each in a fresh process:

(a) the peak resident memory (``ru_maxrss``) of the `newswatch crawl` process and its wall time,
    and that every item was archived (without ``--fetch-articles``: every item is archived from
    the feed's fields; with it, a pass fetches at most 500 new pages and archives those);
(b) the baseline: ``feedparser.parse`` of the same bytes alone, its peak memory and time.

The figure is the crawl's peak memory for each size of feed, beside feedparser's own: the
feed's size is bounded by ``max_page_bytes`` (10 MB by default), and so is the memory.
All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from common import LocalSite, Resource, newswatch_command

PAGE = re.compile(r"^/n/(\d+)\.html$")


class Pages(dict[str, Resource]):
    """The feed, plus a small distinct article page at any /n/<i>.html."""

    def get(self, path: str, default: Any = None) -> Any:
        found = super().get(path)
        match = PAGE.match(path)
        if found is None and match:
            i = int(match.group(1))
            text = " ".join(f"w{(i * 31 + k * 17) % 997}" for k in range(120))
            body = (
                f"<html><head><title>NATO item {i}</title></head><body><article>"
                f"<h1>NATO item {i}</h1><p>NATO item {i}: {text}.</p></article></body></html>"
            )
            return Resource(body.encode())
        return found if found is not None else default


def feed(base: str, n: int) -> bytes:
    items = "".join(
        f"<item><title>NATO item {i}</title><link>{base}/n/{i}.html</link>"
        f"<guid>{base}/n/{i}.html</guid>"
        f"<description>NATO item {i}, plan {i * 7}, line {i * 13}.</description></item>"
        for i in range(n)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
    return f"{head}{items}</channel></rss>".encode()


def measured(argv: list[str]) -> dict[str, Any]:
    """Run ``argv`` in a fresh process: its exit code, wall time, peak RSS (MiB)."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "wall = time.perf_counter() - t\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps({'rc': done.returncode, 'wall': wall, 'peak': peak,"
        " 'stderr': done.stderr[-2000:]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


BASELINE = (
    "import io, json, resource, sys, time, feedparser\n"
    "body = open(sys.argv[1], 'rb').read()\n"
    "t = time.perf_counter()\n"
    "parsed = feedparser.parse(io.BytesIO(body))\n"
    "wall = time.perf_counter() - t\n"
    "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
    "print(json.dumps({'entries': len(parsed.entries), 'wall': wall, 'peak': peak}))\n"
)


def one_size(n: int, fetch_articles: bool, work: Path) -> None:
    resources = Pages()
    with LocalSite(resources) as site:
        body = feed(site.base, n)
        resources["/big.xml"] = Resource(body, "application/rss+xml")
        (work / "feed.xml").write_bytes(body)
        base = json.loads(
            subprocess.run(
                [sys.executable, "-c", BASELINE, str(work / "feed.xml")],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        db = work / f"nw-{n}.db"
        config = work / f"nw-{n}.toml"
        config.write_text(
            f'[archive]\npath = "{db.name}"\n\n'
            f'[crawl]\ndelay = "0s"\nper_host = 8\ntimeout = "120s"\n'
            f"max_page_bytes = {len(body) + 1_000_000}\n"
            f"fetch_articles = {'true' if fetch_articles else 'false'}\n\n"
            f'[[sources]]\nname = "big"\nfeed = "{site.base}/big.xml"\n',
            encoding="utf-8",
        )
        run = measured([*newswatch_command(), "-c", str(config), "crawl"])
        if run["rc"] != 0:
            raise SystemExit(f"newswatch crawl failed ({run['rc']}):\n{run['stderr']}")
    with sqlite3.connect(db) as conn:
        archived = conn.execute("SELECT count(*) FROM articles").fetchone()[0]
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    expected = min(n, 500) if fetch_articles else n
    mib = len(body) / 2**20
    print(
        f"{n:>8,} items, feed {mib:6.1f} MiB | newswatch crawl: peak RSS {run['peak']:7.1f} MiB,"
        f" {run['wall']:6.1f} s, {archived:,} archived (expected {expected:,}), integrity {check}"
        f" | feedparser alone: peak RSS {base['peak']:7.1f} MiB, {base['wall']:5.1f} s"
        f" | crawl peak / feedparser peak {run['peak'] / base['peak']:.2f}x"
        f" (+{run['peak'] - base['peak']:.0f} MiB)"
    )
    if archived != expected or check != "ok":
        raise SystemExit("articles lost or archive damaged")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", default="20000,100000,300000")
    parser.add_argument("--fetch-articles", action="store_true")
    args = parser.parse_args()
    print(f"fetch_articles = {str(args.fetch_articles).lower()}; peak RSS is ru_maxrss")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(x) for x in args.items.split(",")):
            one_size(n, args.fetch_articles, Path(tmp))


if __name__ == "__main__":
    main()
