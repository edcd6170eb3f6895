"""Where fundus's expected titles come from, and the best any choice among a page's title
sources could score.

Usage::

    python bench/title_sources.py DATA_DIR

For each of the 258 fundus pages, the page's title sources are read as ``crawler/parse/extract.py``
reads them (the first JSON-LD article headline, og:title, twitter:title, ``<title>``, the first
``<h1>``) and compared with the expected title (the normalisation of ``bench/extraction.py``).
Printed: how often each source is the expected title; how often none is; the score of
``extract_page`` itself (target 0.85); how often its title is one of the page's own title
sources, whole or with a site-name suffix dropped (target 0.98: a title is chosen, never made
up); and an upper bound for every rule that picks one source from which
sources agree with each other (the "agreement pattern" of the page): for each pattern, the
source that is right most often on the pages with that pattern, fitted to these very pages.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections import Counter, defaultdict
from pathlib import Path

from extraction import load_fundus, norm_text

from crawler.parse import extract as ex

SOURCES = ("json-ld", "og:title", "twitter:title", "<title>", "<h1>")


def candidates(html: bytes) -> dict[str, str | None]:
    tree = ex._parse(ex._decode(html))
    if tree is None:
        return dict.fromkeys(SOURCES)
    meta = ex._read_meta(tree)
    headline = None
    for obj in ex._ld_articles(meta.ld):
        headline = ex._clean(obj.get("headline"))
        if headline:
            break
    return {
        "json-ld": headline,
        "og:title": ex._first(meta.meta, "og:title"),
        "twitter:title": ex._first(meta.meta, "twitter:title"),
        "<title>": meta.title_tag,
        "<h1>": meta.h1,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    args = parser.parse_args(argv)
    pages = load_fundus(args.data_dir, None)
    right: Counter[str] = Counter()
    none_right = ours = own = 0
    by_pattern: dict[tuple[object, ...], list[dict[str, bool]]] = defaultdict(list)
    for page in pages:
        want = norm_text(page.title)
        found = {k: norm_text(v) if v else None for k, v in candidates(page.html).items()}
        hits = {k: v is not None and v == want for k, v in found.items()}
        right.update(k for k, hit in hits.items() if hit)
        none_right += not any(hits.values())
        chosen = norm_text(ex.extract_page(page.html, page.url).title)
        ours += chosen == want
        own += bool(chosen) and any(v and v.startswith(chosen) for v in found.values())
        pattern = tuple(
            (a, b)
            for a, b in itertools.combinations(SOURCES, 2)
            if found[a] and found[a] == found[b]
        ) + tuple(k for k in SOURCES if found[k] is None)
        by_pattern[pattern].append(hits)
    bound = sum(
        max(sum(hits[k] for hits in group) for k in SOURCES) for group in by_pattern.values()
    )
    n = len(pages)
    print(f"fundus pages: {n}")
    for source in SOURCES:
        print(f"  expected title is the {source:<14} {right[source] / n:6.3f}")
    print(f"  expected title is none of them        {none_right / n:6.3f}")
    print(f"extract_page's title:                   {ours / n:6.3f}  (target 0.85)")
    print(f"  ... is one of the page's own sources  {own / n:6.3f}  (target 0.98)")
    print(f"best rule on the agreement pattern:     {bound / n:6.3f}  (fitted to these pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
