"""Article extraction through the real pipeline, scored against human-annotated pages.

Usage::

    python bench/extraction.py DATA_DIR [--limit N] [--direct] [--verbose]

DATA_DIR is the shared test data folder. Its ``article-extraction-benchmark/`` (181 pages with
their annotated article body) and ``fundus-news/`` (258 pages with title, authors, publishing
date and body) are served on 127.0.0.1, with an RSS feed listing the first set and a Google
News sitemap listing the second. A temporary config with a ``feed`` and a ``sitemap`` source
is crawled by ``newswatch crawl --all`` (again, until a pass adds no record: a pass takes a
bounded number of new pages per source); the records of ``newswatch export --format jsonl``
are matched to their pages by URL (``urls`` holds the served URL) and scored over all pages
(a page without a record scores zero) and over the pages that got one ("pipeline, found"):

- body F1: the extraction benchmark's own metric (scrapinghub/article-extraction-benchmark
  ``evaluate.py``): 4-token shingles over ``\\w+`` tokens, counts normalised per page,
  precision and recall averaged over pages, F1 of the two means;
- title: exact or normalised match (NFKC, casefold, whitespace collapsed, invisible format
  characters such as soft hyphens dropped, typographic quotes as ASCII, quotes and
  punctuation at the ends stripped);
- published: within one day of the expected time;
- author: every expected author's normalised name occurs in the record's author string
  (both empty also matches; pages whose expectations have no authors field are skipped);
- coverage: records found / pages served.

The feed and the sitemap carry only what the page itself shows to a naive generator: its
``<title>`` element, no date in the feed, the crawl date as ``news:publication_date``. So the
title and date figures measure page extraction, not a copy of the expectations.

``--direct`` skips the crawl and scores ``crawler.parse.extract.extract_page`` on the pages
(given their original URL). Every run also scores bare ``trafilatura.bare_extraction`` on the
same pages, as the baseline.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

from common import MORE_NEXT_PASS, LocalSite, Resource, newswatch

MAX_PASSES = 10
TARGETS = {"aeb_f1": 0.95, "title": 0.97, "date": 0.90, "author": 0.80}


# --------------------------------------------------------------------------- data


@dataclass
class Page:
    kind: str  # "aeb" (article-extraction-benchmark) or "fundus"
    key: str
    html: bytes
    url: str  # the original URL
    path: str  # where the local site serves it
    body: str  # expected article text
    title: str | None = None
    authors: list[str] | None = None  # None: not part of the expectations
    published: str | None = None
    crawl_date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def served_path(prefix: str, url: str) -> str:
    """/prefix/host/path of the original URL: keeps dates and slugs a URL may carry."""
    parts = urlsplit(url)
    path = quote(unquote(parts.path or "/"), safe="/-._~!$&'()*+,;=:@")
    return f"/{prefix}/{parts.hostname or 'nohost'}{path}"


def load_aeb(data: Path, limit: int | None) -> list[Page]:
    folder = data / "article-extraction-benchmark"
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth)[:limit]:
        html = gzip.decompress((folder / "html" / f"{key}.html.gz").read_bytes())
        url = truth[key]["url"]
        pages.append(
            Page(
                "aeb", key, html, url, served_path(f"aeb/{key[:8]}", url), truth[key]["articleBody"]
            )
        )
    return pages


def fundus_body(body: dict[str, Any]) -> str:
    """Summary + each section's headlines and paragraphs, joined by blank lines."""
    parts = list(body.get("summary") or [])
    for section in body.get("sections") or []:
        parts += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
    return "\n\n".join(parts)


def load_fundus(data: Path, limit: int | None) -> list[Page]:
    folder = data / "fundus-news"
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    pages = []
    for n, row in enumerate(index[:limit]):
        expected = json.loads((folder / row["expected"]).read_text(encoding="utf-8"))
        expected = expected[row["expected_key"]]
        html = gzip.decompress((folder / row["html"]).read_bytes())
        pages.append(
            Page(
                "fundus",
                row["id"],
                html,
                row["url"],
                served_path(f"fundus/{n}", row["url"]),
                fundus_body(expected.get("body") or {}),
                title=expected.get("title"),
                authors=expected.get("authors") if "authors" in row["fields"] else None,
                published=expected.get("publishing_date"),
                crawl_date=row.get("crawl_date"),
            )
        )
    return pages


# --------------------------------------------------------------------------- metrics

_TOKEN = re.compile(r"\w+", re.UNICODE | re.MULTILINE | re.IGNORECASE | re.DOTALL)


def _shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i : i + n]) for i in range(max(1, len(tokens) - n + 1)) if tokens)


def tp_fp_fn(true: str, pred: str) -> tuple[float, float, float]:
    """The benchmark's string_shingle_matching: counts normalised so each page weighs the same."""
    t, p = _shingles(true), _shingles(pred)
    tp = fp = fn = 0.0
    for key in t.keys() | p.keys():
        tc, pc = t.get(key, 0), p.get(key, 0)
        tp += min(tc, pc)
        fp += max(0, pc - tc)
        fn += max(0, tc - pc)
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def body_f1(scores: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(F1, precision, recall) as the benchmark's metrics_from_tp_fp_fns computes them."""

    def precision(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else (0.0 if tp == fp == 0 else tp / (tp + fp))

    def recall(tp: float, fp: float, fn: float) -> float:
        return 1.0 if fp == fn == 0 else (0.0 if tp == fn == 0 else tp / (tp + fn))

    ps = [precision(*s) for s in scores if s[0] + s[1] > 0]
    rs = [recall(*s) for s in scores if s[0] + s[2] > 0]
    p = statistics.mean(ps) if ps else 0.0
    r = statistics.mean(rs) if rs else 0.0
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


_END_PUNCT = "\"'“”„‟«»‹›‘’‚`´.,:;!?-–—()[]{}… "


_QUOTES = str.maketrans({c: "'" for c in "‘’‚‛′"} | {c: '"' for c in "“”„‟″«»"})


def norm_text(text: str | None) -> str:
    """NFKC, no invisible format characters, typographic quotes as ASCII, casefolded."""
    text = unicodedata.normalize("NFKC", text or "")
    text = "".join(c for c in text if unicodedata.category(c) != "Cf").translate(_QUOTES)
    text = text.casefold()
    return " ".join(text.split()).strip(_END_PUNCT)


def title_ok(expected: str | None, got: str | None) -> bool:
    return bool(expected) and (expected == got or norm_text(expected) == norm_text(got))


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def date_ok(expected: str | None, got: str | None) -> bool:
    e, g = parse_time(expected), parse_time(got)
    return e is not None and g is not None and abs((e - g).total_seconds()) <= 86400


def author_ok(expected: list[str], got: str | None) -> bool:
    have = norm_text(got)
    if not expected:
        return not have
    return all(norm_text(name) in have for name in expected)


def rate(flags: Iterable[bool]) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 0.0


# --------------------------------------------------------------------------- predictions

Fields = dict[str, Any]  # title, author, published, text, language


def direct(pages: list[Page]) -> tuple[dict[str, Fields], float]:
    """extract_page on every page; returns the fields and the CPU seconds spent."""
    from crawler.parse.extract import extract_page

    extract_page(b"<html><body><p>warm-up</p></body></html>", "http://127.0.0.1/")  # imports
    out: dict[str, Fields] = {}
    start = time.process_time()
    for page in pages:
        f = extract_page(page.html, page.url)
        out[page.path] = {
            "title": f.title,
            "author": f.author,
            "published": f.published,
            "text": f.text,
            "language": f.language,
            "error": f.error,
        }
    return out, time.process_time() - start


def baseline(pages: list[Page]) -> tuple[dict[str, Fields], float]:
    """Bare trafilatura.bare_extraction with metadata, as trafilatura documents it."""
    import trafilatura

    trafilatura.bare_extraction(b"<html><body><p>warm-up</p></body></html>")  # imports
    out: dict[str, Fields] = {}
    start = time.process_time()
    for page in pages:
        doc = trafilatura.bare_extraction(
            page.html, url=page.url, with_metadata=True, include_comments=False
        )
        if doc is None or isinstance(doc, dict):
            out[page.path] = {}
            continue
        out[page.path] = {
            "title": doc.title,
            "author": doc.author.replace("; ", ", ") if doc.author else None,
            "published": doc.date,
            "text": doc.text,
            "language": None,
        }
    return out, time.process_time() - start


def _page_title(html: bytes) -> str:
    match = re.search(rb"<title[^>]*>(.*?)</title>", html[:300_000], re.S | re.I)
    text = match.group(1).decode("utf-8", "replace") if match else ""
    return " ".join(text.split()) or "untitled"


def _page_lang(html: bytes) -> str | None:
    match = re.search(rb"<html[^>]*\slang=[\"']?([A-Za-z]{2,3})", html[:20_000], re.I)
    return match.group(1).decode().lower() if match else None


def site_resources(aeb: list[Page], fundus: list[Page], base: str) -> dict[str, Resource]:
    res = {p.path: Resource(p.html) for p in aeb + fundus}
    res["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    items = "".join(
        f"<item><title>{escape(_page_title(p.html))}</title><link>{escape(base + p.path)}</link>"
        f'<guid isPermaLink="true">{escape(base + p.path)}</guid></item>\n'
        for p in aeb
    )
    rss = (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>Extraction benchmark</title><link>{base}/</link>"
        f"<description>article-extraction-benchmark pages</description>\n{items}</channel></rss>\n"
    )
    res["/feed.xml"] = Resource(rss.encode(), "application/rss+xml; charset=utf-8")
    urls = []
    for p in fundus:
        crawled = parse_time(p.crawl_date) or datetime(2024, 1, 1, tzinfo=UTC)
        urls.append(
            f"<url><loc>{escape(base + p.path)}</loc><news:news><news:publication>"
            f"<news:name>{escape(p.key.split('/')[1])}</news:name>"
            f"<news:language>{_page_lang(p.html) or 'und'}</news:language></news:publication>"
            f"<news:publication_date>{crawled.strftime('%Y-%m-%dT%H:%M:%SZ')}"
            f"</news:publication_date><news:title>{escape(_page_title(p.html))}</news:title>"
            "</news:news></url>\n"
        )
    sitemap = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">\n'
        f"{''.join(urls)}</urlset>\n"
    )
    res["/sitemap-news.xml"] = Resource(sitemap.encode(), "application/xml; charset=utf-8")
    return res


CONFIG = """\
[archive]
path = "bench.db"

[crawl]
delay = "0s"
per_host = 8
fetch_articles = true
timeout = "30s"

[[sources]]
name = "bench-feed"
feed = "{base}/feed.xml"
topic = false

[[sources]]
name = "bench-sitemap"
sitemap = "{base}/sitemap-news.xml"
topic = false
"""


def pipeline(aeb: list[Page], fundus: list[Page]) -> tuple[dict[str, Fields], float, str]:
    """Crawl the local site with the real `newswatch`, export, and key records by page path."""
    records: list[dict[str, Any]]
    from crawler.decide.urls import canonical_url

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp, LocalSite({}) as site:
        site.resources.update(site_resources(aeb, fundus, site.base))
        config = Path(tmp) / "newswatch.toml"
        config.write_text(CONFIG.format(base=site.base), encoding="utf-8")
        # A pass takes a bounded number of new pages per source: crawl until none has more.
        log, records = "", []
        for n in range(1, MAX_PASSES + 1):
            crawl = newswatch(config, "crawl", "--all")
            log += f"crawl pass {n}: exit {crawl.returncode}\n{crawl.stdout}{crawl.stderr[-3000:]}"
            export = newswatch(config, "export", "--format", "jsonl")
            if export.returncode != 0:
                log += f"\nexport exit {export.returncode}: {export.stderr[-3000:]}"
            before = len(records)
            records = [json.loads(line) for line in export.stdout.splitlines() if line.strip()]
            more = MORE_NEXT_PASS in crawl.stdout
            if crawl.returncode != 0 or len(records) <= before or not more:
                break
        fetched = sum(1 for r in site.requests if not r.endswith((".xml", ".txt")))
        log += f"\npage requests served: {fetched}"
        by_url: dict[str, Fields] = {}
        for record in records:
            for u in [record.get("url"), *(record.get("urls") or [])]:
                if u:
                    by_url[unquote(u)] = record
        out: dict[str, Fields] = {}
        for page in aeb + fundus:
            url = site.base + page.path
            for candidate in (url, canonical_url(url)):
                if unquote(candidate) in by_url:
                    out[page.path] = by_url[unquote(candidate)]
                    break
    return out, time.perf_counter() - start, log


# --------------------------------------------------------------------------- scoring, report


def score(aeb: list[Page], fundus: list[Page], got: dict[str, Fields]) -> dict[str, float]:
    def text(p: Page) -> str:
        return got.get(p.path, {}).get("text") or ""

    def field_(p: Page, name: str) -> Any:
        return got.get(p.path, {}).get(name)

    with_lang = [p for p in fundus if _page_lang(p.html)]
    return {
        "aeb_f1": body_f1([tp_fp_fn(p.body, text(p)) for p in aeb])[0],
        "fundus_f1": body_f1([tp_fp_fn(p.body, text(p)) for p in fundus])[0],
        "title": rate(title_ok(p.title, field_(p, "title")) for p in fundus),
        "date": rate(date_ok(p.published, field_(p, "published")) for p in fundus),
        "author": rate(
            author_ok(p.authors, field_(p, "author")) for p in fundus if p.authors is not None
        ),
        "language": rate(
            (field_(p, "language") or "")[:2] == (_page_lang(p.html) or "")[:2].replace("nb", "no")
            for p in with_lang
        ),
        "coverage": rate(p.path in got for p in aeb + fundus),
    }


def show_misses(aeb: list[Page], fundus: list[Page], got: dict[str, Fields]) -> None:
    for p in aeb:
        f1 = body_f1([tp_fp_fn(p.body, got.get(p.path, {}).get("text") or "")])[0]
        if f1 < 0.8:
            print(f"  body  {f1:.2f}  {p.key[:12]} {p.url}")
    for p in fundus:
        g = got.get(p.path, {})
        f1 = body_f1([tp_fp_fn(p.body, g.get("text") or "")])[0]
        if f1 < 0.8:
            print(f"  body  {f1:.2f}  {p.key}")
        if not title_ok(p.title, g.get("title")):
            print(f"  title {p.key}: want {p.title!r} got {g.get('title')!r}")
        if not date_ok(p.published, g.get("published")):
            print(f"  date  {p.key}: want {p.published} got {g.get('published')}")
        if p.authors is not None and not author_ok(p.authors, g.get("author")):
            print(f"  author {p.key}: want {p.authors} got {g.get('author')!r}")
        if g.get("error"):
            print(f"  error {p.key}: {g['error']}")


def report(columns: list[tuple[str, dict[str, float]]], n_aeb: int, n_fundus: int) -> None:
    """One row per metric, one column per scored output; the first column meets the targets."""
    rows = [
        ("aeb_f1", f"body F1, extraction benchmark ({n_aeb} pages)"),
        ("fundus_f1", f"body F1, fundus ({n_fundus} pages)"),
        ("title", "title match, fundus"),
        ("date", "published within 1 day, fundus"),
        ("author", "author match, fundus"),
        ("language", "language = <html lang>, fundus (info)"),
        ("coverage", "coverage (records / pages)"),
    ]
    print(f"\n{'metric':<42}" + "".join(f" {name:>17}" for name, _ in columns) + "   target")
    for key, label in rows:
        first = columns[0][1][key]
        target = f">= {TARGETS[key]:.2f}" if key in TARGETS else ""
        mark = "" if key not in TARGETS else (" ok" if first >= TARGETS[key] else " MISS")
        values = "".join(f" {scores[key]:>17.3f}" for _, scores in columns)
        print(f"{label:<42}{values}   {target}{mark}")


def timed(
    name: str,
    run: Callable[[list[Page]], tuple[dict[str, Fields], float]],
    aeb: list[Page],
    fundus: list[Page],
) -> tuple[dict[str, Fields], float]:
    """Run on each set; print CPU ms/page overall and per set."""
    got_a, secs_a = run(aeb)
    got_f, secs_f = run(fundus)

    def ms(secs: float, n: int) -> str:
        return f"{secs / max(1, n) * 1000:.1f}"

    print(
        f"{name}: {ms(secs_a + secs_f, len(aeb) + len(fundus))} ms/page CPU "
        f"(extraction benchmark {ms(secs_a, len(aeb))}, fundus {ms(secs_f, len(fundus))})"
    )
    return got_a | got_f, secs_a + secs_f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument("--limit", type=int, default=None, help="first N pages of each set")
    parser.add_argument("--direct", action="store_true", help="score extract_page, no crawl")
    parser.add_argument("--verbose", action="store_true", help="list the pages that miss")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    aeb, fundus = load_aeb(args.data_dir, args.limit), load_fundus(args.data_dir, args.limit)
    pages = aeb + fundus
    print(f"pages: {len(aeb)} extraction benchmark + {len(fundus)} fundus")

    base_got, _ = timed("bare trafilatura", baseline, aeb, fundus)
    if args.direct:
        mode = "direct"
        got, _ = timed("extract_page", direct, aeb, fundus)
    else:
        mode = "pipeline"
        got, secs, log = pipeline(aeb, fundus)
        print(log)
        print(f"crawl + export: {secs:.1f} s for {len(pages)} pages")
    if args.verbose:
        show_misses(aeb, fundus, got)
    columns = [(mode, score(aeb, fundus, got))]
    if not args.direct:  # the same figures over the pages that got a record
        found_aeb = [p for p in aeb if p.path in got]
        found_fundus = [p for p in fundus if p.path in got]
        columns.append(("pipeline, found", score(found_aeb, found_fundus, got)))
    columns.append(("bare trafilatura", score(aeb, fundus, base_got)))
    report(columns, len(aeb), len(fundus))
    print(f"\ntime taken: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
