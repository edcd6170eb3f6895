"""Labelled article pairs for near-duplicate detection, made from real article bodies.

Usage::

    python bench/dedup_data.py DATA_DIR --direct [--sweep] [--seed N] [--show N] [--jsonl FILE]

DATA_DIR is the shared test data folder: the bodies and titles of ``fundus-news/`` (per-publisher
JSON, 2023-2026, many languages) and the annotated bodies of ``article-extraction-benchmark/``
(``ground-truth.json``, 2019, no titles) are the real articles. Bodies under `MIN_WORDS` words
are left out. From each real article (``a``, as its publisher printed it) a copy ``b`` is made:

- ``wrapped``         another outlet's template: a dateline ("WASHINGTON (Reuters) - "), a
                      footer ("Reporting by ...; Editing by ...") and boilerplate lines
- ``trim80``, ``trim60``   the first 80% / 60% of the words
- ``wrapped_trim60``  both: the usual shape of a wire story on a small site
- ``edit5``           5% of the words replaced by words of other articles
- ``retitled``        the same body under a new title (fundus only: the others have no title)
- ``lead_rewrite``    the leading paragraphs (at least a quarter of the words) replaced by other
                      text, the title kept: only the title signal can find some of these
- ``siblings``        a ``trim60`` and an ``edit5`` copy of one article, paired with each other:
                      pairwise they are often not similar enough; a story cluster
                      joins them through the original. Reported, not part of the targets.
- ``real_version``    two versions of one real article found in the data (same title, edited
                      text: fundus de/Taz V1 and V2); the later one is not used otherwise.

All are labelled ``same``. Labelled ``different``:

- ``same_topic``      two real articles sharing a topic word (nato, military, election, ...)
- ``nearest``         the most similar pairs of distinct real articles (by shingle containment)
- ``random``          random pairs of distinct real articles
- ``generic_title``   two real articles under the same generic title ("Live updates: ...")

Copies keep their article's title unless the kind changes it. Articles from the extraction
benchmark have ``title`` None: a pipeline benchmark should give each item a distinct title of
fewer than `crawler.decide.neardup.TITLE_MIN_WORDS` content words ("Item 17"). Every article has a
``key`` unique in the set and a ``source`` (the outlet printing it); a pair's two articles are
meant to be seen within `neardup.TITLE_WINDOW_HOURS` of each other. `build_pairs` makes
the pairs, `unique_articles` lists each article once (to serve them to the real pipeline).

``--direct`` scores `crawler.decide.neardup` on the pairs without the archive, as the archive would
decide: "body" finds a pair if the two share an LSH band key and `same_story` holds;
"body+title" if they share a band key or their `title_key` and `same_story_with_titles` holds.
It prints recall for each ``same`` kind, false positives for each ``different`` kind, and
precision/recall over all pairs; ``--sweep`` adds the body decision at other thresholds.
Targets: precision >= 0.99; recall >= 0.95 on the copies keeping >= 60% of the text.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

from crawler.decide import neardup
from crawler.query import tokenize

MIN_WORDS = 100  # real bodies shorter than this are not used
TARGET_PRECISION = 0.99
TARGET_RECALL = 0.95
# The kinds whose copies keep at least 60% of the text: the recall target applies to them.
TARGET_KINDS = ("wrapped", "trim80", "trim60", "wrapped_trim60", "edit5", "retitled")
INFORMATIONAL_KINDS = ("siblings",)  # labelled same, but not expected to match pairwise

TOPIC_WORDS = (
    "nato",
    "military",
    "militar",
    "election",
    "elections",
    "wahl",
    "ukraine",
    "russia",
    "russland",
    "trump",
    "israel",
    "gaza",
    "china",
    "police",
    "polizei",
    "court",
    "gericht",
    "government",
    "regierung",
    "war",
    "krieg",
    "minister",
    "president",
    "prasident",
    "economy",
)
PAIRS_PER_TOPIC = 60
RANDOM_PAIRS = 1000
NEAREST_PAIRS = 200

DATELINES = (
    "WASHINGTON (Reuters) - ",
    "LONDON (AP) — ",
    "BERLIN, March 3 (dpa) - ",
    "PARIS (AFP) - ",
    "NEW YORK (Bloomberg) -- ",
    "BRUSSELS, Jan 12 (Reuters) - ",
)
FOOTERS = (
    "Reporting by Jane Doe and John Smith; Editing by Mark Heinrich",
    "Reporting by Andreas Rinke; Writing by Miranda Murray; Editing by Alison Williams",
    "(Reporting by Maria Ponnezhath in Bengaluru; Editing by Richard Chang)",
    "Copyright 2024 The Associated Press. All rights reserved. This material may not be "
    "published, broadcast, written or redistributed.",
)
BOILERPLATE = (
    "Our Standards: The Thomson Reuters Trust Principles.",
    "Sign up for our daily newsletter to get the latest headlines in your inbox.",
    "Follow us on Twitter, Facebook and Instagram for breaking news.",
    "Related coverage: more stories from our world desk.",
    "Advertisement",
    "Read more: the latest on this developing story.",
    "Share this article: Facebook Twitter Email",
)
GENERIC_TITLES = (
    "Live updates: the latest news from around the world today",
    "Morning briefing: what you need to know today",
    "Russia-Ukraine war: live updates and latest developments",
    "Letters to the editor",
    "News in brief",
    "Weather forecast: rain and wind expected across the region this weekend",
    "Top stories this week: the headlines you may have missed",
)

Label = Literal["same", "different"]


@dataclass(frozen=True)
class Article:
    key: str  # unique in the set: "<origin>" for a real article, "<origin>#<kind>" for a copy
    source: str  # the outlet printing this version
    title: str | None
    text: str
    origin: str  # the key of the real article it was made from


@dataclass(frozen=True)
class Pair:
    a: Article
    b: Article
    label: Label
    kind: str


# --------------------------------------------------------------------------- real articles


def _fundus_text(body: dict[str, object]) -> str:
    parts: list[str] = []
    summary = body.get("summary") or []
    assert isinstance(summary, list)
    parts.extend(str(p) for p in summary)
    sections = body.get("sections") or []
    assert isinstance(sections, list)
    for section in sections:
        parts.extend(str(h) for h in section.get("headline") or [])
        parts.extend(str(p) for p in section.get("paragraphs") or [])
    return "\n\n".join(p.strip() for p in parts if p and p.strip())


def load_articles(data_dir: Path) -> tuple[list[Article], list[tuple[Article, Article]]]:
    """The distinct real articles of DATA_DIR with at least `MIN_WORDS` words, in a stable
    order, and the pairs of versions of one article (same title) left out of them."""
    found: list[Article] = []
    fundus = data_dir / "fundus-news"
    for entry in json.loads((fundus / "index.json").read_text(encoding="utf-8")):
        expected = json.loads((fundus / entry["expected"]).read_text(encoding="utf-8"))
        record = expected[entry["expected_key"]]
        body = record.get("body")
        if not isinstance(body, dict):
            continue
        key = f"fundus:{entry['id']}"
        found.append(Article(key, entry["publisher"], record.get("title"), _fundus_text(body), key))
    aeb = data_dir / "article-extraction-benchmark" / "ground-truth.json"
    for page_id, record in sorted(json.loads(aeb.read_text(encoding="utf-8")).items()):
        key = f"aeb:{page_id[:16]}"
        host = re.sub(r"^https?://(www\.)?([^/]+).*", r"\2", record.get("url") or "")
        found.append(Article(key, host or "aeb", None, record["articleBody"].strip(), key))
    articles: list[Article] = []
    versions: list[tuple[Article, Article]] = []
    by_text: set[str] = set()
    by_title: dict[str, Article] = {}
    for article in found:
        tokens = neardup.words(article.text)
        normalised = " ".join(tokens)
        if len(tokens) < MIN_WORDS or normalised in by_text:
            continue
        title = " ".join(tokenize(article.title or "")) or article.key
        if title in by_title:  # one article twice (fundus de/Taz V1 and V2: an edit)
            versions.append((by_title[title], article))
            continue
        by_text.add(normalised)
        by_title[title] = article
        articles.append(article)
    return articles, versions


# --------------------------------------------------------------------------- edits


_WORD_RE = re.compile(r"\b[^\W\d_]+\b")  # a word of letters only: one token


def _is_spaced(text: str) -> bool:
    """True if words are separated by spaces (not Chinese or Japanese)."""
    return len(text.split()) * 2 >= len(neardup.words(text))


def _units(text: str) -> list[re.Match[str]]:
    """The words of the text (characters for Chinese and Japanese), with their positions."""
    return list(re.finditer(r"\S+" if _is_spaced(text) else r"\w", text))


def trim(text: str, fraction: float) -> str:
    """The first `fraction` of the words, cut at a word boundary."""
    units = _units(text)
    keep = max(1, round(len(units) * fraction))
    return text[: units[keep - 1].end()]


def edit(text: str, fraction: float, vocabulary: Sequence[str], rng: random.Random) -> str:
    """`fraction` of the words, at random places, replaced by random words of `vocabulary`."""
    units = _units(text)
    chosen = set(rng.sample(range(len(units)), max(1, round(len(units) * fraction))))
    out: list[str] = []
    last = 0
    for i, unit in enumerate(units):
        if i in chosen:
            out.append(text[last : unit.start()])
            out.append(rng.choice(vocabulary))
            last = unit.end()
    out.append(text[last:])
    return "".join(out)


def wrap(text: str, rng: random.Random) -> str:
    """The text in another outlet's template: dateline, footer, boilerplate lines."""
    lines = [rng.choice(DATELINES) + text, "", rng.choice(FOOTERS)]
    lines.extend(rng.sample(BOILERPLATE, 3))
    return "\n".join(lines)


def _paragraphs(text: str) -> list[str]:
    paragraphs = [p for p in re.split(r"\n\s*\n|\n", text) if p.strip()]
    return paragraphs or [text]


def rewrite_lead(text: str, other: str, share: float = 0.25) -> str:
    """The leading paragraphs (at least `share` of the words, at most half) replaced by as many
    words of `other`, another article."""
    paragraphs = _paragraphs(text)
    units = _units(text)
    need = math.ceil(share * len(units))
    replaced = cut = 0
    while cut < len(paragraphs) - 1 and replaced < need:
        replaced += len(_units(paragraphs[cut]))
        cut += 1
    if need <= replaced <= len(units) // 2:
        rest = "\n\n".join(paragraphs[cut:])
    else:  # one long lead paragraph: cut inside it
        replaced = need
        rest = text[units[need].start() :]
    other_units = _units(other)
    lead = other[: other_units[min(replaced, len(other_units)) - 1].end()]
    return f"{lead}\n\n{rest}"


def new_title(article: Article, rng: random.Random) -> str:
    """A different headline made of words from the body."""
    tokens = [t for t in article.text.split() if t.isalpha()]
    start = rng.randrange(max(1, len(tokens) - 8))
    words = tokens[start : start + rng.randint(6, 9)] or ["Update"]
    return " ".join(words).capitalize()


# --------------------------------------------------------------------------- pairs


def build_pairs(data_dir: Path, seed: int = 0) -> list[Pair]:
    """The labelled pairs (deterministic for a seed)."""
    rng = random.Random(seed)
    articles, versions = load_articles(data_dir)
    spaced = {a.key: _is_spaced(a.text) for a in articles}
    spaced_vocab = sorted(
        {w for a in articles if spaced[a.key] for w in _WORD_RE.findall(a.text) if len(w) < 16}
    )
    cjk_vocab = sorted({c for a in articles if not spaced[a.key] for c in a.text if c.isalpha()})
    pairs: list[Pair] = []

    def copy(article: Article, kind: str, text: str, title: str | None = None) -> Article:
        outlet = f"copy-{kind}"
        return Article(
            f"{article.key}#{kind}",
            outlet,
            article.title if title is None else title,
            text,
            article.origin,
        )

    for article in articles:
        vocab = spaced_vocab if spaced[article.key] else cjk_vocab
        alike = [
            o for o in articles if o.key != article.key and spaced[o.key] == spaced[article.key]
        ]
        kinds: dict[str, Article] = {
            "wrapped": copy(article, "wrapped", wrap(article.text, rng)),
            "trim80": copy(article, "trim80", trim(article.text, 0.8)),
            "trim60": copy(article, "trim60", trim(article.text, 0.6)),
            "wrapped_trim60": copy(article, "wrapped_trim60", wrap(trim(article.text, 0.6), rng)),
            "edit5": copy(article, "edit5", edit(article.text, 0.05, vocab, rng)),
        }
        if article.title:
            kinds["retitled"] = copy(
                article, "retitled", article.text, title=new_title(article, rng)
            )
            other = rng.choice(alike)
            kinds["lead_rewrite"] = copy(
                article, "lead_rewrite", rewrite_lead(article.text, other.text)
            )
        for kind, made in kinds.items():
            pairs.append(Pair(article, made, "same", kind))
        pairs.append(Pair(kinds["trim60"], kinds["edit5"], "same", "siblings"))

    pairs.extend(Pair(a, b, "same", "real_version") for a, b in versions)
    pairs.extend(_negatives(articles, rng))
    return pairs


def _negatives(articles: list[Article], rng: random.Random) -> list[Pair]:
    pairs: list[Pair] = []
    used: set[tuple[str, str]] = set()

    def add(a: Article, b: Article, kind: str) -> None:
        ends = (min(a.key, b.key), max(a.key, b.key))
        if a.key != b.key and ends not in used:
            used.add(ends)
            pairs.append(Pair(a, b, "different", kind))

    tokens = {a.key: set(tokenize(a.text)) for a in articles}
    for word in TOPIC_WORDS:
        having = [a for a in articles if word in tokens[a.key]]
        candidates = [(x, y) for i, x in enumerate(having) for y in having[i + 1 :]]
        for x, y in rng.sample(candidates, min(PAIRS_PER_TOPIC, len(candidates))):
            add(x, y, "same_topic")

    sets = {a.key: neardup.shingles(a.text) for a in articles}
    scored = []
    for i, x in enumerate(articles):
        for y in articles[i + 1 :]:
            jaccard, containment = neardup.similarity(sets[x.key], sets[y.key])
            scored.append((max(jaccard, containment), x.key, y.key))
    scored.sort(reverse=True)
    by_key = {a.key: a for a in articles}
    for _, kx, ky in scored[:NEAREST_PAIRS]:
        add(by_key[kx], by_key[ky], "nearest")

    for _ in range(RANDOM_PAIRS):
        x, y = rng.sample(articles, 2)
        add(x, y, "random")

    titled = [a for a in articles if a.title]
    for n, title in enumerate(GENERIC_TITLES):
        for _ in range(10):
            x, y = rng.sample(titled, 2)
            add(
                replace(x, key=f"{x.key}#generic{n}", title=title),
                replace(y, key=f"{y.key}#generic{n}", title=title),
                "generic_title",
            )
    return pairs


def unique_articles(pairs: Sequence[Pair]) -> list[Article]:
    """Every article of the pairs once (by key), in order of first appearance."""
    found: dict[str, Article] = {}
    for pair in pairs:
        found.setdefault(pair.a.key, pair.a)
        found.setdefault(pair.b.key, pair.b)
    return list(found.values())


# --------------------------------------------------------------------------- direct scoring


@dataclass
class Score:
    label: Label
    pairs: int = 0
    found: int = 0
    candidates: int = 0  # pairs sharing an LSH band key
    misses: list[Pair] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.found / self.pairs if self.pairs else 0.0


@dataclass(frozen=True)
class Measured:
    """What the decision needs of a pair, computed once."""

    jaccard: float
    containment: float
    ratio: float  # smaller set / larger set
    lsh: bool  # the two share an LSH band key
    title_key: bool  # equal title keys (the archive's indexed title lookup)
    titles: bool  # titles_match
    decided_body: bool  # LSH candidate and same_story
    decided: bool  # (LSH or title key) candidate and same_story_with_titles


def measure(a: Article, b: Article) -> Measured:
    """The pair as the archive would see it."""
    sa, sb = neardup.sketch(a.text), neardup.sketch(b.text)
    if sa is None or sb is None:
        return Measured(0.0, 0.0, 0.0, False, False, False, False, False)
    jaccard, containment = neardup.similarity(sa.shingles, sb.shingles)
    ratio = min(len(sa.shingles), len(sb.shingles)) / max(len(sa.shingles), len(sb.shingles))
    lsh = bool(set(sa.band_keys) & set(sb.band_keys))
    key_a = neardup.title_key(a.title)
    same_key = key_a is not None and key_a == neardup.title_key(b.title)
    body = lsh and neardup.same_story(sa.shingles, sb.shingles)
    both = (lsh or same_key) and neardup.same_story_with_titles(
        sa.shingles, sb.shingles, a.title, b.title
    )
    titles = neardup.titles_match(a.title, b.title)
    return Measured(jaccard, containment, ratio, lsh, same_key, titles, body, both)


def evaluate_direct(
    pairs: Sequence[Pair], measured: Sequence[Measured], use_title: bool
) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for pair, m in zip(pairs, measured, strict=True):
        score = scores.setdefault(pair.kind, Score(pair.label))
        found = m.decided if use_title else m.decided_body
        score.pairs += 1
        score.found += found
        score.candidates += m.lsh or (use_title and m.title_key)
        if found != (pair.label == "same"):
            score.misses.append(pair)
    return scores


def sweep(pairs: Sequence[Pair], measured: Sequence[Measured]) -> None:
    """Precision and recall of the body decision for other thresholds (tuning)."""
    target = [(p, m) for p, m in zip(pairs, measured, strict=True) if p.kind in TARGET_KINDS]
    every = [
        (p, m)
        for p, m in zip(pairs, measured, strict=True)
        if p.label == "same" and p.kind not in INFORMATIONAL_KINDS
    ]
    negatives = [m for p, m in zip(pairs, measured, strict=True) if p.label == "different"]
    print("\nthresholds (body decision, LSH candidates only):")
    print(
        f"  hardest 'different' pair: jaccard {max(m.jaccard for m in negatives):.2f}, "
        f"containment {max(m.containment for m in negatives):.2f}"
    )
    print(f"  {'jaccard':>8}{'contain.':>9}{'FP':>5}{'precision':>10}{'recall>=60%':>12}{'all':>7}")
    for jaccard in (0.4, 0.45, 0.5, 0.6):
        for containment in (0.6, 0.7, 0.75, 0.8, 0.9):

            def hit(m: Measured, j: float = jaccard, c: float = containment) -> bool:
                ratio_ok = m.ratio >= neardup.CONTAINMENT_MIN_RATIO
                return m.lsh and (m.jaccard >= j or (m.containment >= c and ratio_ok))

            fp = sum(map(hit, negatives))
            tp = sum(hit(m) for _, m in every)
            precision = tp / (tp + fp) if tp + fp else 1.0
            recall = sum(hit(m) for _, m in target) / max(1, len(target))
            print(
                f"  {jaccard:>8}{containment:>9}{fp:>5}{precision:>10.4f}{recall:>12.4f}"
                f"{tp / max(1, len(every)):>7.4f}"
            )


def _totals(scores: dict[str, Score]) -> tuple[float, float, float]:
    """(precision, recall on the target kinds, recall on every "same" kind but siblings)."""
    tp = sum(
        s.found for k, s in scores.items() if s.label == "same" and k not in INFORMATIONAL_KINDS
    )
    fp = sum(s.found for s in scores.values() if s.label == "different")
    target = [s for k, s in scores.items() if k in TARGET_KINDS]
    every = [s for k, s in scores.items() if s.label == "same" and k not in INFORMATIONAL_KINDS]
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall_target = sum(s.found for s in target) / max(1, sum(s.pairs for s in target))
    recall_all = sum(s.found for s in every) / max(1, sum(s.pairs for s in every))
    return precision, recall_target, recall_all


def report(scores: dict[str, Score], title: str, show: int) -> bool:
    print(f"\n{title}")
    print(f"  {'kind':<16}{'label':<11}{'pairs':>6}{'LSH cand.':>11}{'found':>7}  result")
    fp_total = sum(s.found for s in scores.values() if s.label == "different")
    for kind, s in scores.items():
        if s.label == "same":
            precision = s.found / (s.found + fp_total) if s.found + fp_total else 1.0
            note = (
                " (not a target: joined through the cluster)" if kind in INFORMATIONAL_KINDS else ""
            )
            result = f"recall {s.rate:.3f}, precision {precision:.3f}{note}"
        else:
            result = f"false positives {s.found} ({s.rate:.4f})"
        cand = s.candidates / s.pairs if s.pairs else 0.0
        print(f"  {kind:<16}{s.label:<11}{s.pairs:>6}{cand:>11.3f}{s.found:>7}  {result}")
    precision, recall_target, recall_all = _totals(scores)
    ok = precision >= TARGET_PRECISION and recall_target >= TARGET_RECALL
    print(
        f"  precision {precision:.4f} (target {TARGET_PRECISION}); recall on copies keeping"
        f" >= 60% {recall_target:.4f} (target {TARGET_RECALL}); recall on every 'same' kind"
        f" {recall_all:.4f}: {'OK' if ok else 'BELOW TARGET'}"
    )
    shown = 0
    for kind, s in scores.items():
        for pair in s.misses:
            if shown >= show or kind in INFORMATIONAL_KINDS:
                break
            jaccard, containment = neardup.similarity(
                neardup.shingles(pair.a.text), neardup.shingles(pair.b.text)
            )
            print(
                f"    miss {kind}: {pair.a.key} / {pair.b.key}: jaccard {jaccard:.2f}, "
                f"containment {containment:.2f}; titles {pair.a.title!r} / {pair.b.title!r}"
            )
            shown += 1
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", type=Path, help="the shared test data folder")
    parser.add_argument(
        "--direct", action="store_true", help="score crawler.decide.neardup directly"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=10, help="misses to print per decision")
    parser.add_argument("--sweep", action="store_true", help="also try other thresholds")
    parser.add_argument("--jsonl", type=Path, help="write the pairs to this file")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    pairs = build_pairs(args.data_dir, args.seed)
    counts = Counter((p.kind, p.label) for p in pairs)
    origins = len({p.a.origin for p in pairs} | {p.b.origin for p in pairs})
    print(
        f"{len(pairs)} pairs from {origins} real articles in {time.perf_counter() - started:.1f}"
        f" s: " + ", ".join(f"{k} {n}" for (k, _), n in sorted(counts.items()))
    )
    if args.jsonl:
        with args.jsonl.open("w", encoding="utf-8") as out:
            for pair in pairs:
                out.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
        print(f"pairs written to {args.jsonl}")
    if not args.direct:
        return 0
    started = time.perf_counter()
    measured = [measure(p.a, p.b) for p in pairs]
    print(f"measured in {time.perf_counter() - started:.1f} s")
    ok = True
    for use_title, title in (
        (False, "body: LSH candidate and same_story"),
        (True, "body+title: (LSH or title_key) candidate and same_story_with_titles"),
    ):
        ok = report(evaluate_direct(pairs, measured, use_title), title, args.show) and ok
    if args.sweep:
        sweep(pairs, measured)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
