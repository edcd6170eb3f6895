"""Matching articles against many rules: the rule index (crawler.query.matcher) vs the naive loop.

Usage::

    python bench/matching.py DATA_DIR [--quick] [--seed N] [--no-crawl]

DATA_DIR is the shared test data folder. The article texts are the expected fields of its
``fundus-news/`` pages (title, summary, body) and the ground-truth ``articleBody`` of its
``article-extraction-benchmark/`` pages: no extraction, only matching is measured.

Rules are generated in the query language with a fixed seed: terms, phrases, prefixes, NOT,
NEAR, title:, AND/OR and parentheses, over words and phrases taken from the articles (so some
rules match) and defence/NATO words. For 10, 100, 1,000 and 10,000 rules (the first N of one
generated list), every article is matched by ``RuleIndex.match`` and by the naive loop (every
rule's ``query.matches``), each in its own pass over the articles, in the same run: CPU time
per article (thread time, which other processes on a shared machine disturb less than the
wall clock) p50 and p99, speed-up at p50, candidates and matching rules per article, and
whether the answers are the same on every article (the exit status is 1 if not). "floor" is
the time of ``query.matches`` on the matching rules alone: any matcher that gives the same
answers through ``query.matches`` pays it.

The Document is built once per article, as the pipeline does, and counted apart: tokenising
(``Document.from_fields``) and its word sets (built on the first lookup). Each matcher gets
its own copy of the Document with the word sets built and no other cache, so the figures are
matching only; what a phrase, prefix or NEAR needs (the fields as strings, positions) is built
during matching and counted in it. At the largest size, the index's time is split into finding
the candidates and evaluating them.

Then, unless ``--no-crawl`` (or ``--quick``), the whole cron pass: a real `newswatch crawl` of
500 new items under 10 and 10,000 rules, the ratio, and where its time goes: config load, query
parsing, index build, matching (``bench/matching_crawl.py``).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from crawler.model import Rule
from crawler.query import Document, QueryError, Term, parse
from crawler.query.aliases import builtin_sets
from crawler.query.matcher import RuleIndex

SIZES = (10, 100, 1_000, 10_000)
QUICK_SIZES = (10, 100, 1_000)
QUICK_ARTICLES = 80
TARGET_P50_MS = 1.0  # at 10,000 rules, at most
TARGET_SPEEDUP = 20.0  # at 10,000 rules, at p50

T = TypeVar("T")

_DEFENCE_WORDS = """
    nato otan defence defense military army navy troops missile missiles drone drones ukraine
    russia russian kremlin pentagon bundeswehr rheinmetall patriot artillery ammunition tank
    tanks warship submarine nuclear sanctions ceasefire putin zelensky kyiv moscow brussels
    alliance summit stoltenberg rutte soldiers weapons arms airspace radar jets fighter
    pistorius verteidigung ruestung rustung armee krieg waffen sicherheit
"""
DEFENCE_WORDS = _DEFENCE_WORDS.split()
DEFENCE_PHRASES = [
    "air defence",
    "air defense",
    "IRIS-T",
    "F-35",
    "eastern flank",
    "defence spending",
    "article 5",
    "cyber attack",
    "arms deal",
    "two percent",
]


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Article:
    key: str
    title: str | None
    summary: str | None
    text: str


def load_articles(data: Path) -> list[Article]:
    """The expected fields of the fundus pages and the ground truth of the extraction benchmark."""
    articles = []
    folder = data / "fundus-news"
    for row in json.loads((folder / "index.json").read_text(encoding="utf-8")):
        expected = json.loads((folder / row["expected"]).read_text(encoding="utf-8"))
        fields: dict[str, Any] = expected[row["expected_key"]]
        body = fields.get("body") or {}
        parts: list[str] = []
        for section in body.get("sections") or []:
            parts += list(section.get("headline") or []) + list(section.get("paragraphs") or [])
        summary = "\n\n".join(body.get("summary") or []) or None
        articles.append(Article(row["id"], fields.get("title"), summary, "\n\n".join(parts)))
    folder = data / "article-extraction-benchmark"
    truth = json.loads((folder / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(truth):
        articles.append(Article(key, None, None, truth[key]["articleBody"]))
    return articles


# --------------------------------------------------------------------------- rules


class RuleMaker:
    """Rules in the query language over the articles' own words and defence words."""

    def __init__(self, docs: Sequence[Document], seed: int, sets: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.docs = docs
        self.sets = sets  # the share of terms written as a built-in alias set, @name
        self.set_names = sorted(builtin_sets())
        frequency: Counter[str] = Counter()
        for doc in docs:
            frequency.update(set(doc.title) | set(doc.body))
        # Words a rule would name: not the commonest (in over 10% of the articles), seen at
        # least twice, four letters or more.
        ceiling = max(2, len(docs) // 10)
        self.words = sorted(
            w for w, n in frequency.items() if 2 <= n <= ceiling and len(w) >= 4 and not w.isdigit()
        )
        self.long_words = [w for w in self.words if len(w) >= 7]

    def word(self) -> str:
        if self.rng.random() < 0.3:
            return self.rng.choice(DEFENCE_WORDS)
        return self.rng.choice(self.words)

    def phrase(self) -> str:
        if self.rng.random() < 0.3:
            return f'"{self.rng.choice(DEFENCE_PHRASES)}"'
        for _ in range(100):  # two or three words in a row from an article
            doc = self.rng.choice(self.docs)
            tokens = doc.title if doc.title and self.rng.random() < 0.3 else doc.body
            if len(tokens) < 3:
                continue
            at = self.rng.randrange(len(tokens) - 2)
            words = tokens[at : at + self.rng.choice((2, 2, 3))]
            if any(len(w) >= 5 for w in words):
                return '"' + " ".join(words) + '"'
        return f'"{self.rng.choice(DEFENCE_PHRASES)}"'

    def prefix(self) -> str:
        word = self.rng.choice(self.long_words)
        return word[: self.rng.randint(4, len(word) - 1)] + "*"

    def term(self) -> str:
        term = self.rng.choices([self.word, self.phrase, self.prefix], [6, 2, 1])[0]()
        if self.sets and self.rng.random() < self.sets:
            return "@" + self.rng.choice(self.set_names)
        return term

    def any_of(self) -> str:
        return "(" + " OR ".join(self.term() for _ in range(self.rng.randint(2, 4))) + ")"

    def rule(self) -> str:
        r = self.rng
        shape = r.choices(range(11), [12, 14, 10, 10, 8, 8, 6, 6, 6, 0.06, 0.04])[0]
        if shape == 0:
            return self.term()
        if shape == 1:
            return f"{self.term()} {r.choice(['', 'AND '])}{self.term()}"
        if shape == 2:
            return " OR ".join(self.term() for _ in range(r.randint(2, 4)))
        if shape == 3:
            return f"{self.any_of()} AND {self.term()}"
        if shape == 4:
            return f"{self.term()} AND NOT {self.term()}"
        if shape == 5:
            terms = " ".join(self.term() for _ in range(r.randint(2, 3)))
            return f"NEAR({terms}, {r.choice([3, 5, 10, 20])})"
        if shape == 6:
            inner = self.term() if r.random() < 0.6 else self.any_of()
            return f"title:{inner}"
        if shape == 7:
            return f"{self.any_of()} {self.any_of()} NOT {self.any_of()}"
        if shape == 8:
            return f"title:{self.term()} OR NEAR({self.term()} {self.term()})"
        if shape == 9:
            return f"NOT {self.any_of()}"  # no anchors: evaluated on every article
        return f"{self.term()} OR NOT {self.term()}"  # no anchors either

    def rules(self, count: int) -> list[Rule]:
        rules: list[Rule] = []
        while len(rules) < count:
            text = self.rule()
            try:
                query = parse(text)
            except QueryError:  # pragma: no cover - the generator writes valid queries
                continue
            rules.append(Rule(f"rule-{len(rules)}", text, query, notify=("log",)))
        return rules


# --------------------------------------------------------------------------- timing


def ms(ns: float) -> float:
    return ns / 1e6


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def prepared(doc: Document) -> Document:
    """A copy of `doc` with empty caches and its word sets built."""
    copy = Document(doc.title, doc.body, doc.summary_length)
    copy.occurs(Term("word", ("",)))  # builds the title and body word sets
    return copy


def naive(rules: Sequence[Rule], doc: Document) -> list[tuple[Rule, list[str]]]:
    found = []
    for rule in rules:
        terms = rule.query.matches(doc)
        if terms is not None:
            found.append((rule, terms))
    return found


def each(docs: Sequence[Document], call: Callable[[Document], T]) -> tuple[list[T], list[int]]:
    """`call` on a fresh copy of each article (word sets built), and its CPU time."""
    copies = [prepared(doc) for doc in docs]
    gc.collect()
    results: list[T] = []
    times: list[int] = []
    for doc in copies:
        started = time.thread_time_ns()
        results.append(call(doc))
        times.append(time.thread_time_ns() - started)
    return results, times


def run_size(rules: list[Rule], docs: list[Document]) -> dict[str, Any]:
    """Each matcher in its own pass over the articles, then the answers compared."""
    gc.collect()
    started = time.thread_time_ns()
    index = RuleIndex(rules)
    build_ns = time.thread_time_ns() - started
    got, fast = each(docs, index.match)
    expected, slow = each(docs, lambda doc: naive(rules, doc))
    same = all(
        [(id(r), t) for r, t in one] == [(id(r), t) for r, t in two]
        for one, two in zip(got, expected, strict=True)
    )
    matching = iter([[r.query for r, _ in found] for found in expected])
    _, floor = each(docs, lambda doc: [q.matches(doc) for q in next(matching)])
    candidates, finding = each(docs, index.candidates)
    return {
        "rules": len(rules),
        "build_ms": ms(build_ns),
        "always": len(index.always),
        "fast_p50": ms(percentile(fast, 50)),
        "fast_p99": ms(percentile(fast, 99)),
        "slow_p50": ms(percentile(slow, 50)),
        "slow_p99": ms(percentile(slow, 99)),
        "floor_p50": ms(percentile(floor, 50)),
        "finding_p50": ms(percentile(finding, 50)),
        "candidates": sum(map(len, candidates)) / len(docs),
        "matches": sum(map(len, expected)) / len(docs),
        "same": same,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument("--quick", action="store_true", help="fewer articles and rules")
    parser.add_argument("--seed", type=int, default=20240501, help="seed of the rule generator")
    parser.add_argument(
        "--no-crawl", action="store_true", help="skip the whole `crawl` at 10 vs 10,000 rules"
    )
    parser.add_argument(
        "--sets",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="also match the largest size with this share of terms written as built-in alias "
        "sets (@nato, ...), beside the same rules without them",
    )
    args = parser.parse_args(argv)
    run_started = time.perf_counter()

    articles = load_articles(args.data_dir)
    if args.quick:
        articles = random.Random(args.seed).sample(articles, min(QUICK_ARTICLES, len(articles)))
    docs: list[Document] = []
    tokenise: list[int] = []
    positions: list[int] = []
    for article in articles:
        begun = time.thread_time_ns()
        doc = Document.from_fields(article.title, article.summary, article.text)
        tokenise.append(time.thread_time_ns() - begun)
        docs.append(doc)
        begun = time.thread_time_ns()
        prepared(doc)
        positions.append(time.thread_time_ns() - begun)
    tokens = statistics.median(len(d.title) + len(d.body) for d in docs)
    print(f"articles: {len(docs)} (median {tokens:.0f} tokens)")
    print(
        f"Document per article (counted apart from matching): tokenise p50 "
        f"{ms(percentile(tokenise, 50)):.2f} ms, word sets p50 "
        f"{ms(percentile(positions, 50)):.2f} ms"
    )

    sizes = QUICK_SIZES if args.quick else SIZES
    maker = RuleMaker(docs, args.seed)
    all_rules = maker.rules(max(sizes))
    print(f"rule vocabulary: {len(maker.words)} article words + {len(DEFENCE_WORDS)} defence words")
    print("sample rules:")
    for rule in all_rules[:10]:
        print(f"  {rule.query_text}")

    print(
        f"\n{'rules':>6} {'build ms':>9} {'always':>6} {'cands/art':>9} {'hits/art':>8} "
        f"{'index p50':>9} {'p99':>7} {'naive p50':>9} {'p99':>7} {'speed-up':>8} "
        f"{'floor p50':>9}  same"
    )
    results = []
    for size in sizes:
        r = run_size(all_rules[:size], docs)
        results.append(r)
        print(
            f"{r['rules']:>6} {r['build_ms']:>9.1f} {r['always']:>6} {r['candidates']:>9.1f} "
            f"{r['matches']:>8.2f} {r['fast_p50']:>9.3f} {r['fast_p99']:>7.3f} "
            f"{r['slow_p50']:>9.3f} {r['slow_p99']:>7.3f} "
            f"{r['slow_p50'] / r['fast_p50']:>7.1f}x {r['floor_p50']:>9.3f}  "
            f"{'yes' if r['same'] else 'NO'}"
        )
    print(
        "times: CPU ms per article (thread time). floor: query.matches of the matching rules\n"
        "alone, which any matcher giving the same answers pays."
    )
    same = all(r["same"] for r in results)
    print(f"\nsame answers: {'yes' if same else 'no'} (every article, every size)")

    largest = results[-1]
    if largest["rules"] < max(SIZES):
        print(f"(targets are for {max(SIZES):,} rules: run without --quick)")
    else:
        speedup = largest["slow_p50"] / largest["fast_p50"]
        p50_ok = largest["fast_p50"] <= TARGET_P50_MS
        speed_ok = speedup >= TARGET_SPEEDUP
        print(
            f"at {largest['rules']:,} rules: index p50 {largest['fast_p50']:.3f} ms "
            f"(target <= {TARGET_P50_MS} ms: {'met' if p50_ok else 'MISSED'}); "
            f"speed-up {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x: "
            f"{'met' if speed_ok else 'MISSED'})"
        )
        print(
            f"where the index's p50 goes: finding the candidates {largest['finding_p50']:.3f} ms, "
            f"evaluating them the rest (of it {largest['floor_p50']:.3f} ms on the "
            f"{largest['matches']:.0f} rules that match: the floor)"
        )
    if args.sets:
        aliased = RuleMaker(docs, args.seed, args.sets).rules(largest["rules"])
        named = sum("@" in rule.query_text for rule in aliased)
        r = run_size(aliased, docs)
        same = same and r["same"]
        print(
            f"\nwith alias sets: {named:,} of {len(aliased):,} rules name a set (share of terms "
            f"{args.sets}); index p50 {r['fast_p50']:.3f} ms (p99 {r['fast_p99']:.3f}), "
            f"{r['candidates']:.1f} candidates, {r['matches']:.2f} hits per article, build "
            f"{r['build_ms']:.0f} ms, same answers: {'yes' if r['same'] else 'NO'}; "
            f"without sets (above): index p50 {largest['fast_p50']:.3f} ms, build "
            f"{largest['build_ms']:.0f} ms; ratio {r['fast_p50'] / largest['fast_p50']:.2f}"
        )
    print(f"time taken: {time.perf_counter() - run_started:.1f} s")
    crawled = True
    if not (args.no_crawl or args.quick):
        from matching_crawl import crawl_figure

        print()
        crawled = crawl_figure(args.data_dir, seed=args.seed)
    return 0 if same and crawled else 1


if __name__ == "__main__":
    sys.exit(main())
