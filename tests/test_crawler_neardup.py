"""Near-duplicate stories (docs/how-it-decides.md): crawler.decide.neardup."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from crawler.decide import neardup
from crawler.decide.neardup import (
    BANDS,
    MIN_TOKENS,
    PERMUTATIONS,
    ROWS,
    SCHEMA_SQL,
    SCHEMA_STATEMENTS,
    band_keys,
    candidate_probability,
    decode_shingles,
    encode_shingles,
    merge_target,
    same_story,
    same_story_with_titles,
    shingles,
    signature,
    similarity,
    sketch,
    title_key,
    titles_match,
    words,
)

# Two different articles on one topic (NATO), written for these tests.
NATO_SUMMIT = """\
NATO leaders agreed on Wednesday to raise their joint spending on air defence after a two-day
summit in Vilnius, where the alliance also discussed how quickly Ukraine could join once the
war with Russia is over.

The secretary general told reporters that member states would buy more Patriot and IRIS-T
systems together, so that factories in Germany, Poland and the United States can plan longer
production runs. Several eastern members had asked for faster deliveries before the winter.

Diplomats said the final statement was softened at the last minute. Hungary and Turkey wanted
no firm date for Ukrainian membership, while the Baltic states pushed for a clear timetable.
The compromise speaks of an invitation "when allies agree and conditions are met".

Officials also approved a new plan for the defence of the northern flank, including more troops
in Finland and regular exercises in the Arctic. The next summit will be held in Washington.
"""

NATO_EXERCISE = """\
Thousands of NATO soldiers began a month-long exercise on the Polish plains on Monday, the
largest drill the alliance has held in the region since the end of the Cold War, military
officials said at a briefing in Warsaw.

Tanks from Britain and Canada crossed the Vistula on temporary bridges built by German
engineers, while Dutch helicopters flew supplies to forward positions. The army said the aim
was to test how fast reinforcements can reach the eastern border in a crisis.

Residents of nearby villages were warned about noise and road closures until the end of the
month. Local farmers complained that heavy vehicles had damaged fields last year, and the
defence ministry promised to pay for any repairs.

Russia called the exercise a provocation and said it would respond with drills of its own in
Belarus and the Kaliningrad region later this summer.
"""

WEATHER = """\
Heavy rain is expected across the north of the country over the weekend, forecasters said on
Friday, with up to fifty millimetres falling in some mountain valleys by Sunday evening.
Rivers could burst their banks in places, and drivers were told to avoid flooded roads and to
check the latest warnings before setting off on long journeys to the coast.
"""


def wrapped(text: str) -> str:
    """Another outlet's template around the same body."""
    return (
        "VILNIUS (Reuters) - "
        + text
        + "\nReporting by Jane Doe and John Smith; Editing by Mark Heinrich\n"
        + "Our Standards: The Thomson Reuters Trust Principles.\n"
        + "Sign up for our daily newsletter.\n"
    )


def trimmed(text: str, fraction: float) -> str:
    words_ = text.split()
    return " ".join(words_[: round(len(words_) * fraction)])


def edited(text: str, every: int = 20) -> str:
    """One word in `every` replaced: 5% of the words for every=20."""
    words_ = text.split()
    return " ".join("zebra" if i % every == every // 2 else w for i, w in enumerate(words_))


def rewritten_lead(text: str) -> str:
    """The first two paragraphs (half the words) replaced by different words."""
    rest = text.split("\n\n", 2)[2]
    return (
        "Allied governments ended two days of talks in the Lithuanian capital with promises of "
        "money for missiles, and a carefully worded message for Kyiv about its future seat at "
        "the table, according to several people who attended the closed meetings.\n\n"
        "Purchases will be pooled, a spokesman explained after the final session, because "
        "manufacturers want orders they can count on for years rather than months, and the "
        "countries closest to the front line are tired of waiting in a queue behind others.\n\n"
        + rest
    )


# --------------------------------------------------------------------------- same story


def test_identical_texts_are_the_same_story() -> None:
    a = shingles(NATO_SUMMIT)
    assert a == shingles(NATO_SUMMIT)
    assert similarity(a, shingles(NATO_SUMMIT)) == (1.0, 1.0)
    assert same_story(a, shingles(NATO_SUMMIT))


def test_case_punctuation_and_spacing_do_not_matter() -> None:
    noisy = re.sub(r"\s+", "  ", NATO_SUMMIT.upper()).replace(",", " ;")
    assert shingles(noisy) == shingles(NATO_SUMMIT)


@pytest.mark.parametrize(
    ("kind", "copy"),
    [
        ("re-wrapped", wrapped(NATO_SUMMIT)),
        ("trimmed to 80%", trimmed(NATO_SUMMIT, 0.8)),
        ("trimmed to 60%", trimmed(NATO_SUMMIT, 0.6)),
        ("5% of the words edited", edited(NATO_SUMMIT)),
        ("re-wrapped and trimmed to 80%", wrapped(trimmed(NATO_SUMMIT, 0.8))),
    ],
)
def test_copies_are_the_same_story_and_lsh_candidates(kind: str, copy: str) -> None:
    original, other = sketch(NATO_SUMMIT), sketch(copy)
    assert original is not None and other is not None
    assert same_story(original.shingles, other.shingles), kind
    assert set(original.band_keys) & set(other.band_keys), kind


def test_different_articles_on_one_topic_are_not_the_same_story() -> None:
    a, b = shingles(NATO_SUMMIT), shingles(NATO_EXERCISE)
    jaccard, containment = similarity(a, b)
    assert jaccard < 0.05 and containment < 0.05
    assert not same_story(a, b)
    sa, sb = sketch(NATO_SUMMIT), sketch(NATO_EXERCISE)
    assert sa is not None and sb is not None
    assert not set(sa.band_keys) & set(sb.band_keys)


def test_a_brief_inside_a_roundup_is_not_that_story() -> None:
    """Containment alone would chain every story of a round-up into one."""
    brief = "\n\n".join(NATO_SUMMIT.split("\n\n")[:2])
    roundup = "\n\n".join(
        [brief, NATO_EXERCISE, WEATHER, edited(NATO_EXERCISE, 7), edited(WEATHER, 5)]
    )
    a, b = shingles(brief), shingles(roundup)
    assert similarity(a, b)[1] == 1.0
    assert len(a) < neardup.CONTAINMENT_MIN_RATIO * len(b)
    assert not same_story(a, b)


def test_similarity_of_empty_sets() -> None:
    assert similarity(set(), shingles(NATO_SUMMIT)) == (0.0, 0.0)
    assert not same_story(set(), set())


# --------------------------------------------------------------------------- too short


def test_short_texts_have_no_shingles_and_no_signature() -> None:
    teaser = "NATO leaders agreed on Wednesday to raise spending on air defence. Read more."
    assert len(words(teaser)) < MIN_TOKENS
    assert shingles(teaser) == set()
    assert sketch(teaser) is None
    assert signature(set()) is None
    assert not same_story(shingles(teaser), shingles(NATO_SUMMIT))


def test_min_tokens_is_the_boundary() -> None:
    text = " ".join(NATO_SUMMIT.split())
    tokens = words(text)
    just_enough = " ".join(tokens[:MIN_TOKENS])
    too_short = " ".join(tokens[: MIN_TOKENS - 1])
    assert len(shingles(just_enough)) == MIN_TOKENS - neardup.SHINGLE + 1
    assert shingles(too_short) == set()


def test_chinese_and_japanese_are_shingled_by_character() -> None:
    assert words("東京都は5日、新型 Tokyo 2020年") == [
        "東",
        "京",
        "都",
        "は",
        "5",
        "日",
        "新",
        "型",
        "tokyo",
        "2020",
        "年",
    ]
    text = "北大西洋条約機構の首脳は水曜日、防空への共同支出を増やすことで合意した。" * 3
    assert len(shingles(text)) > 0


# --------------------------------------------------------------------------- keys


def test_signature_and_band_keys_shape() -> None:
    sig = signature(shingles(NATO_SUMMIT))
    assert sig is not None
    assert sig.shape == (PERMUTATIONS,) and sig.dtype == np.uint32
    keys = band_keys(sig)
    assert len(keys) == BANDS
    assert all(isinstance(k, int) and -(2**63) <= k < 2**63 for k in keys)
    # The band's index is mixed in: equal rows in different bands give different keys.
    assert len(set(band_keys(np.zeros(PERMUTATIONS, dtype=np.uint32)))) == BANDS
    with pytest.raises(ValueError):
        band_keys(sig[:100])


def test_sketch_is_shingles_and_band_keys() -> None:
    sk = sketch(NATO_SUMMIT)
    sig = signature(shingles(NATO_SUMMIT))
    assert sk is not None and sig is not None
    assert sk.shingles == shingles(NATO_SUMMIT)
    assert sk.band_keys == band_keys(sig)


def test_minhash_estimates_jaccard() -> None:
    a, b = shingles(NATO_SUMMIT), shingles(trimmed(NATO_SUMMIT, 0.6))
    sa, sb = signature(a), signature(b)
    assert sa is not None and sb is not None
    estimate = float(np.mean(sa == sb))
    assert abs(estimate - similarity(a, b)[0]) < 0.15  # 3 standard deviations at 128 values


_CHILD = """
import json, sys
from crawler.decide.neardup import sketch, encode_shingles
sk = sketch(sys.stdin.read())
print(json.dumps({"keys": sk.band_keys, "blob": encode_shingles(sk.shingles).hex()}))
"""


def test_band_keys_are_stable_across_processes() -> None:
    """Stored keys must mean the same in the next process: no hash() and no random seed."""
    here = sketch(NATO_SUMMIT)
    assert here is not None
    results = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=NATO_SUMMIT,
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        results.append(json.loads(out.stdout))
    for result in results:
        assert result["keys"] == here.band_keys
        assert result["blob"] == encode_shingles(here.shingles).hex()


def test_the_hashing_scheme_is_pinned() -> None:
    """These values are stored in archives: changing them needs a new neardup.VERSION."""
    text = " ".join(f"word{i}" for i in range(MIN_TOKENS))
    assert min(shingles(text)) == 40900433344024714
    sk = sketch(text)
    assert sk is not None
    assert sk.band_keys[:3] == [3342569202450000537, 5593645875467891040, 4772428320419042112]


# --------------------------------------------------------------------------- LSH S-curve


def _documented_curve() -> dict[float, float]:
    doc = neardup.__doc__ or ""
    s_line = re.search(r"^\s+s\s+([\d. ]+)$", doc, re.M)
    p_line = re.search(r"^\s+P\s+([\d. ]+)$", doc, re.M)
    assert s_line and p_line
    return dict(zip(map(float, s_line[1].split()), map(float, p_line[1].split()), strict=True))


def test_candidate_probability_is_as_documented() -> None:
    assert BANDS * ROWS <= PERMUTATIONS
    assert candidate_probability(0.3) == pytest.approx(1 - (1 - 0.3**ROWS) ** BANDS)
    assert round(candidate_probability(0.3), 3) == 0.683
    assert candidate_probability(0.8) > 0.9999
    threshold = (1 / BANDS) ** (1 / ROWS)
    assert threshold == pytest.approx(0.29, abs=0.01)
    curve = _documented_curve()
    assert {0.3, 0.8} <= curve.keys()
    for s, p in curve.items():
        assert round(candidate_probability(s), 3) == p, s


# --------------------------------------------------------------------------- titles


def test_title_key_normalises() -> None:
    key = title_key("NATO allies agree to boost air defence for Ukraine - Reuters")
    assert key == "agree air allies boost defence nato ukraine"
    assert title_key("Nato Allies AGREE to boost air-defence for Ukraine | AP News") == key
    assert title_key("Letters to the editor") is None  # too few content words
    assert title_key("") is None and title_key(None) is None


def test_titles_match_is_conservative() -> None:
    title = "NATO allies agree to boost air defence for Ukraine"
    assert titles_match(title, title + " - Reuters")
    assert titles_match(title, "NATO allies agree to boost air defence for Ukraine at summit")
    assert not titles_match(title, "NATO allies disagree about air defence for Kyiv")
    assert not titles_match("News in brief", "News in brief")
    assert not titles_match(title, None)


def test_lead_only_rewrite_needs_the_title() -> None:
    title = "NATO leaders agree to raise air defence spending at Vilnius summit"
    a, b = shingles(NATO_SUMMIT), shingles(rewritten_lead(NATO_SUMMIT))
    assert not same_story(a, b)
    assert same_story_with_titles(a, b, title, title)
    assert not same_story_with_titles(a, b, title, "Allies promise Kyiv a seat at the table")


def test_a_generic_title_does_not_join_different_stories() -> None:
    generic = "Live updates: the latest news from around the world today"
    assert titles_match(generic, generic)
    a, b = shingles(NATO_SUMMIT), shingles(NATO_EXERCISE)
    assert not same_story_with_titles(a, b, generic, generic)


# --------------------------------------------------------------------------- storage


def test_encode_decode_roundtrip() -> None:
    s = shingles(NATO_SUMMIT)
    blob = encode_shingles(s)
    assert decode_shingles(blob) == s
    assert len(blob) == 1 + 8 * len(s)
    assert encode_shingles(s) == blob  # deterministic: sorted
    assert decode_shingles(encode_shingles({0, 2**64 - 1})) == {0, 2**64 - 1}
    assert decode_shingles(encode_shingles(set())) == set()
    for bad in (b"", b"\x02" + bytes(8), b"\x01" + bytes(7)):
        with pytest.raises(ValueError):
            decode_shingles(bad)


def test_merge_target_keeps_the_oldest_story() -> None:
    assert merge_target([]) is None
    assert merge_target([7]) == (7, [])
    assert merge_target([9, 3, 7, 3]) == (3, [7, 9])


def test_schema_finds_and_clusters_copies_in_sqlite() -> None:
    """The archive's use of SCHEMA_SQL: copies arriving in any order end in one story."""
    db = sqlite3.connect(":memory:")
    for statement in SCHEMA_STATEMENTS:
        db.execute(statement)
    db.executescript(SCHEMA_SQL)  # idempotent
    story: dict[int, int] = {}

    def add(article_id: int, text: str) -> int:
        sk = sketch(text)
        assert sk is not None
        marks = ",".join("?" * len(sk.band_keys))
        found = db.execute(
            f"SELECT DISTINCT article_id FROM lsh_bands WHERE band_key IN ({marks})",
            sk.band_keys,
        ).fetchall()
        matched = set()
        for (candidate,) in found:
            (data,) = db.execute(
                "SELECT data FROM article_shingles WHERE article_id = ?", (candidate,)
            ).fetchone()
            if same_story(sk.shingles, decode_shingles(data)):
                matched.add(story[candidate])
        target = merge_target(matched)
        if target is None:
            story[article_id] = article_id
        else:
            survivor, merged = target
            for other, s in story.items():
                if s in merged:
                    story[other] = survivor
            story[article_id] = survivor
        db.executemany(
            "INSERT INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
            [(k, article_id) for k in sk.band_keys],
        )
        db.execute(
            "INSERT INTO article_shingles (article_id, data) VALUES (?, ?)",
            (article_id, encode_shingles(sk.shingles)),
        )
        return story[article_id]

    # The trimmed and the edited copy arrive first: they may not match each other...
    assert add(1, trimmed(NATO_SUMMIT, 0.6)) == 1
    add(2, edited(NATO_SUMMIT, 16))
    assert story[2] == 2
    add(3, NATO_EXERCISE)
    # ... and the original joins both: one story.
    add(4, NATO_SUMMIT)
    assert story[1] == story[2] == story[4] == 1
    assert story[3] == 3


def test_the_lead_has_band_keys_of_its_own_that_find_a_trimmed_and_an_edited_copy() -> None:
    original = sketch(NATO_SUMMIT)
    short, changed = sketch(trimmed(NATO_SUMMIT, 0.6)), sketch(edited(NATO_SUMMIT, 15))
    assert original is not None and short is not None and changed is not None
    assert len(original.lead_keys) == BANDS
    # salted apart: a lead key never meets a whole-text key
    assert not set(original.lead_keys) & set(original.band_keys)
    assert set(short.lead_keys) & set(original.lead_keys)
    jaccard, containment = similarity(short.shingles, changed.shingles)
    assert jaccard < neardup.JACCARD  # a weak pair on the whole texts ...
    assert set(short.lead_keys) & set(changed.lead_keys)  # ... that the leads bring together
    assert containment >= neardup.CONTAINMENT and same_story(short.shingles, changed.shingles)
    assert neardup.decode_keys(neardup.encode_keys(changed.lead_keys)) == changed.lead_keys
    assert neardup.decode_keys(None) == []
