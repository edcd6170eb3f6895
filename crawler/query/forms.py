"""Word forms: one key per word, the same for the inflected forms of a word in a language.

`normalise(word, lang)` gives the key a word is matched by in a text of language `lang`
(an ISO 639-1 code such as "pl", or a tag such as "pt-BR"): "missiles" (en) -> "missile",
"ракет" (uk) -> "ракета", "obronę" (pl) -> "obrona", "NATO" (en) -> "nato". The key is
folded like `tokenize` folds (case and accents dropped, in every script); two words share a key
when the language's dictionary (or stemmer) takes them for forms of one word. The libraries
chosen per language, and the figures behind the choice, are in docs/languages.md
(bench/language.py measures them):

- Ukrainian: pymorphy3's Ukrainian dictionary; a word that is one of its own possible lemmas,
  or is unknown, is its own key; otherwise the shortest of its lemmas (then the first in
  order), because a form can belong to two words ("танки" is the plural of
  "танк", a tank, and of "танок", a dance) and the shorter is the one other forms share;
- Italian and Romanian: simplemma's lemma, then the Snowball stemmer of the language
  (PyStemmer; the dictionaries lack forms such as "droni" or "dronele");
- every other language simplemma knows (en, fr, de, es, nl, pl, cs, ru, tr, and bg, da, el,
  et, fi, hu, lt, lv, pt, sk, sl, sv, ...): simplemma's lemma;
- a language none of them knows, or no language: the folded word.

The lemma is taken from the word as written (a dictionary needs "obronę", not "obrone"), then
folded. The module is pure (no I/O beyond the libraries loading their data on the first use of a
language: 0.1 to 3.5 s and 2 to 50 MiB per language) and `normalise` is cached.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from crawler.query.nodes import tokenize

CACHE_SIZE = 200_000  # distinct (word, language) pairs kept; one article has a few hundred
STEMMED = {"it": "italian", "ro": "romanian"}  # simplemma's lemma, then this Snowball stemmer
PYMORPHY = frozenset({"uk"})  # pymorphy3 instead of simplemma


def fold(word: str) -> str:
    """`word` with case and accents folded, as `tokenize` folds it ("Obronę" -> "obrone")."""
    return "".join(tokenize(word))


def language(tag: str | None) -> str | None:
    """The primary language subtag of a language tag, lower-cased: "pt-BR" -> "pt"; None for
    None or an empty tag."""
    if not tag:
        return None
    return tag.replace("_", "-").split("-", 1)[0].strip().lower() or None


@functools.lru_cache(maxsize=CACHE_SIZE)
def normalise(word: str, lang: str | None) -> str:
    """The key of `word` (one word, as `tokenize` splits text) in a text of language `lang`.

    A string that folds into several tokens ("½" -> "1", "2") gives their concatenation, the
    same for every language; one with no letter or digit gives "".
    """
    reduce = _reducer(language(lang))
    if reduce is None or not word.strip():
        return fold(word)
    return fold(reduce(word.lower()))


def supported(lang: str | None) -> bool:
    """True if words of `lang` are reduced to their lemma or stem (not only folded)."""
    return _reducer(language(lang)) is not None


@functools.cache
def _reducer(lang: str | None) -> Callable[[str], str] | None:
    if lang is None:
        return None
    if lang in PYMORPHY:
        return _pymorphy(lang)
    from simplemma.strategies.dictionaries.dictionary_factory import SUPPORTED_LANGUAGES

    if lang not in SUPPORTED_LANGUAGES:
        return None
    lemmatizer = _simplemma()

    def lemma(word: str) -> str:
        return str(lemmatizer.lemmatize(word, lang))

    if lang not in STEMMED:
        return lemma
    import Stemmer  # PyStemmer: the Snowball stemmers in C

    stemmer = Stemmer.Stemmer(STEMMED[lang])
    return lambda word: str(stemmer.stemWord(lemma(word)))


@functools.cache
def _simplemma() -> Any:
    """One simplemma Lemmatizer for every language. Its dictionaries are the on-demand view of
    the packed data (the default decodes each language into a dict: about 870 MiB for the 12
    languages measured, Polish 390 MiB), and every language stays loaded once used (the
    library's default keeps 8, and reloading one costs 0.2 to 6 s). No cache of its own:
    `normalise` has one."""
    from simplemma import Lemmatizer
    from simplemma.strategies import DefaultStrategy
    from simplemma.strategies.dictionaries import StreamDictionaryFactory
    from simplemma.strategies.dictionaries.dictionary_factory import SUPPORTED_LANGUAGES

    factory = StreamDictionaryFactory(cache_max_size=len(SUPPORTED_LANGUAGES))
    strategy = DefaultStrategy(dictionary_factory=factory)
    return Lemmatizer(cache_max_size=0, lemmatization_strategy=strategy)


def _pymorphy(lang: str) -> Callable[[str], str]:
    import pymorphy3

    analyser = pymorphy3.MorphAnalyzer(lang=lang)

    def lemma(word: str) -> str:
        # Only the dictionary's own parses: the guesser's lemmas of an unknown word ("нато" ->
        # "ната") would make keys no reader expects; an unknown word is its own key.
        forms = {str(parse.normal_form) for parse in analyser.parse(word) if parse.is_known}
        if not forms or word in forms:  # "нато" is its own lemma (and a vocative of "Ната")
            return word
        return min(forms, key=lambda form: (len(form), form))

    return lemma
