"""Alerts per story when copies of one wire story arrive in any order, through the real pipeline.

Usage::

    python bench/dedup_alerts.py DATA_DIR [--stories N] [--orders N] [--seed N]

(also run by ``bench/dedup.py``). N real articles of DATA_DIR (default 100, with a title and
spaced words) are each printed by four outlets: the original, a re-wrap in another template
(dateline, footer, boilerplate lines), a copy trimmed to 60%, and a copy with 5% of its words
edited under a new title. A trimmed and an edited copy each match the original but often not
each other, so in the worst order (trimmed, edited, original) they start two stories that only
the original joins. Each outlet is an RSS feed on 127.0.0.1 (``fetch_articles = false``: the feed
carries the text), one rule matches every article and alerts a local webhook, and the real
``newswatch crawl --all`` runs:

- in one pass, in `--orders` arrival orders (the first is the worst one; the others are random
  orders of the outlets, each outlet's feed answering one second after the one before it);
- spread over 4 passes: each story's copies in a random order, one copy a pass; and the worst
  order (every trimmed copy in pass 1, edited 2, original 3, re-wrap 4).

For each case it prints the alerts the webhook received per story (target: exactly one for
every story), whether each alert names the story's other copies in ``also_reported_by``, and
the precision and recall of stories over all pairs of copies (from ``newswatch export``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from itertools import combinations
from pathlib import Path
from xml.sax.saxutils import escape

from common import LocalSite, Receiver, Resource, newswatch
from dedup_data import _WORD_RE, Article, _is_spaced, edit, load_articles, new_title, trim, wrap

OUTLETS = ("original", "rewrap", "trimmed", "edited")
WORST = ("trimmed", "edited", "original", "rewrap")
GAP = 1.0  # seconds between two outlets' answers in one pass

CONFIG = """\
[archive]
path = "bench.db"

[crawl]
delay = "0s"
per_host = 8
fetch_articles = false
timeout = "60s"

[[rules]]
name = "everything"
query = 'NOT zzqxzzq'
notify = ["hook"]

[channels.hook]
type = "webhook"
url = "{hook}"

"""

Story = dict[str, Article]  # outlet -> its copy


def make_stories(data_dir: Path, count: int, rng: random.Random) -> list[Story]:
    articles, _ = load_articles(data_dir)
    usable = [a for a in articles if a.title and _is_spaced(a.text)]
    vocab = sorted({w for a in usable for w in _WORD_RE.findall(a.text) if len(w) < 16})
    stories = []
    for article in rng.sample(usable, min(count, len(usable))):

        def copy(outlet: str, text: str, title: str | None, base: Article = article) -> Article:
            return Article(f"{base.key}#{outlet}", outlet, title, text, base.origin)

        stories.append(
            {
                "original": copy("original", article.text, article.title),
                "rewrap": copy("rewrap", wrap(article.text, rng), article.title),
                "trimmed": copy("trimmed", trim(article.text, 0.6), article.title),
                "edited": copy(
                    "edited", edit(article.text, 0.05, vocab, rng), new_title(article, rng)
                ),
            }
        )
    return stories


def url_of(site: LocalSite, story: int, outlet: str) -> str:
    return site.url(f"/a/{outlet}/{story}.html")


def feed(site: LocalSite, items: list[tuple[int, Article]], delay: float) -> Resource:
    xml = "".join(
        f"<item><title>{escape(a.title or '')}</title>"
        f"<link>{escape(url_of(site, n, a.source))}</link>"
        f'<guid isPermaLink="false">{escape(a.key)}</guid>'
        f"<description>{escape(a.text)}</description></item>"
        for n, a in items
    )
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>x</title>'
        f"{xml}</channel></rss>"
    )
    return Resource(body.encode(), "application/rss+xml", delay)


# a pass: outlet -> (its items, its delay)
Pass = dict[str, tuple[list[tuple[int, Article]], float]]


def run_case(stories: list[Story], passes: list[Pass]) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="nw-alerts-") as tmp,
        LocalSite({}) as site,
        Receiver() as hook,
    ):
        config = Path(tmp) / "newswatch.toml"
        sources = "".join(
            f'[[sources]]\nname = "{o}"\nfeed = "{site.url(f"/feeds/{o}.xml")}"\n\n'
            for o in OUTLETS
        )
        config.write_text(CONFIG.format(hook=hook.url) + sources, encoding="utf-8")
        for one in passes:
            for outlet in OUTLETS:
                items, delay = one.get(outlet, ([], 0.0))
                site.resources[f"/feeds/{outlet}.xml"] = feed(site, items, delay)
            result = newswatch(config, "crawl", "--all")
            if result.returncode != 0:
                raise SystemExit(f"the crawl failed:\n{result.stdout}\n{result.stderr}")
        export = newswatch(config, "export")
        records = [json.loads(line) for line in export.stdout.splitlines() if line.strip()]
        bodies = list(hook.bodies)
    story_of_url = {url_of(site, n, o): n for n in range(len(stories)) for o in OUTLETS}
    alerts = Counter(story_of_url[b["article"]["url"]] for b in bodies)
    named = sum(len(b["story"]["also_reported_by"]) == len(OUTLETS) - 1 for b in bodies)
    found = {story_of_url[u]: {} for u in story_of_url}  # story -> {outlet: archived story}
    for record in records:
        for url in record["urls"]:
            if url in story_of_url:
                found[story_of_url[url]][url] = record["story"]
    copies = [(n, s) for n, by_url in found.items() for s in by_url.values()]
    tp = fp = fn = 0
    for (n1, s1), (n2, s2) in combinations(copies, 2):
        tp += n1 == n2 and s1 == s2
        fp += n1 != n2 and s1 == s2
        fn += n1 == n2 and s1 != s2
    per_story = [alerts.get(n, 0) for n in range(len(stories))]
    return {
        "alerts": len(bodies),
        "min": min(per_story),
        "max": max(per_story),
        "not_one": sum(c != 1 for c in per_story),
        "named": named,
        "precision": tp / (tp + fp) if tp + fp else 1.0,
        "recall": tp / (tp + fn) if tp + fn else 1.0,
        "archived": len(copies),
    }


def one_pass(stories: list[Story], order: tuple[str, ...], rng: random.Random) -> list[Pass]:
    one: Pass = {}
    for position, outlet in enumerate(order):
        items = [(n, s[outlet]) for n, s in enumerate(stories)]
        rng.shuffle(items)
        one[outlet] = (items, position * GAP)
    return [one]


def four_passes(stories: list[Story], orders: list[tuple[str, ...]]) -> list[Pass]:
    """Pass k carries the k-th copy of each story in that story's order."""
    passes: list[Pass] = [{} for _ in range(len(OUTLETS))]
    for n, (story, order) in enumerate(zip(stories, orders, strict=True)):
        for k, outlet in enumerate(order):
            passes[k].setdefault(outlet, ([], 0.0))[0].append((n, story[outlet]))
    return passes


def report(name: str, figures: dict[str, float], stories: int) -> bool:
    ok = figures["not_one"] == 0
    print(
        f"{name:<34}{figures['alerts']:>7}{figures['alerts'] / stories:>8.2f}"
        f"{figures['min']:>5}{figures['max']:>5}{figures['not_one']:>8}"
        f"{figures['named']:>7}{figures['precision']:>10.3f}{figures['recall']:>8.3f}"
        f"{'' if ok else '  MISSED'}"
    )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument("--stories", type=int, default=100)
    parser.add_argument("--orders", type=int, default=10, help="arrival orders in one pass")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return 0 if alert_figure(args.data_dir, args.stories, args.orders, args.seed) else 1


def alert_figure(data_dir: Path, count: int = 100, orders: int = 10, seed: int = 0) -> bool:
    rng = random.Random(seed)
    stories = make_stories(data_dir, count, rng)
    n = len(stories)
    print(f"\nalerts per story: {n} stories x {len(OUTLETS)} copies, one rule, one webhook")
    print(
        f"{'case':<34}{'alerts':>7}{'/story':>8}{'min':>5}{'max':>5}{'not 1':>8}"
        f"{'named':>7}{'precision':>10}{'recall':>8}"
    )
    ok = True
    for k in range(orders):
        order = WORST if k == 0 else tuple(rng.sample(OUTLETS, len(OUTLETS)))
        figures = run_case(stories, one_pass(stories, order, rng))
        ok &= report(f"one pass: {' '.join(o[:4] for o in order)}", figures, n)
    random_orders = [tuple(rng.sample(OUTLETS, len(OUTLETS))) for _ in stories]
    ok &= report(
        "4 passes, random order per story",
        run_case(stories, four_passes(stories, random_orders)),
        n,
    )
    worst = run_case(stories, four_passes(stories, [WORST] * n))
    ok &= report(f"4 passes: {' '.join(o[:4] for o in WORST)}", worst, n)
    print("'named': alerts whose also_reported_by names the story's 3 other copies")
    print("target (exactly one alert per story in every case):", "met" if ok else "MISSED")
    return ok


if __name__ == "__main__":
    sys.exit(main())
