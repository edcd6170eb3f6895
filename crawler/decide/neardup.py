"""Near-duplicate articles (docs/how-it-decides.md): copies of one story across outlets (pure).

Wire copy re-wrapped in another outlet's template, trimmed, or lightly edited is the same
story. docs/benchmarks.md ("Same article, same story") has the measurements behind the method::

    text --tokenize--> words --5-shingles--> set of 64-bit hashes        shingles()
         --MinHash, 128 permutations-->  128 uint32 values                signature()
         --LSH, 42 bands x 3 rows-->     42 signed 64-bit band keys       band_keys()

An archive keeps every article's band keys in an indexed table and its shingles in a blob
(`SCHEMA_SQL`). A new article's candidates are the articles sharing at least one band key with
it; a candidate is a copy only if the exact sets agree (`same_story`): Jaccard >= 0.5, or
containment (|a & b| / the smaller set) >= 0.65 when the smaller text is at least a quarter of
the larger. (0.65, not 0.8: a trimmed and an edited copy of one wire story share about 0.7-0.8
of the trimmed one's shingles, and arriving in separate passes before the original they must
still form one story; the hardest different-story pair of the labelled set, `bench/dedup_data.py
--direct --sweep`, has containment 0.27.) Lead-only rewrites (a new first paragraph on the
same story) need the title as well (`same_story_with_titles`): matching titles
(`titles_match`; `title_key` is its exact form, to look up) and a weaker body overlap, within a
time window (`TITLE_WINDOW_HOURS`).

**Too short.** A text of fewer than `MIN_TOKENS` words has no shingles (`shingles` returns an
empty set, `sketch` returns None): feed teasers and paywall stubs are one or two sentences
(26 real news feeds: median 21 words, 90% <= 36, 95% <= 50), and identical stubs under
unrelated items would otherwise join them into one story. Such an article takes part in exact
identity only (URL, guid, `crawler.decide.fingerprint`).

**LSH S-curve.** With b bands of r rows, two articles whose shingle sets have Jaccard s share
at least one band key with probability ``1 - (1 - s**r)**b`` (`candidate_probability`).
128 = 2**7 offers only 64x2 (threshold (1/b)**(1/r) = 0.13: too many candidates from shared
boilerplate) or 32x4 (0.42: misses trimmed copies, whose Jaccard is 0.3-0.45 though their
containment is 1). 42 bands of 3 rows put the threshold at 0.29 and use 126 of the 128
permutations (the last two are computed, and stored in no band)::

    s      0.05   0.1    0.2    0.3    0.4    0.5    0.6    0.8
    P      0.005  0.041  0.286  0.683  0.938  0.996  1.000  1.000

**The lead.** A trimmed copy and a lightly edited copy of one story often have a Jaccard of
only 0.35-0.45 (the trimmed one lacks the end; the edits break 5-shingles throughout), where
the S-curve gives a pair a 5-15% chance of sharing no band key. Their leads (the first
`LEAD_SHINGLES` shingles, about 100 words) agree far more (Jaccard 0.55-0.65), so each sketch
also holds the band keys of its lead's MinHash (`Sketch.lead_keys`, salted apart from the
whole text's keys): a candidate is an article sharing a band key of either. Candidates are
still verified on the whole shingle sets, so the lead changes which pairs are looked at, never
what counts as one story.

**Stability.** Band keys and shingle blobs are stored, so every constant (token hash, shingle
mixing, the 128 permutations, the band salts) is derived from BLAKE2b of fixed labels and the
arithmetic is explicit uint32/uint64 wrap-around: the same text gives the same keys in every
process, on every platform, with every numpy version (neither Python's ``hash()`` nor a
library's random generator is involved). Changing any of it requires re-indexing the archive:
bump `VERSION`.

Use (the archive, in one transaction per article)::

    sk = sketch(text)                  # None: too short, no near-duplicate detection
    candidates = SELECT DISTINCT article_id FROM lsh_bands WHERE band_key IN (<sk.band_keys>)
        plus the articles with the same title_key(title) first seen within TITLE_WINDOW_HOURS
    for each candidate, unless its story matched already:
        theirs = decode_shingles(SELECT data FROM article_shingles WHERE article_id = ?)
        same_story_with_titles(sk.shingles, theirs, title, their title) within the window,
        same_story(sk.shingles, theirs) outside it  ->  its story matched
    INSERT INTO lsh_bands (band_key, article_id) VALUES (?, new_id) for each of sk.band_keys
    INSERT INTO article_shingles (article_id, data) VALUES (new_id, encode_shingles(sk.shingles))

An edited article first deletes its old rows: ``DELETE FROM lsh_bands WHERE article_id = ? AND
band_key IN (<band keys of its old stored shingles>)``.

Stories are clusters: when the new article matches members of several stories, they merge
(see `merge_target`), whatever order the copies arrive in.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from crawler.query import tokenize

__all__ = [
    "BANDS",
    "CONTAINMENT",
    "CONTAINMENT_MIN_RATIO",
    "JACCARD",
    "LEAD_SHINGLES",
    "MIN_TOKENS",
    "PERMUTATIONS",
    "ROWS",
    "SCHEMA_SQL",
    "SCHEMA_STATEMENTS",
    "SHINGLE",
    "TITLE_CONTAINMENT",
    "TITLE_JACCARD",
    "TITLE_MIN_WORDS",
    "TITLE_WINDOW_HOURS",
    "VERSION",
    "Sketch",
    "band_keys",
    "candidate_probability",
    "decode_keys",
    "decode_shingles",
    "encode_keys",
    "encode_shingles",
    "merge_target",
    "same_story",
    "same_story_with_titles",
    "shingles",
    "signature",
    "similarity",
    "sketch",
    "title_key",
    "titles_match",
    "words",
]

VERSION = 1  # of the hashing scheme: stored band keys and blobs are only valid for the same one

SHINGLE = 5  # words per shingle
PERMUTATIONS = 128  # MinHash values per signature
BANDS, ROWS = 42, 3  # LSH: 126 of the 128 values; candidate threshold (1/42)**(1/3) = 0.29
MIN_TOKENS = 10 * SHINGLE  # fewer words: no shingles (see "Too short" above)
LEAD_SHINGLES = 100  # the lead: the text's first shingles, banded apart (see "The lead")

JACCARD = 0.5  # same story when the shingle sets' Jaccard reaches this ...
CONTAINMENT = 0.65  # ... or this share of the smaller set is in the larger one,
CONTAINMENT_MIN_RATIO = 0.25  # provided the smaller set is at least this share of the larger

TITLE_MIN_WORDS = 4  # content words (stopwords and one-letter tokens dropped) a title needs
TITLE_JACCARD = 0.8  # content-word Jaccard for two titles to match
TITLE_WINDOW_HOURS = 48  # the title signal links articles first seen at most this far apart
TITLE_CONTAINMENT = 0.4  # ... and whose bodies share at least this share of the smaller set

Signature = npt.NDArray[np.uint32]

# --------------------------------------------------------------------------- schema

SCHEMA_STATEMENTS: tuple[str, ...] = (
    # One row per (band key, article); the primary key IS the index (WITHOUT ROWID): a lookup
    # is one B-tree search per key, a row costs ~20 bytes on disk (BANDS rows an article: 82 MB
    # at 100,000 articles). On PostgreSQL drop "WITHOUT ROWID"; nothing else changes. An
    # article's rows are found again by recomputing its keys from its stored shingles
    # (band_keys(signature(decode_shingles(data)))), so no index on article_id is needed.
    """CREATE TABLE IF NOT EXISTS lsh_bands (
    band_key INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    PRIMARY KEY (band_key, article_id)
) WITHOUT ROWID""",
    # The exact shingle set of every article that has a sketch (encode_shingles), to verify
    # candidates without re-reading and re-tokenising their text.
    """CREATE TABLE IF NOT EXISTS article_shingles (
    article_id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
)""",
)
SCHEMA_SQL = ";\n".join(SCHEMA_STATEMENTS) + ";\n"


# --------------------------------------------------------------------------- constants

_U64 = np.uint64


def _constant(label: str) -> int:
    """A fixed 64-bit constant: BLAKE2b of a label (never changes between processes)."""
    digest = hashlib.blake2b(f"newswatch.neardup.v{VERSION}:{label}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


# Shingle hash: sum of token hashes times per-position odd multipliers (mod 2**64), mixed.
_POSITION = np.array([_constant(f"position-{j}") | 1 for j in range(SHINGLE)], dtype=_U64)
# MinHash permutation i of the 32-bit shingle value x: (A[i] * x + B[i]) mod 2**32, a bijection.
_PERM_A = np.array(
    [(_constant(f"minhash-a-{i}") & 0xFFFFFFFF) | 1 for i in range(PERMUTATIONS)], dtype=np.uint32
)
_PERM_B = np.array(
    [_constant(f"minhash-b-{i}") & 0xFFFFFFFF for i in range(PERMUTATIONS)], dtype=np.uint32
)
_BAND_SALT = np.array([_constant(f"band-{i}") for i in range(BANDS)], dtype=_U64)
_LEAD_SALT = np.array([_constant(f"lead-band-{i}") for i in range(BANDS)], dtype=_U64)
_FMIX_1 = _U64(0xFF51AFD7ED558CCD)
_FMIX_2 = _U64(0xC4CEB9FE1A85EC53)
_BLOCK = 32  # permutations per numpy pass in signature(): keeps the scratch array in cache


def _fmix64(k: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """MurmurHash3's 64-bit finaliser, element-wise (a bijection with full avalanche)."""
    k = k ^ (k >> _U64(33))
    k *= _FMIX_1
    k ^= k >> _U64(33)
    k *= _FMIX_2
    k ^= k >> _U64(33)
    return k


# --------------------------------------------------------------------------- shingles

# Chinese and Japanese are written without spaces: `tokenize` returns whole clauses there, so
# each ideograph or kana becomes a token of its own (5-character shingles).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
_CJK_RE = re.compile(f"[{_CJK}]")
_CJK_SPLIT_RE = re.compile(f"[{_CJK}]|[^{_CJK}]+")

_TOKEN_CACHE: dict[str, int] = {}
_TOKEN_CACHE_MAX = 200_000
_TOKEN_LOCK = threading.Lock()


def _token_hash(token: str) -> int:
    return int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")


def _token_hashes(tokens: list[str]) -> npt.NDArray[np.uint64]:
    cache = _TOKEN_CACHE
    try:
        values = list(map(cache.__getitem__, tokens))
    except KeyError:
        with _TOKEN_LOCK:
            if len(cache) > _TOKEN_CACHE_MAX:
                cache.clear()
            for token in set(tokens):
                if token not in cache:
                    cache[token] = _token_hash(token)
            values = [cache[token] for token in tokens]
    return np.array(values, dtype=_U64)


def words(text: str) -> list[str]:
    """`tokenize`, with Chinese and Japanese split into single characters."""
    tokens = tokenize(text)
    if text.isascii() or not _CJK_RE.search(text):
        return tokens
    out: list[str] = []
    for token in tokens:
        if token.isascii() or not _CJK_RE.search(token):
            out.append(token)
        else:
            out.extend(_CJK_SPLIT_RE.findall(token))
    return out


def _shingle_array(tokens: list[str]) -> npt.NDArray[np.uint64]:
    hashes = _token_hashes(tokens)
    n = len(hashes) - SHINGLE + 1
    mixed = hashes[:n] * _POSITION[0]
    for j in range(1, SHINGLE):
        mixed += hashes[j : j + n] * _POSITION[j]
    return _fmix64(mixed)


def shingles(text: str) -> set[int]:
    """The hashed word 5-shingles of the text: unsigned 64-bit ints.

    Words are `crawler.query.tokenize`'s (case, accents and punctuation ignored). A text of
    fewer than `MIN_TOKENS` words gives the empty set: too short to identify a story.
    """
    tokens = words(text)
    if len(tokens) < MIN_TOKENS:
        return set()
    return set(_shingle_array(tokens).tolist())


# --------------------------------------------------------------------------- MinHash / LSH


def signature(shingle_set: Iterable[int]) -> Signature | None:
    """The MinHash signature: `PERMUTATIONS` uint32 values; None for an empty set.

    Permutation i maps the shingle's 32-bit fold x to (A[i] * x + B[i]) mod 2**32; the
    signature holds each permutation's minimum. P(sig_a[i] == sig_b[i]) = Jaccard(a, b).
    """
    values = np.fromiter(shingle_set, dtype=_U64)
    return _minhash(values) if values.size else None


def _minhash(values: npt.NDArray[np.uint64]) -> Signature:
    """`signature` of an array of shingles (repeats do not change a minimum)."""
    folded = (values ^ (values >> _U64(32))).astype(np.uint32)
    out = np.empty(PERMUTATIONS, dtype=np.uint32)
    scratch = np.empty((_BLOCK, folded.size), dtype=np.uint32)
    for start in range(0, PERMUTATIONS, _BLOCK):
        stop = start + _BLOCK
        np.multiply(_PERM_A[start:stop, None], folded[None, :], out=scratch)
        np.add(scratch, _PERM_B[start:stop, None], out=scratch)
        scratch.min(axis=1, out=out[start:stop])
    return out


def band_keys(sig: Signature, salt: npt.NDArray[np.uint64] = _BAND_SALT) -> list[int]:
    """`BANDS` signed 64-bit ints (SQLite INTEGER), one per band of `ROWS` signature values.

    The band's index is mixed in, so one index on the key column serves every band; the lead's
    keys (`Sketch.lead_keys`) are salted apart, so they only ever meet other leads' keys.
    """
    if len(sig) != PERMUTATIONS:
        raise ValueError(f"a signature has {PERMUTATIONS} values, not {len(sig)}")
    rows = np.asarray(sig, dtype=np.uint32)[: BANDS * ROWS].astype(_U64).reshape(BANDS, ROWS)
    key = salt.copy()
    for r in range(ROWS):
        key = _fmix64(key ^ rows[:, r])
    keys: list[int] = key.view(np.int64).tolist()
    return keys


def candidate_probability(s: float, bands: int = BANDS, rows: int = ROWS) -> float:
    """P(two sets of Jaccard `s` share at least one band key) = 1 - (1 - s**rows)**bands."""
    return float(1.0 - (1.0 - s**rows) ** bands)


class Sketch(NamedTuple):
    """What the archive stores for an article: its shingles, its band keys and its lead's."""

    shingles: set[int]
    band_keys: list[int]
    lead_keys: list[int]  # band keys of the first `LEAD_SHINGLES` shingles


def sketch(text: str) -> Sketch | None:
    """Shingles and band keys of a text; None if it is too short (`MIN_TOKENS`).

    The same as ``shingles(text)`` and ``band_keys(signature(shingles(text)))``, faster; and
    the lead's keys.
    """
    tokens = words(text)
    if len(tokens) < MIN_TOKENS:
        return None
    values = _shingle_array(tokens)
    lead = band_keys(_minhash(values[:LEAD_SHINGLES]), _LEAD_SALT)
    return Sketch(set(values.tolist()), band_keys(_minhash(values)), lead)


def encode_keys(keys: Sequence[int]) -> bytes:
    """Band keys as bytes (signed 64-bit little-endian), to find them again for deletion."""
    return np.array(keys, dtype="<i8").tobytes()


def decode_keys(b: bytes | None) -> list[int]:
    keys: list[int] = np.frombuffer(b or b"", dtype="<i8").tolist()
    return keys


# --------------------------------------------------------------------------- verification


def similarity(a: set[int], b: set[int]) -> tuple[float, float]:
    """(Jaccard, containment = |a & b| / min(|a|, |b|)); (0.0, 0.0) if either is empty."""
    if not a or not b:
        return 0.0, 0.0
    common = len(a & b)
    return common / (len(a) + len(b) - common), common / min(len(a), len(b))


def same_story(a: set[int], b: set[int]) -> bool:
    """True if the two shingle sets are copies of one story.

    Jaccard >= `JACCARD` (re-wrapped, lightly edited), or containment >= `CONTAINMENT`
    (trimmed) when the smaller set has at least `CONTAINMENT_MIN_RATIO` of the larger's
    shingles: a short brief inside a long round-up or live blog is not that story, and would
    otherwise chain the round-up's stories into one.
    """
    jaccard, containment = similarity(a, b)
    if jaccard >= JACCARD:
        return True
    if containment < CONTAINMENT:
        return False
    return min(len(a), len(b)) >= CONTAINMENT_MIN_RATIO * max(len(a), len(b))


def same_story_with_titles(
    a: set[int], b: set[int], title_a: str | None, title_b: str | None
) -> bool:
    """`same_story`, or a lead-only rewrite: the titles match (`titles_match`) and the bodies
    share at least `TITLE_CONTAINMENT` of the smaller set.

    A new lead paragraph lowers the body's Jaccard below `JACCARD`, the matching title says it
    is still the story. Titles alone are not enough: "Live updates: ..." or "Morning briefing:
    what you need to know" head different stories every day. Apply it only to articles first
    seen within `TITLE_WINDOW_HOURS` of each other.
    """
    if same_story(a, b):
        return True
    if not titles_match(title_a, title_b):
        return False
    return similarity(a, b)[1] >= TITLE_CONTAINMENT


def merge_target(story_ids: Iterable[int]) -> tuple[int, list[int]] | None:
    """For the stories a new article matched: (the story it joins, the stories merged into it).

    The oldest story (smallest id) survives, so a story's id never changes once alerted on
    unless a copy proves two stories are one. None if nothing matched.
    """
    ids = sorted(set(story_ids))
    if not ids:
        return None
    return ids[0], ids[1:]


# --------------------------------------------------------------------------- titles

# Frequent function words of the languages most feeds are in (en, de, fr, es, it, nl, pt).
_STOPWORD_TEXT = """
    a about after against all also an and any are as at be been before but by can could did
    do does for from had has have he her his how i if in into is it its just may more most new
    no not of on or our out over says said she so than that the their them there these they
    this those to under up was we were what when where which while who why will with would you
    your s t vs
    aber als am an auch auf aus bei bis das dass dem den der des die doch ein eine einem einen
    einer eines er es fur gegen hat im in ist mit nach nicht noch nun oder sich sie sind so um
    und uber vom von vor war wie wird zu zum zur
    au aux avec ce ces dans de des du elle en est et il ils la le les leur mais ne par pas plus
    pour qu que qui sa se son sur un une
    al como con del el en es la las lo los mas para por que se su sus un una y
    che da dei della di gli il nel non per sono
    een het niet op te van voor zijn
    ao com da das do dos em na no nos os um uma
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_TITLE_SEPARATORS = re.compile(r"\s+[|\-\u2013\u2014:]+\s+|\s+::\s+")
_SITE_SUFFIX_MAX_TOKENS = 3


def _title_words(title: str | None) -> frozenset[str] | None:
    if not title:
        return None
    # Drop a trailing site name: "... - Reuters", "... | BBC News".
    parts = _TITLE_SEPARATORS.split(title.strip())
    if len(parts) > 1 and len(tokenize(parts[-1])) <= _SITE_SUFFIX_MAX_TOKENS:
        head = _content_words(" ".join(parts[:-1]))
        if len(head) >= TITLE_MIN_WORDS:
            return head
    found = _content_words(title)
    return found if len(found) >= TITLE_MIN_WORDS else None


def _content_words(text: str) -> frozenset[str]:
    return frozenset(
        t for t in words(text) if t not in _STOPWORDS and (len(t) > 1 or not t.isascii())
    )


def title_key(title: str | None) -> str | None:
    """The title's content words, sorted and space-joined; None below `TITLE_MIN_WORDS`.

    Case, accents, punctuation, word order, stopwords and a trailing site name ("- Reuters")
    are ignored. Equal keys are the exact form of `titles_match`: store the key in an indexed
    column and look it up within `TITLE_WINDOW_HOURS`.
    """
    found = _title_words(title)
    return " ".join(sorted(found)) if found is not None else None


def titles_match(a: str | None, b: str | None) -> bool:
    """True if both titles have `TITLE_MIN_WORDS` content words and their Jaccard reaches
    `TITLE_JACCARD` (conservative: a lead-only rewrite keeps its title)."""
    wa, wb = _title_words(a), _title_words(b)
    if wa is None or wb is None:
        return False
    return len(wa & wb) >= TITLE_JACCARD * len(wa | wb)


# --------------------------------------------------------------------------- storage

_FORMAT_RAW = 1  # version byte, then the sorted shingles as little-endian uint64


def encode_shingles(s: set[int]) -> bytes:
    """The set as bytes for `article_shingles.data`: a format byte, then sorted uint64 LE.

    8 bytes a shingle (an 800-word article: 6.4 kB). Compression does not pay: the values are
    uniform 64-bit hashes (zlib saves under 3%).
    """
    values = np.fromiter(s, dtype=_U64, count=len(s))
    values.sort()
    return bytes((_FORMAT_RAW,)) + values.astype("<u8").tobytes()


def decode_shingles(b: bytes) -> set[int]:
    """The inverse of `encode_shingles`; ValueError on bytes it did not make."""
    if not b or b[0] != _FORMAT_RAW or (len(b) - 1) % 8:
        raise ValueError("not an encoded shingle set")
    return set(np.frombuffer(b, dtype="<u8", offset=1).tolist())
