"""Same article and same story, through the real pipeline, on a labelled set of real articles.

Usage::

    python bench/dedup.py DATA_DIR [--seed N] [--no-alerts] [--no-feeds]

The labelled pairs of ``bench/dedup_data.py`` (real bodies from DATA_DIR's ``fundus-news/`` and
``article-extraction-benchmark/``; copies re-wrapped in another outlet's template, trimmed to
80% and 60%, 5% edited, re-titled, lead-rewritten; negatives on the same topic, nearest pairs,
random pairs, generic titles) are served as RSS feeds on 127.0.0.1, one feed per outlet, and
crawled by the real ``newswatch crawl --all`` (``fetch_articles = false``: the feed carries the
text). ``newswatch export`` then says which articles became one record ("same article") and
which share a story ("same story"); every pair is scored against its label.

"Same article" is true for the re-titled copies only (the same text under another URL, guid
and title); "same story" for every copy. Targets: precision 0.99 or better for both; recall
0.95 or better on the copies keeping 60% or more of the text.

Unless ``--no-alerts``, it then prints the alert figure of ``bench/dedup_alerts.py``: alerts per
story when four copies of each of 100 stories arrive in any order, in one pass or over four.

Unless ``--no-feeds``, it also crawls the 26 real world-news feeds of
``DATA_DIR/real-feeds/news`` and lists the stories reported by more than one outlet.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from common import LocalSite, Resource, newswatch
from dedup_alerts import alert_figure
from dedup_data import TARGET_KINDS, Article, build_pairs, unique_articles

TARGET_PRECISION, TARGET_RECALL = 0.99, 0.95
SAME_ARTICLE_KINDS = ("retitled",)
INFORMATIONAL = ("siblings", "real_version")

CONFIG = """\
[archive]
path = "bench.db"

[crawl]
delay = "0s"
per_host = 16
fetch_articles = false
timeout = "60s"
max_page_bytes = 100_000_000

"""


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()[:60] or "x"


def feeds_for(articles: list[Article], base: str) -> tuple[dict[str, Resource], dict[str, str]]:
    """One RSS feed per outlet; returns the resources and article key -> served URL."""
    by_source: dict[str, list[Article]] = defaultdict(list)
    for article in articles:
        by_source[article.source].append(article)
    resources: dict[str, Resource] = {
        "/robots.txt": Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    }
    urls: dict[str, str] = {}
    for n, (source, items) in enumerate(sorted(by_source.items())):
        xml_items = []
        for i, article in enumerate(items):
            url = f"{base}/a/{n}/{i}/{slug(article.key)}.html"
            urls[article.key] = url
            title = article.title or f"Item {n}-{i}"
            xml_items.append(
                f"<item><title>{escape(title)}</title><link>{escape(url)}</link>"
                f'<guid isPermaLink="false">{escape(article.key)}</guid>'
                f"<description>{escape(article.text)}</description></item>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{escape(source)}</title>{''.join(xml_items)}</channel></rss>"
        )
        resources[f"/feeds/{n}.xml"] = Resource(body.encode(), "application/rss+xml")
    return resources, urls


def crawl(resources: dict[str, Resource], site: LocalSite, tmp: Path) -> list[dict[str, Any]]:
    config = tmp / "newswatch.toml"
    sources = "".join(
        f'[[sources]]\nname = "f{n}"\nfeed = "{site.url(path)}"\n\n'
        for n, path in enumerate(sorted(p for p in resources if p.startswith("/feeds/")))
    )
    config.write_text(CONFIG + sources, encoding="utf-8")
    started = time.perf_counter()
    result = newswatch(config, "crawl", "--all")
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:])
        raise SystemExit("the crawl failed")
    export = newswatch(config, "export")
    records = [json.loads(line) for line in export.stdout.splitlines() if line.strip()]
    print(f"crawl: {len(records)} records in {elapsed:.1f} s")
    return records


def score_pairs(pairs: list[Any], urls: dict[str, str], records: list[dict[str, Any]]) -> bool:
    by_url = {u: r for r in records for u in r["urls"]}
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    story_tp = story_fp = story_fn = article_tp = article_fp = article_fn = 0
    target_found = target_total = 0
    missing = 0
    for pair in pairs:
        a, b = by_url.get(urls[pair.a.key]), by_url.get(urls[pair.b.key])
        if a is None or b is None:
            missing += 1
            continue
        same_story, same_article = a["story"] == b["story"], a["id"] == b["id"]
        row = rows[pair.kind]
        row["pairs"] += 1
        row["story"] += same_story
        row["article"] += same_article
        if pair.kind in INFORMATIONAL:
            continue
        truth_story = pair.label == "same"
        truth_article = pair.kind in SAME_ARTICLE_KINDS
        story_tp += same_story and truth_story
        story_fp += same_story and not truth_story
        story_fn += truth_story and not same_story
        article_tp += same_article and truth_article
        article_fp += same_article and not truth_article
        article_fn += truth_article and not same_article
        if pair.kind in TARGET_KINDS:
            target_total += 1
            target_found += same_story
    print(f"\n{'kind':<16}{'pairs':>7}{'same story':>12}{'same article':>14}")
    for kind, row in rows.items():
        print(f"{kind:<16}{row['pairs']:>7}{row['story']:>12}{row['article']:>14}")
    if missing:
        print(f"(pairs with an article missing from the archive: {missing})")

    def ratio(a: int, b: int) -> float:
        return a / b if b else 1.0

    story_p, story_r = ratio(story_tp, story_tp + story_fp), ratio(story_tp, story_tp + story_fn)
    art_p = ratio(article_tp, article_tp + article_fp)
    art_r = ratio(article_tp, article_tp + article_fn)
    recall_target = ratio(target_found, target_total)
    print(
        f"\nsame story:   precision {story_p:.4f} (target {TARGET_PRECISION}), recall "
        f"{story_r:.4f}; recall on copies keeping >= 60% {recall_target:.4f} "
        f"(target {TARGET_RECALL})"
    )
    print(f"same article: precision {art_p:.4f} (target {TARGET_PRECISION}), recall {art_r:.4f}")
    ok = min(story_p, art_p) >= TARGET_PRECISION and recall_target >= TARGET_RECALL
    print("targets:", "met" if ok else "MISSED")
    return ok


def real_feed_stories(data_dir: Path) -> None:
    folder = data_dir / "real-feeds" / "news"
    files = sorted(folder.glob("*.xml")) if folder.is_dir() else []
    if not files:
        print("\n(no real feeds in DATA_DIR/real-feeds/news)")
        return
    with tempfile.TemporaryDirectory(prefix="nw-dedup-feeds-") as tmp, LocalSite({}) as site:
        site.resources["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
        for n, path in enumerate(files):
            site.resources[f"/feeds/{n}.xml"] = Resource(path.read_bytes(), "application/xml")
        records = crawl(site.resources, site, Path(tmp))
    stories: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        stories[record["story"]].append(record)
    multi = [s for s in stories.values() if len({r["source"] for r in s}) > 1]
    print(
        f"\nreal feeds: {len(files)} feeds, {len(records)} articles, {len(stories)} stories, "
        f"{len(multi)} reported by more than one outlet"
    )
    for members in sorted(multi, key=len, reverse=True):
        print(f"  story of {len(members)} articles:")
        for record in members:
            print(f"    [{record['source']}] {record['title']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-alerts", action="store_true", help="skip the alert figure")
    parser.add_argument("--no-feeds", action="store_true", help="skip the real news feeds")
    args = parser.parse_args(argv)
    pairs = build_pairs(args.data_dir, seed=args.seed)
    articles = unique_articles(pairs)
    print(f"labelled pairs: {len(pairs)}; articles served: {len(articles)}")
    with tempfile.TemporaryDirectory(prefix="nw-dedup-") as tmp, LocalSite({}) as site:
        resources, urls = feeds_for(articles, site.base)
        site.resources.update(resources)
        records = crawl(resources, site, Path(tmp))
    ok = score_pairs(pairs, urls, records)
    if not args.no_alerts:
        ok &= alert_figure(args.data_dir, seed=args.seed)
    if not args.no_feeds:
        real_feed_stories(args.data_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
