"""Inflection-aware word matching on a labelled set of defence news in 12 languages.

Usage::

    python bench/language.py [DATA_DIR] [--compare] [--verbose] [--repeat N]

The set is ``bench/data/language/``: ``items.jsonl`` holds 361 short news items (a headline and
one or two sentences; en, fr, de, es, it, nl, pl, ro, cs, uk, ru, tr; written for this set) and
the rules each must match: 313 on which the libraries were compared and chosen, and 48
(``"part": "held-out"``, four per language) written after the choice and never used to tune
it. ``rules.toml`` holds the rules: alias sets of the built-in ``crawler/query/aliases.toml``
(``@nato``, ``@air_defence``, ``@patriot``) and single terms in their base form (``missile``,
``ракета``, ``"obrona powietrzna"``, ...). Every rule an item does not name in ``match`` must
not match it (``no_match`` names the decoys it was written to tempt:
"Otani", the New England "Patriots", Italian "nato" = born, Polish "czołgać się" = to crawl,
Russian "ракетка" = a racket); ``ignore`` leaves a rule out of the figures for that item.

A rule matches an item when one of its terms occurs in the title or in the text: each word of
the term and of the item is reduced to a key by a normaliser, in the item's language, and the
term's keys must occur in sequence. The figures are precision and recall over the (item, rule)
pairs, per language, per kind of rule (``@nato``, the air-defence sets, single terms), per part
and overall, for ``crawler.query.forms.normalise`` (target: recall >= 0.95 and precision >= 0.98
overall, no language under 0.90) beside the baseline of the same run: today's matching (case
and accents folded, no inflection).

``--compare`` adds the offline libraries that were measured to choose forms.py: simplemma
(lemmas), Snowball stemmers (PyStemmer; Czech and Polish included, no Ukrainian),
pymorphy3 (Russian and Ukrainian lemmas), each fed the word as written or already folded, and
their speed per word (microseconds, over every word of the set, after the first use has loaded
each language) and installed size. ``--verbose`` lists every miss and false match.

With DATA_DIR (the shared test data folder), also the cost per real article: the title and
body of its 258 ``fundus-news/`` pages (their language by py3langid, as the pipeline guesses
it when a page names none), every word through ``forms.normalise``, milliseconds per article
(mean and p99) with its cache emptied first and again with the cache filled by that first pass,
beside ``tokenize`` alone.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.query import tokenize  # noqa: E402

DATA = ROOT / "bench" / "data" / "language"
ALIASES = ROOT / "crawler" / "query" / "aliases.toml"
TARGET_RECALL = 0.95
TARGET_PRECISION = 0.98
TARGET_FLOOR = 0.90
WORD_RE = re.compile(r"[^\W_]+")

Normaliser = Callable[[str, str], str]  # (word as written, language) -> key


@dataclass(frozen=True)
class Item:
    id: str
    lang: str
    title: str
    text: str
    match: frozenset[str]
    no_match: frozenset[str]
    ignore: frozenset[str]
    part: str  # "tuned" (the libraries were chosen on it) or "held-out" (written afterwards)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load() -> tuple[list[Item], dict[str, list[str]], dict[str, str]]:
    """The items, each rule's terms, and each rule's kind (nato, air defence, term)."""
    items = []
    for line in (DATA / "items.jsonl").read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        items.append(
            Item(
                raw["id"],
                raw["lang"],
                raw["title"],
                raw["text"],
                frozenset(raw["match"]),
                frozenset(raw["no_match"]),
                frozenset(raw.get("ignore", ())),
                raw.get("part", "tuned"),
            )
        )
    aliases = tomllib.loads(ALIASES.read_text(encoding="utf-8"))
    rules: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for name, rule in tomllib.loads((DATA / "rules.toml").read_text(encoding="utf-8"))[
        "rules"
    ].items():
        if "set" in rule:
            rules[name] = list(aliases[rule["set"]]["terms"])
            kinds[name] = "@nato" if rule["set"] == "nato" else "air-defence sets"
        else:
            rules[name] = [rule["term"]]
            kinds[name] = "single terms"
    for item in items:
        unknown = (item.match | item.no_match | item.ignore) - rules.keys()
        if unknown:
            raise SystemExit(f"{item.id} names unknown rules {sorted(unknown)}: fix items.jsonl")
    return items, rules, kinds


def words(text: str) -> list[str]:
    """The words of `text` as written (case and accents kept), split as `tokenize` splits."""
    return WORD_RE.findall(unicodedata.normalize("NFC", text))


def fold(word: str) -> str:
    """Case and accents folded, as the query language does today."""
    return "".join(tokenize(word))


def run(items: list[Item], rules: dict[str, list[str]], normalise: Normaliser) -> list[tuple]:
    """(item, rule, expected, found) for every scored pair."""
    out = []
    for item in items:
        fields = [
            [normalise(w, item.lang) for w in words(part)] for part in (item.title, item.text)
        ]
        for name, terms in rules.items():
            if name in item.ignore:
                continue
            found = any(
                _occurs([normalise(w, item.lang) for w in words(term)], keys)
                for term in terms
                for keys in fields
            )
            out.append((item, name, name in item.match, found))
    return out


def _occurs(phrase: list[str], keys: list[str]) -> bool:
    n = len(phrase)
    return any(keys[i : i + n] == phrase for i in range(len(keys) - n + 1))


def score(pairs: Iterable[tuple], key: Callable[[Item, str], str]) -> dict[str, Score]:
    scores: dict[str, Score] = {}
    for item, name, expected, found in pairs:
        for group in (key(item, name), "all"):
            s = scores.setdefault(group, Score())
            if expected and found:
                s.tp += 1
            elif found:
                s.fp += 1
                s.misses.append(f"false match {name:18} {item.id}: {item.title}")
            elif expected:
                s.fn += 1
                s.misses.append(f"miss        {name:18} {item.id}: {item.title}")
    return scores


# ----------------------------------------------------------------- the normalisers compared


def baseline(word: str, lang: str) -> str:
    return fold(word)


def _simplemma() -> Normaliser:
    import simplemma

    def lemma(word: str, lang: str) -> str:
        return simplemma.lemmatize(word.lower(), lang=lang)

    return lemma


SNOWBALL = {
    "en": "english",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "it": "italian",
    "nl": "dutch",
    "pl": "polish",
    "ro": "romanian",
    "cs": "czech",
    "ru": "russian",
    "tr": "turkish",
}


def _snowball() -> Normaliser:
    import Stemmer  # PyStemmer: the Snowball stemmers in C (snowballstemmer: the same in Python)

    stemmers = {lang: Stemmer.Stemmer(name) for lang, name in SNOWBALL.items()}

    def stem(word: str, lang: str) -> str:
        stemmer = stemmers.get(lang)
        return stemmer.stemWord(word.lower()) if stemmer else word.lower()

    return stem


def _pymorphy(pick: str = "first") -> Normaliser:
    """pymorphy3's lemma: of its most likely parse ("first") or the shortest of all its parses
    ("shortest": Ukrainian "танки" is the plural of both "танк" and "танок")."""
    import pymorphy3

    analysers = {lang: pymorphy3.MorphAnalyzer(lang=lang) for lang in ("ru", "uk")}

    def lemma(word: str, lang: str) -> str:
        analyser = analysers.get(lang)
        if analyser is None:
            return word.lower()
        parses = analyser.parse(word.lower())
        if pick == "first":
            return str(parses[0].normal_form)
        return min((str(p.normal_form) for p in parses), key=lambda f: (len(f), f))

    return lemma


def _then_fold(inner: Normaliser) -> Normaliser:
    return lambda word, lang: fold(inner(word, lang))


def _fold_first(inner: Normaliser) -> Normaliser:
    return lambda word, lang: fold(inner(fold(word), lang))


def _caps_kept(inner: Normaliser) -> Normaliser:
    """An all-capitals word of two or more letters (NATO, OTAN, ППО) is folded only."""
    return lambda word, lang: fold(word) if len(word) > 1 and word.isupper() else inner(word, lang)


def _per_language(default: Normaliser, **special: Normaliser) -> Normaliser:
    return lambda word, lang: special.get(lang, default)(word, lang)


def _stemmed(lemma: Normaliser, stem: Normaliser) -> Normaliser:
    return lambda word, lang: stem(lemma(word, lang), lang)


def compared() -> dict[str, Normaliser]:
    """The libraries alone (as written, folded first, all-capitals words kept), then the
    combinations that were tried to close their gaps."""
    libraries: dict[str, Normaliser] = {}
    makers = (("simplemma", _simplemma), ("snowball", _snowball), ("pymorphy3", _pymorphy))
    for name, make in makers:
        try:
            libraries[name] = make()
        except ImportError:
            print(f"({name} is not installed: left out of the comparison)")
    out: dict[str, Normaliser] = {}
    for name, library in libraries.items():
        out[f"{name}, word as written"] = _then_fold(library)
        out[f"{name}, word folded first"] = _fold_first(library)
        out[f"{name}, as written, capitals kept"] = _caps_kept(_then_fold(library))
    if len(libraries) == len(makers):
        lemma, stem = libraries["simplemma"], libraries["snowball"]
        uk_shortest = _pymorphy("shortest")
        out["simplemma; uk: pymorphy3 (first parse)"] = _then_fold(
            _per_language(lemma, uk=libraries["pymorphy3"])
        )
        out["simplemma; uk: pymorphy3 (shortest lemma)"] = _then_fold(
            _per_language(lemma, uk=uk_shortest)
        )
        out["simplemma then Snowball; uk: pymorphy3 (shortest)"] = _then_fold(
            _per_language(_stemmed(lemma, stem), uk=uk_shortest)
        )
    return out


DISTRIBUTIONS = {
    "simplemma": ("simplemma",),
    "snowball": ("PyStemmer",),
    "pymorphy3": ("pymorphy3", "pymorphy3-dicts-ru", "pymorphy3-dicts-uk", "dawg2-python"),
}


def installed_mib(names: Iterable[str]) -> float | None:
    total = 0
    for name in names:
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            return None
        total += sum(f.size or 0 for f in files)
    return total / 2**20


def speed(normalise: Normaliser, items: list[Item], repeat: int) -> float:
    """Microseconds per word over every word of the set (title and text, all languages)."""
    stream = [(w, item.lang) for item in items for w in words(f"{item.title} {item.text}")]
    for w, lang in stream:  # the first use of a language loads its data
        normalise(w, lang)
    start = time.perf_counter()
    for _ in range(repeat):
        for w, lang in stream:
            normalise(w, lang)
    return (time.perf_counter() - start) / (repeat * len(stream)) * 1e6


# ----------------------------------------------------------------- report


def report(title: str, pairs: list[tuple], kinds: dict[str, str], verbose: bool) -> bool:
    """Print the figures of one normaliser; True if it meets the targets."""
    by_lang = score(pairs, lambda item, _name: item.lang)
    by_kind = score(pairs, lambda _item, name: kinds[name])
    by_part = score(pairs, lambda item, _name: f"part: {item.part}")
    overall = by_lang["all"]
    print(f"\n== {title}")
    print(f"{'':18}{'precision':>10}{'recall':>8}{'tp':>6}{'fp':>5}{'fn':>5}")
    for group, s in [*sorted(by_lang.items()), *sorted(by_kind.items()), *sorted(by_part.items())]:
        if group != "all":
            print(f"{group:18}{s.precision:10.3f}{s.recall:8.3f}{s.tp:6}{s.fp:5}{s.fn:5}")
    print(
        f"{'overall':18}{overall.precision:10.3f}{overall.recall:8.3f}"
        f"{overall.tp:6}{overall.fp:5}{overall.fn:5}"
    )
    if verbose:
        for line in overall.misses:
            print("   ", line)
    langs = [s for group, s in by_lang.items() if group != "all"]
    return (
        overall.recall >= TARGET_RECALL
        and overall.precision >= TARGET_PRECISION
        and min(min(s.recall, s.precision) for s in langs) >= TARGET_FLOOR
    )


def article_cost(data: Path) -> None:
    """Milliseconds per real article for `tokenize` and for normalising every word."""
    import py3langid
    from extraction import fundus_body

    from crawler.query.forms import normalise, supported

    folder = data / "fundus-news"
    articles = []
    for row in json.loads((folder / "index.json").read_text(encoding="utf-8")):
        expected = json.loads((folder / row["expected"]).read_text(encoding="utf-8"))
        expected = expected[row["expected_key"]]
        text = f"{expected.get('title') or ''}\n\n{fundus_body(expected.get('body') or {})}"
        articles.append((text, str(py3langid.classify(text)[0])))
    langs = sorted({lang for _, lang in articles})
    for lang in langs:  # dictionaries loaded before the clock starts
        normalise("x", lang)
    covered = sum(supported(lang) for _, lang in articles)
    count = sum(len(words(text)) for text, _ in articles)
    print(
        f"\n{len(articles)} real articles ({covered} in a language forms reduces), "
        f"{count / len(articles):.0f} words each on average"
    )

    def clock(work: Callable[[str, str], object]) -> list[float]:
        out = []
        for text, lang in articles:
            start = time.perf_counter()
            work(text, lang)
            out.append((time.perf_counter() - start) * 1e3)
        return sorted(out)

    base = clock(lambda text, _lang: tokenize(text))
    normalise.cache_clear()
    cold = clock(lambda text, lang: [normalise(w, lang) for w in words(text)])
    warm = clock(lambda text, lang: [normalise(w, lang) for w in words(text)])
    for name, ms in (
        ("tokenize alone (baseline)", base),
        ("forms, cache emptied", cold),
        ("forms, cache filled", warm),
    ):
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
        print(f"  {name:28} mean {sum(ms) / len(ms):6.2f} ms   p99 {p99:6.2f} ms per article")


def _rss_mib() -> float:
    """This process's resident memory (Linux), MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * 4096 / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, help="DATA_DIR: adds the cost per article")
    parser.add_argument("--compare", action="store_true", help="also the libraries measured")
    parser.add_argument("--verbose", action="store_true", help="list misses and false matches")
    parser.add_argument("--repeat", type=int, default=3, help="passes for the speed figure")
    args = parser.parse_args(argv)
    items, rules, kinds = load()
    langs = sorted({item.lang for item in items})
    pairs = sum(len(rules.keys() - item.ignore) for item in items)
    print(
        f"{len(items)} items in {len(langs)} languages ({', '.join(langs)}), {len(rules)} rules,"
        f" {pairs} scored (item, rule) pairs"
    )
    candidates: dict[str, Normaliser] = {"baseline: case and accents folded": baseline}
    try:
        from crawler.query.forms import normalise
    except ImportError:  # an older tree: the libraries alone
        normalise = None  # type: ignore[assignment]
    if normalise is not None:
        candidates["crawler.query.forms.normalise"] = normalise
    if args.compare:
        candidates.update(compared())
    met = {}
    for name, normaliser in candidates.items():
        if normaliser is normalise:
            rss, start = _rss_mib(), time.perf_counter()
            for lang in langs:  # the first use of a language loads its dictionary
                normalise("x", lang)
            took = time.perf_counter() - start
            print(
                f"\nforms: first use of the {len(langs)} languages {took:.2f} s,"
                f" memory +{_rss_mib() - rss:.0f} MiB (RSS)"
            )
        met[name] = report(name, run(items, rules, normaliser), kinds, args.verbose)
        print(f"speed: {speed(normaliser, items, args.repeat):.2f} us per word")
        if normaliser is normalise:
            uncached = normalise.__wrapped__
            print(f"speed, cache off: {speed(uncached, items, args.repeat):.2f} us per word")
    if args.data is not None and normalise is not None:
        article_cost(args.data)
    if args.compare:
        print()
        for library, dists in DISTRIBUTIONS.items():
            size = installed_mib(dists)
            shown = "not installed" if size is None else f"{size:.1f} MiB"
            print(f"installed size of {library} ({', '.join(dists)}): {shown}")
    print(
        f"\ntarget: recall >= {TARGET_RECALL}, precision >= {TARGET_PRECISION} overall, "
        f"every language >= {TARGET_FLOOR}"
    )
    for name, ok in met.items():
        print(f"  {'meets' if ok else 'misses':6} {name}")
    if normalise is None:
        return 0
    return 0 if met["crawler.query.forms.normalise"] else 1


if __name__ == "__main__":
    sys.exit(main())
