"""Date expressions in a text and a date in a URL, in the languages of European outlets (pure).

``text_dates(text, lang, region)`` finds the dates of a text with the label just before each
("Published", "Publié le", "Aktualisiert", ...): "published", "updated" or None. Month names
come from dateparser's locale data (nominative, genitive, abbreviated; its parser is not used)
and a few genitives it lacks; see ``crawler/parse/dates.py`` for the formats and for how a
page's date is chosen. ``url_date(url)`` is a complete date in a URL's path. No network, clock
or environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

__all__ = [
    "LABEL_WINDOW",
    "MAX_DATE",
    "PUBLISHED_WORDS",
    "UPDATED_WORDS",
    "Found",
    "label_of",
    "text_dates",
    "url_date",
]

# The latest plausible date: fixed, so that the answer never depends on the clock.
MAX_DATE = date(2100, 1, 1)
_MIN_YEAR = 1990

# dateparser locales whose month names are read (the first wins for a name two share,
# unless the page's own language has it).
_LANGUAGES = (
    "en", "fr", "de", "es", "it", "nl", "pt", "pl", "ro", "cs", "sk", "uk", "ru", "tr", "sv",
    "da", "nb", "fi", "hu", "el", "bg", "hr", "sl", "sr", "ca", "lt", "lv", "et", "sq", "mk",
    "be", "eu", "gl", "cy", "is", "lb", "ga", "bs", "mt", "fy",
)  # fmt: skip
_MONTH_KEYS = (
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
)  # fmt: skip
_ROMAN = re.compile(r"^[ivxl]+$")
# Genitive month names dateparser's locale data lacks ("6. oktobra 2026" in Slovene)
_EXTRA_MONTHS = {
    "sl": "januarja februarja marca aprila maja junija julija avgusta septembra oktobra "
    "novembra decembra",
    "sr": "januara februara marta aprila maja juna jula avgusta septembra oktobra novembra "
    "decembra",
}

# Labels before a date. Lower-cased, matched in the text between the previous date and this one.
PUBLISHED_WORDS = re.compile(
    r"(?<![^\W\d_])(?:publish|posted|created|first\s+published|publié|publiée|paru|veröffentlicht|erstellt|"
    r"erschienen|publiziert|opublikowano|publikacj|опубліковано|опубликовано|публикац|"
    r"yayın|yayim|giriş|publicad|pubblicat|publicat|publicării|gepubliceerd|geplaatst|"
    r"publikováno|vydáno|publikované|publicerad|publiceret|publisert|julkaistu|közzét|"
    r"megjelent|δημοσιε|objavljeno|objavljen|публикувано|data\s+publikacji)",
)
UPDATED_WORDS = re.compile(
    r"(?<![^\W\d_])(?:last\s+updat|updat|modifi|revised|edited|mis\s+à\s+jour|màj|actualisé|aktualisiert|geändert|"
    r"zaktualizowan|aktualizacj|оновлено|обновлено|обновлён|изменено|güncel|actualizad|"
    r"aggiornat|aggiornamento|atualizad|actualizat|bijgewerkt|gewijzigd|aktualizován|"
    r"upraveno|aktualizované|uppdaterad|opdateret|oppdatert|päivitetty|frissítve|módosítva|"
    r"ενημερώθηκε|ažurirano|ажурирано|обновено)",
)
LABEL_WINDOW = 60  # characters before a date searched for its label


# --------------------------------------------------------------------------- date expressions


def _fold(word: str) -> str:
    return word.replace("ı", "i").replace("İ", "i").lower().rstrip(".")


@lru_cache(maxsize=1)
def _month_tables() -> dict[str, dict[str, int]]:
    """language -> {folded month name -> 1..12}, from dateparser's locale data."""
    from dateparser.languages.loader import default_loader

    tables: dict[str, dict[str, int]] = {}
    locales = default_loader.get_locale_map(languages=list(_LANGUAGES))
    for lang in _LANGUAGES:
        info = locales[lang].info
        table: dict[str, int] = {}
        for number, key in enumerate(_MONTH_KEYS, 1):
            for name in info.get(key, ()):
                word = _fold(name)
                if len(word) >= 3 and word.isalpha() and not _ROMAN.match(word):
                    table.setdefault(word, number)
        for number, word in enumerate(_EXTRA_MONTHS.get(lang, "").split(), 1):
            table.setdefault(word, number)
        tables[lang] = table
    return tables


@lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], ...]:
    words = {w for table in _month_tables().values() for w in table}
    month = "(?P<month>" + "|".join(sorted(map(re.escape, words), key=len, reverse=True)) + ")"
    month += r"\.?(?![^\W\d_])"
    year = r"(?P<year>(?:19|20)\d\d)(?!\d)"
    day = r"(?P<day>[0-3]?\d)"
    flags = re.I
    return (
        # 2026-12-05, 2026/12/05, 2026.12.05., 2026年12月5日
        re.compile(
            r"(?<!\d)" + year + r"\s?(?:[-/.]|年)\s?(?P<mon>[01]?\d)\s?(?:[-/.]|月)\s?" + day
            + r"(?!\d)"
        ),
        # 5 December 2026, 5. Dezember 2026, 5 de diciembre de 2026, 1er mars 2026, 5th of May
        re.compile(
            r"(?<!\d)" + day + r"(?:st|nd|rd|th|er|º|\.)?[\s-]*(?:de\s+|of\s+)?" + month
            + r",?[\s-]*(?:de\s+|del\s+)?" + year,
            flags,
        ),
        # December 5, 2026; Dec. 5 2026
        re.compile(r"(?<![^\W\d_])" + month + r"\s+" + day + r"(?:st|nd|rd|th)?,?\s+" + year, re.I),
        # 2026. május 6. (Hungarian), 2026 m. spalio 7 d. (Lithuanian), 2026. gada 7. oktobris
        re.compile(
            r"(?<!\d)" + year + r"\.?\s+(?:m\.\s+)?" + month + r"\s+" + day + r"(?!\d)", flags
        ),
        re.compile(r"(?<!\d)" + year + r"\.\s+gada\s+" + day + r"\.\s+" + month, flags),
        # 05.12.2026, 12. 5. 2026, 05/12/2026, 05-12-2026
        re.compile(
            r"(?<![\d.])(?P<a>[0-3]?\d)\s?(?P<sep>[./-])\s?(?P<b>[0-3]?\d)\s?(?P=sep)\s?" + year
        ),
        # 27.04.24: a two-digit year, taken only when labelled ("Veröffentlicht am 27.04.24")
        re.compile(r"(?<![\d.])(?P<a>[0-3]?\d)\.(?P<b>[01]?\d)\.(?P<year>\d\d)(?![\d.]|\s?[:h]\d)"),
    )  # fmt: skip


_TWO_DIGITS = re.compile(r"\d\d")


@dataclass(frozen=True)
class Found:
    """A date expression in a text: its day, where it is, and how it is labelled."""

    day: date
    start: int
    end: int
    label: str | None  # "published", "updated" or None


def text_dates(text: str, lang: str | None = None, region: str | None = None) -> list[Found]:
    """The date expressions of ``text`` in order, each with the label just before it.

    ``lang``: the page's ISO 639-1 language (decides month names two languages share);
    ``region``: its region ("US" reads slashed dates month first).

    >>> [(f.day.isoformat(), f.label) for f in text_dates("Publié le 12 oct. 2026, màj 13/10/2026")]
    [('2026-10-12', 'published'), ('2026-10-13', 'updated')]
    """
    if not _TWO_DIGITS.search(text):
        return []  # every date expression holds a year: most lines of text are done here
    spans: list[tuple[int, int, date, bool]] = []
    for kind, pattern in enumerate(_patterns()):
        for match in pattern.finditer(text):
            if any(s < match.end() and match.start() < e for s, e, _, _ in spans):
                continue  # overlaps a date already found by an earlier pattern
            day = _to_date(kind, match, lang, region)
            if day is not None:
                spans.append((match.start(), match.end(), day, kind == _SHORT_YEAR))
    spans.sort()
    found: list[Found] = []
    previous_end = 0
    for start, end, day, short_year in spans:
        before = text[max(previous_end, start - LABEL_WINDOW) : start].lower()
        label = label_of(before)
        if label is not None or not short_year:
            found.append(Found(day, start, end, label))
        previous_end = end
    return found


def label_of(before: str) -> str | None:
    """The label nearest the date's end of ``before`` (the text just before a date)."""
    best: tuple[int, str | None] = (-1, None)
    for name, pattern in (("published", PUBLISHED_WORDS), ("updated", UPDATED_WORDS)):
        for match in pattern.finditer(before):
            if match.start() > best[0]:
                best = (match.start(), name)
    return best[1]


_NUMERIC = 5  # the pattern of 05.12.2026, 05/12/2026
_SHORT_YEAR = 6  # the pattern of dd.mm.yy


def _to_date(kind: int, match: re.Match[str], lang: str | None, region: str | None) -> date | None:
    year = int(match["year"])
    if kind == _SHORT_YEAR:
        year += 2000
    if kind == 0:
        month, day = int(match["mon"]), int(match["day"])
    elif kind in (_NUMERIC, _SHORT_YEAR):
        a, b = int(match["a"]), int(match["b"])
        if kind == _NUMERIC and match["sep"] == "/" and lang in (None, "en"):
            if region == "US" or (b > 12 >= a and region is None):
                a, b = b, a  # month first
            elif region is None and a <= 12 and b <= 12 and a != b:
                return None  # "03/02/2026" on a page that does not say where it is from
        day, month = a, b
    else:
        month_number = _month_number(match["month"], lang)
        if month_number is None:
            return None
        month, day = month_number, int(match["day"])
    try:
        found = date(year, month, day)
    except ValueError:
        return None
    return found if found.year >= _MIN_YEAR and found < MAX_DATE else None


def _month_number(word: str, lang: str | None) -> int | None:
    tables = _month_tables()
    folded = _fold(word)
    if lang in tables and folded in tables[lang]:
        return tables[lang][folded]
    for table in tables.values():
        if folded in table:
            return table[folded]
    return None


# --------------------------------------------------------------------------- the URL

_URL_DATE = re.compile(
    r"/((?:19|20)\d\d)[/_-]?(0[1-9]|1[0-2]|[1-9])[/_-](0[1-9]|[12]\d|3[01]|[1-9])(?=[/_.-]|$)"
    r"|/((?:19|20)\d\d)(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=[/_.-]|$)"
)


def url_date(url: str) -> date | None:
    """A complete date in the URL's path: /2026/12/05/, /2026-12-05/, /20261205/."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    path = path.split("://", 1)[-1].partition("/")[2]
    match = _URL_DATE.search("/" + path)
    if not match:
        return None
    groups = [g for g in match.groups() if g is not None]
    try:
        found = date(int(groups[0]), int(groups[1]), int(groups[2]))
    except ValueError:
        return None
    return found if found.year >= _MIN_YEAR and found < MAX_DATE else None
