"""Published dates on article pages without date metadata, beside bare trafilatura.

Usage::

    python bench/dates.py [DATA_DIR] [--verbose]

1. Own fixtures: the published day of ``crawler.parse.extract.extract_page`` on the pages of
``tests/fixtures/dates/`` (no date meta tags, JSON-LD or itemprop: the date is in a byline, a
``<time>``, a "Published ..." label, a dateline or the URL, beside decoy dates in teasers,
related blocks, sidebars, comments, footers and the body; some pages show no publication date
at all, and then any date is wrong). Each page counts as right (the expected day), wrong
(another day, or a day where none is shown) or none (no day where one is shown); no day on a
page without one is right. Printed for the held-out part (written before the code, never used
to tune it), the rest, and all, beside bare
``trafilatura.bare_extraction(html, url=url, with_metadata=True)`` (its default extraction,
as in ``bench/extraction.py``) and htmldate's free-text search on the whole page
(``find_date(extensive_search=True, original_date=True)``).

2. With DATA_DIR (the shared test data folder), real pages with their date metadata stripped
(``bench/dates_data.py``: every script, date meta tags, date microdata; once with the
``datetime`` of ``<time>`` kept and once without it): fundus's 258 pages split by publisher
into those used for tuning ``crawler/parse/dates.py`` and held-out ones (a hash of the
publisher's name, fixed before tuning), and the article-extraction-benchmark pages whose own
metadata gives a date (that date expected; all held out). Right: the calendar day answered
is within one day of the expected one as written (``day_ok``); wrong: another date; none: no
date. extract_page beside bare trafilatura on the same stripped pages. Then the fundus
published-date figure with the metadata intact (within one day of the expected time, the
metric of ``bench/extraction.py``; target 0.98).

Time added per page: CPU ms of ``crawler.parse.dates.find_published`` and of the pruning
before htmldate (``crawler.parse.dates.pruned``), on the fixture pages and on the fundus
pages; both run only on pages whose metadata gives no date.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from dates_data import aeb_pages, fundus_pages, metadata_date, strip_date_metadata
from extraction import Page, baseline, date_ok, direct

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "dates"
TARGET_FUNDUS = 0.98

Counts = tuple[int, int, int]  # right, wrong, none (as in the module docstring)


def load_fixtures() -> tuple[list[Page], dict[str, dict[str, Any]]]:
    expected: dict[str, dict[str, Any]] = json.loads(
        (FIXTURES / "expected.json").read_text(encoding="utf-8")
    )
    pages = [
        Page("dates", name, (FIXTURES / name).read_bytes(), e["url"], f"/dates/{name}", "")
        for name, e in sorted(expected.items())
    ]
    return pages, expected


def htmldate_extensive(pages: list[Page]) -> tuple[dict[str, dict[str, Any]], float]:
    """htmldate's free-text search on the whole page (the old fallback, extensive)."""
    from htmldate import find_date

    out: dict[str, dict[str, Any]] = {}
    start = time.process_time()
    for page in pages:
        found = find_date(
            page.html.decode("utf-8"),
            url=page.url,
            extensive_search=True,
            original_date=True,
            max_date="2100-01-01",
        )
        out[page.path] = {"published": found}
    return out, time.process_time() - start


def counts(pages: list[Page], expected: dict[str, dict[str, Any]], got: dict[str, Any]) -> Counts:
    right = wrong = none = 0
    for page in pages:
        value = (got.get(page.path) or {}).get("published")
        day = str(value)[:10] if value else None
        if day == expected[page.key]["published"]:  # a day, or none where none is shown
            right += 1
        elif day is None:
            none += 1
        else:
            wrong += 1
    return right, wrong, none


def added_ms(pages: list[Page]) -> tuple[float, float]:
    """CPU ms per page of find_published and of pruned (the tree parsed beforehand)."""
    from crawler.parse import dates
    from crawler.parse.extract import _decode, _parse

    trees = [(_parse(_decode(p.html)), p.url) for p in pages]
    trees = [(t, u) for t, u in trees if t is not None]

    def per_page(func: Callable[[Any, str], object]) -> float:
        start = time.process_time()
        for tree, url in trees:
            func(tree, url)
        return (time.process_time() - start) / max(1, len(trees)) * 1000

    dates.find_published(trees[0][0], trees[0][1])  # warm-up: month tables, patterns
    return per_page(dates.find_published), per_page(lambda tree, _: dates.pruned(tree))


def day_ok(expected: str | None, got: str | None) -> bool:
    """The calendar day answered is within one day of the expected one, each as written (the
    expected time's own local day: a page shows its local date, and "2019-10-08" is no
    wrong answer for "2019-10-08T23:30:00-04:00", which is 03:30 UTC the next day)."""
    try:
        want, have = date.fromisoformat(str(expected)[:10]), date.fromisoformat(str(got)[:10])
    except ValueError:
        return False
    return abs((want - have).days) <= 1


def real_counts(pages: list[Page], got: dict[str, Any]) -> Counts:
    """right (``day_ok``), wrong (another date), none (no date)."""
    right = wrong = none = 0
    for page in pages:
        value = (got.get(page.path) or {}).get("published")
        if value and day_ok(page.published, value):
            right += 1
        elif value:
            wrong += 1
        else:
            none += 1
    return right, wrong, none


def stripped_runs(pages: list[Page], keep_time: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """extract_page and bare trafilatura on the pages without their date metadata."""
    bare = [
        Page(p.kind, p.key, strip_date_metadata(p.html, keep_time=keep_time), p.url, p.path, "")
        for p in pages
    ]
    left = [p.key for p in bare if metadata_date(p.html)]
    if left:
        raise SystemExit(f"date metadata left after stripping on {left[:5]}: fix the stripping")
    return direct(bare)[0], baseline(bare)[0]


def real_pages(data_dir: Path, verbose: bool) -> None:
    fundus, aeb = fundus_pages(data_dir), aeb_pages(data_dir)
    sets = {
        "fundus, tuned-on publishers": [p for p in fundus if p.extra["part"] == "tuned"],
        "fundus, held-out publishers": [p for p in fundus if p.extra["part"] == "heldout"],
        "extraction benchmark (held out)": aeb,
    }
    publishers = {
        name: len({p.extra["publisher"] for p in subset}) for name, subset in sets.items()
    }
    for keep_time in (True, False):
        what = "<time datetime> kept" if keep_time else "<time datetime> stripped too"
        print(f"\nreal pages, date metadata stripped ({what}): right / wrong / none")
        print(f"{'':<58}{'newswatch':>16}{'bare trafilatura':>18}")
        runs = stripped_runs(fundus + aeb, keep_time)
        for name, subset in sets.items():
            cells = [" / ".join(map(str, real_counts(subset, got))) for got in runs]
            label = f"{name} ({len(subset)} pages, {publishers[name]} publishers)"
            print(f"{label:<58}{cells[0]:>16}{cells[1]:>18}")
        if verbose:  # the tuning part only: the held-out pages stay unseen
            for page in sets["fundus, tuned-on publishers"]:
                ours = (runs[0].get(page.path) or {}).get("published")
                if not (ours and day_ok(page.published, ours)):
                    theirs = (runs[1].get(page.path) or {}).get("published")
                    print(f"  {page.key:<40} want={page.published} ours={ours} traf={theirs}")

    ours, base = direct(fundus)[0], baseline(fundus)[0]

    def rate(got: dict[str, Any]) -> float:
        hits = [date_ok(p.published, (got.get(p.path) or {}).get("published")) for p in fundus]
        return sum(hits) / len(hits)

    mark = "ok" if rate(ours) >= TARGET_FUNDUS else "BELOW TARGET"
    print(
        f"\nfundus with its metadata ({len(fundus)} pages), published within 1 day: extract_page "
        f"{rate(ours):.3f}, bare trafilatura {rate(base):.3f}; target {TARGET_FUNDUS} {mark}"
    )
    find_ms, prune_ms = added_ms(fundus)
    print(f"added CPU per page, fundus pages: find_published {find_ms:.2f} ms, ", end="")
    print(f"pruning before htmldate {prune_ms:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, nargs="?", help="the shared test data folder")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="list each fixture's answers and the misses of the tuned-on real pages",
    )
    args = parser.parse_args(argv)

    pages, expected = load_fixtures()
    runs = {
        "newswatch": direct(pages)[0],
        "bare trafilatura": baseline(pages)[0],
        "htmldate extensive": htmldate_extensive(pages)[0],
    }
    parts = {
        "held out": [p for p in pages if expected[p.key]["part"] == "heldout"],
        "tuned on": [p for p in pages if expected[p.key]["part"] != "heldout"],
        "all": pages,
    }
    shown = sum(e["published"] is not None for e in expected.values())
    print(
        f"fixture pages: {len(pages)} ({shown} showing a published date, {len(pages) - shown} "
        f"without), {len(parts['held out'])} held out"
    )
    print(f"\n{'right / wrong / none':<24}" + "".join(f"{name:>22}" for name in runs))
    for part, subset in parts.items():
        cells = "".join(
            f"{' / '.join(map(str, counts(subset, expected, got))):>22}" for got in runs.values()
        )
        print(f"{part + f' ({len(subset)})':<24}{cells}")
    if args.verbose:
        for page in pages:
            answers = "  ".join(
                f"{name}={str((got.get(page.path) or {}).get('published') or '-')[:10]}"
                for name, got in runs.items()
            )
            print(f"  {page.key:<46} want={expected[page.key]['published']}  {answers}")

    find_ms, prune_ms = added_ms(pages)
    print(f"\nadded CPU per page, fixtures: find_published {find_ms:.2f} ms, ", end="")
    print(f"pruning before htmldate {prune_ms:.2f} ms")

    if args.data_dir:
        real_pages(args.data_dir, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
