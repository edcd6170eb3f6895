"""The published date of an article page from what it shows: bylines, ``<time>``, URL (pure).

``find_published(tree, url)`` runs when the page has no date metadata
(``crawler/parse/extract.py`` asks it after JSON-LD and meta tags); ``explain`` also names the
step that answered. The headline is the ``<h1>`` outside navigation, breadcrumbs, asides and
teasers, else the heading that repeats the title (``og:title``, ``<title>``, a breadcrumb's
``<h1>``). The article's region is the headline's container (``<article>``, else the nearest
ancestor holding the body's paragraphs) without teasers, related blocks, lists of links,
comments and tickers; in its page furniture (a metadata column, a share bar) only ``<time>``
elements and elements whose class speaks of a date are read. Dates in the body's running text
are never taken: they speak of other events. In this order:

1. a date labelled as the publication ("Published", "Publié le", "Veröffentlicht am",
   "Opublikowano", "Опубліковано", "Yayınlanma", ..., or a class such as ``date-published``)
   in the header (the blocks around the headline before the body, a standfirst included), a
   ``<time>``, a date line (by its class) or the article's last blocks;
2. a ``<time>`` element of the region not labelled as an update;
3. a complete date in the URL path (``/2026/12/05/``, ``/2026-12-05/``, ``/20261205/``);
4. the ``<time>`` nearest the headline outside the region, outside teasers, links, asides,
   sidebars and the site's header and footer;
5. an unlabelled date in a byline-like line of the header or a date line (little more than the
   date: never a sentence of a lead), then such a line near the headline outside the region;
6. a dateline opening the standfirst or the first paragraph ("BRUSSELS, 5 December 2026 —":
   a place and a comma before, a dash, colon or agency after), or a short closing line.

Dates labelled as updates ("Updated", "Mis à jour", "Aktualisiert", "Zaktualizowano",
"Обновлено", ..., or a class such as ``date-modified``; WordPress's ``entry-date updated`` is
the post's own date) are never returned: an update date is a wrong publication date. Date
expressions are found with month names in the European languages of dateparser's locale data
and a few genitives it lacks (nominative, genitive and abbreviated: "5 grudnia 2026", "5 грудня
2026 р.", "5. Dezember 2026", "December 5, 2026", "6. oktobra 2026"), year-first dates
("2026. május 6.", "2026 m. spalio 7 d.", "2026. gada 7. oktobris", "2025年1月14日"), numeric
dates "05.12.2026", "12. 5. 2026", "2026-12-05", "27.04.24" (a two-digit year only when
labelled), and slashed dates: day first, except on ``en-US`` pages (``<html lang>``), where
"03/02/2026" is March 2; on a plain ``en`` page the page's own unambiguous slashed dates
("25/12/2026") decide, else its ambiguous ones are skipped. Relative times ("2 hours ago",
"Vandaag om 20:07") give no date. Dates after ``MAX_DATE`` or before 1990 are no dates. No
network, clock or environment: the same page gives the same answer. Figures:
``bench/dates.py``; docs/benchmarks.md.
"""

from __future__ import annotations

import re
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache

from lxml.html import HtmlElement

from crawler.parse.date_text import (
    LABEL_WINDOW,
    MAX_DATE,
    Found,
    label_of,
    text_dates,
    url_date,
)

__all__ = ["MAX_DATE", "explain", "find_published", "pruned", "text_dates", "url_date"]


# Elements that are no part of the article's own text, by tag or by the words of their class
# and id ("relatedArticles", "teaser-list", "c-sidebar__item"; camelCase and "lg:" variants
# split off first). Hard decoys hold other articles' dates (teasers, related, comments,
# tickers); soft ones are page furniture (sidebars, navigation, share bars, boxes) whose
# <time> elements inside the article's region may still be its own (a metadata column).
_SKIP_TAGS = frozenset(
    ("form", "button", "select", "script", "style", "noscript", "template", "iframe", "svg",
     "figure")
)  # fmt: skip
_FURNITURE_TAGS = frozenset(("nav", "aside"))
_HARD_DECOY = re.compile(
    r"(?:^|[\s_-])(?:comment|repl(?:y|ies)|ticker|breaking|newsletter|promo|sponsor|advert|"
    r"ads?(?:$|[\s_-])|header-?date|top-?(?:line|bar)|masthead|site-?header)",
)
# Teaser words name a block of links to other articles: without a link it is none ("card")
_TEASER_DECOY = re.compile(
    r"(?:^|[\s_-])(?:related|teaser|recommend|read-?(?:also|more|next)|more-?(?:news|stories|"
    r"articles|from)|popular|most-?read|trending|cards?(?:$|[\s_-])|similar|suggest|latest|"
    r"recent|lire|leggi|lees-?ook|czytaj|citeste|mehr-?zum|meistgelesen|weitere|more-?like)",
)
_SOFT_DECOY = re.compile(
    r"(?:^|[\s_-])(?:sidebar|side-?bar|rail|widget|share|sharing|social|nav|menu|breadcrumb|"
    r"box(?:$|[\s_-])|col-?side)",
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Class words saying what a date is: the publication, an update, or a date line of the article
_CLASS_PUBLISHED = re.compile(r"(?:^|[\s_-])(?:publish|pub-?date|posted|created|first-?pub)")
_CLASS_UPDATED = re.compile(r"(?:^|[\s_-])(?:updat|modifi|changed|edited|revis)")
# WordPress themes mark the post's own date "entry-date updated" or "published updated" (hAtom)
_CLASS_ENTRY_DATE = re.compile(r"(?:^|[\s_-])(?:entry-date|publish)")


def _says_updated(words: str) -> bool:
    """The class words (``_classes``) call the element an update date."""
    return bool(_CLASS_UPDATED.search(words)) and not _CLASS_ENTRY_DATE.search(words)


_CLASS_DATE = re.compile(
    r"(?:^|[\s_-])(?:date|time|byline|dateline|meta|info|datum|fecha|data|czas|dat|stand|"
    r"posted|publish|details)"
)
_LIST_TAGS = frozenset(("ul", "ol", "div", "section", "li", "table", "p", "span"))
_MAX_LINK_SHARE = 0.5  # a block whose text is mostly link texts is a teaser, not a byline
_HEADER_BLOCKS = 8  # blocks after the headline read as its byline/dateline, at most
_BODY_CHARS = 160  # a block this long is a paragraph: a lead, or the body's first
_LEAD_BLOCKS = 2  # long blocks before the body's element (standfirst, lead) still in the header
# A dateline: a place (a few words, a comma) or nothing before the date, a dash, colon or
# agency soon after it ("BRUSSELS, 5 December 2026 —", "Madrid, 5 de diciembre (EFE) -")
_DATELINE = re.compile(
    r"^\s*(?:(?:[^\W\d_][^\W\d_.'’-]*[\s./’'-]*){1,4},\s*(?:[^\W\d_]{1,4}\s+)?)?$"
)
_DATELINE_END = re.compile(r"^[^.!?]{0,25}?[—–:|(-]")
_DATELINE_REST = 40
_BYLINE_WORDS = 8  # words beside the date in a byline or date line, at most
_SENTENCE = re.compile(r"[^\W\d_]{3,}[.!?]\s+[^\W\d_]")  # "... elever. Kommunen ..."
_TAIL_BLOCKS = 3  # the article's last blocks, read for "Published on ..." notes
_TAIL_CHARS = 120  # the tail's blocks are this short ("Published on ...", "Posted <time>")
_DATE_LINE = 30  # an unlabelled date in the tail: at most this many other characters
_PARAGRAPH_CHARS = 40  # a <p> this long is a paragraph of the body (for finding the body)


# --------------------------------------------------------------------------- the article region


def _classes(el: HtmlElement) -> str:
    """The words of the class and id, lower-cased: "c-Sidebar__item lg:px-4" -> "c-sidebar__item
    px-4" with camelCase split ("relatedArticles" -> "related-articles")."""
    cls, ident = el.get("class"), el.get("id")
    if not cls and not ident:
        return ""
    return _class_words(f"{cls or ''} {ident or ''}")


@lru_cache(maxsize=4096)
def _class_words(raw: str) -> str:
    tokens = (token.rpartition(":")[2] for token in raw.split())
    return " ".join(_CAMEL.sub("-", token).lower() for token in tokens)


class _Lengths:
    """Text and link-text lengths of every element of a subtree, in one pass."""

    def __init__(self, root: HtmlElement) -> None:
        self.text: dict[HtmlElement, int] = {}
        self.linked: dict[HtmlElement, int] = {}
        self.links: dict[HtmlElement, int] = {}
        self._measure(root, False)

    def _measure(self, el: HtmlElement, in_link: bool) -> tuple[int, int, int]:
        # a link around a <time> is a permalink of a byline ("Posted on <a><time>"), no teaser
        link = el.tag == "a" and el.find(".//time") is None
        is_link = in_link or link
        text = len((el.text or "").strip())
        linked = text if is_link else 0
        links = 1 if link else 0
        for child in el:
            if not isinstance(child.tag, str):
                continue
            t, li, n = self._measure(child, is_link)
            tail = len((child.tail or "").strip())
            text, linked, links = text + t + tail, linked + li + (tail if is_link else 0), links + n
        self.text[el], self.linked[el], self.links[el] = text, linked, links
        return text, linked, links

    def link_heavy(self, el: HtmlElement) -> bool:
        """A list or box of links (teasers), not a byline with a link to its author."""
        links = self.links.get(el, 0)
        if links < 2 and not (el.tag == "li" and links):
            return False
        text = self.text.get(el, 0)
        return bool(text) and self.linked.get(el, 0) / text > _MAX_LINK_SHARE


def _is_decoy(el: HtmlElement, lengths: _Lengths | None = None, *, soft: bool = True) -> bool:
    """Teasers, related blocks, comments, lists of links (hard decoys), and with ``soft`` also
    page furniture: sidebars, navigation, share bars, boxes."""
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in _SKIP_TAGS or (soft and tag in _FURNITURE_TAGS):
        return True
    words = _classes(el) if tag != "time" else ""  # "teaser-stream-time": a teaser's holds it
    if words and (_HARD_DECOY.search(words) or (soft and _SOFT_DECOY.search(words))):
        return True
    if words and _TEASER_DECOY.search(words) and el.find(".//a[@href]") is not None:
        return True
    if tag in ("ul", "ol"):  # a list whose items are links: teasers, however short
        items = [c for c in el if c.tag == "li"]
        linked = sum(1 for li in items if li.find(".//a") is not None)
        if linked >= 2 and 2 * linked >= len(items):
            return True
    return lengths is not None and tag in _LIST_TAGS and lengths.link_heavy(el)


def _text_len(el: HtmlElement) -> int:
    return len("".join(el.itertext()).strip())


_TEASER_CHARS = 2500  # a decoy around the headline holding more text is a layout wrapper
_HEADLINE_CLASS = re.compile(r"(?:^|[\s_-])(?:headline|title|heading)")


def _headline(tree: HtmlElement) -> HtmlElement | None:
    """The article's headline: the longest ``<h1>`` outside navigation, breadcrumbs, asides and
    teasers (one that repeats the title, even in a "card" or a header with the site's menu);
    when there is none (every ``<h1>`` is a breadcrumb's last item, or the page has none), the first
    ``<h2>``, ``<h3>`` or element of a headline class that shares most of its words with the
    breadcrumb's ``<h1>``, ``og:title`` or ``<title>``; such a heading also wins over an
    ``<h1>`` of three words or fewer that is not the title (a label: "Article detail")."""
    titles: list[set[str]] = []
    for el in tree.iter("meta", "title"):
        if el.tag == "title" or el.get("property") in ("og:title", "twitter:title"):
            titles.append(_words(el.get("content") or el.text_content() or ""))
    h1s = list(tree.iter("h1"))
    best, best_len = None, 0
    targets = [t for t in titles if len(t) >= _HEADLINE_WORDS]
    for h1 in h1s:
        length = _text_len(h1)
        titled = _like(_words(_norm(h1)), targets)  # repeats the title: no teaser's heading
        if _teaser_or_furniture(h1, teasers=not titled, site_header=not titled):
            targets.append(_words(_norm(h1)))
            continue
        if length > best_len:
            best, best_len = h1, length
    if best is not None:
        words = _words(_norm(best))
        if len(words) > _WEAK_H1_WORDS or _like(words, targets) or not targets:
            return best
        # a label such as "Article detail": the heading that repeats the title, if any
        targets = [t for t in titles if len(t) >= _HEADLINE_WORDS]
    targets = [t for t in targets if len(t) >= _HEADLINE_WORDS]
    for el in tree.iter("h2", "h3", "div", "span", "p", "header"):
        if el.tag not in ("h2", "h3") and not _HEADLINE_CLASS.search(_classes(el)):
            continue
        words = _words(_norm(el))
        if not _HEADLINE_WORDS <= len(words) <= _HEADLINE_MAX_WORDS:
            continue
        if _like(words, targets) and not _teaser_or_furniture(el):
            return el
    return best


def _like(words: set[str], targets: list[set[str]]) -> bool:
    """Most of a heading's words (at least three) are a title's."""
    return any(
        len(words & t) >= max(_HEADLINE_WORDS, _HEADLINE_SHARE * len(words)) for t in targets
    )


_HEADLINE_WORDS = 3  # a headline found by its words has at least this many
_WEAK_H1_WORDS = 3  # an <h1> of this many words or fewer that is not the title is a label
_HEADLINE_MAX_WORDS = 60
_HEADLINE_SHARE = 0.5  # of its words in the title's
_WORD = re.compile(r"\w\w+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def _norm(el: HtmlElement) -> str:
    return " ".join("".join(el.itertext()).split()).casefold()


_SITE_NAV_LINKS = 5  # a <header> holding a <nav> with this many links is the site's header


def _teaser_or_furniture(
    heading: HtmlElement, *, teasers: bool = True, site_header: bool = True
) -> bool:
    """A heading inside navigation, an aside, a breadcrumb, or (with ``site_header``) the
    site's header, or (with ``teasers``) inside a small teaser block (a large one around it
    is a layout wrapper)."""
    for ancestor in heading.iterancestors():
        if ancestor.tag in _FURNITURE_TAGS or "breadcrumb" in _classes(ancestor):
            return True
        if (
            site_header
            and ancestor.tag == "header"
            and any(len(nav.findall(".//a")) >= _SITE_NAV_LINKS for nav in ancestor.iter("nav"))
        ):
            return True
        if teasers and _is_decoy(ancestor, soft=False) and _text_len(ancestor) <= _TEASER_CHARS:
            return True
    return False


def _container(h1: HtmlElement) -> HtmlElement:
    """The article around the headline: its ``<article>``, else the nearest ancestor whose
    paragraphs hold some text."""
    for ancestor in h1.iterancestors("article"):
        if _paragraph_chars(ancestor) >= 1:
            return ancestor
    node = h1
    for _ in range(5):
        parent = node.getparent()
        if parent is None or parent.tag in ("body", "html"):
            break
        node = parent
        if _paragraph_chars(node) >= 100:
            break
    return node


def _paragraph_chars(el: HtmlElement) -> int:
    return sum(_text_len(p) for p in el.iter("p"))


@dataclass
class _Block:
    el: HtmlElement
    text: str
    times: list[tuple[int, HtmlElement]]  # <time> elements and where their text starts
    dateish: bool = False  # its element's (or an ancestor's) class speaks of a date or byline


_INLINE_TAGS = frozenset(
    ("a", "span", "b", "i", "em", "strong", "time", "small", "abbr", "font", "sup", "sub", "u",
     "mark", "label", "cite", "q", "s", "bdi", "bdo", "data", "wbr", "br", "img")
)  # fmt: skip
_MARKED_CHARS = 200  # class words label the dates of an element holding at most this much text
# The labels class words give, as text before the element's own: found by label_of like words
_CLASS_MARKS = {"published": " \u27e6publish\u27e7 ", "updated": " \u27e6updated\u27e7 "}


def _blocks(container: HtmlElement, h1: HtmlElement) -> list[_Block]:
    """The texts of the container's blocks in document order, decoy subtrees left out (never
    the headline or what holds it). Inside page furniture (a metadata column, a share bar:
    soft decoys) only ``<time>`` elements and elements whose class speaks of a date are read.
    An element whose class says "published" or "updated" labels the dates it holds."""
    lengths = _Lengths(container)
    keep = {h1, *h1.iterancestors()}
    blocks: list[_Block] = []
    current: dict[HtmlElement, _Block] = {}

    def block_of(el: HtmlElement) -> _Block:
        node = el
        while node is not container and (not isinstance(node.tag, str) or node.tag in _INLINE_TAGS):
            node = node.getparent()
        if node not in current or current[node] is not blocks[-1]:
            current[node] = _Block(node, "", [])
            blocks.append(current[node])
        return current[node]

    def add(el: HtmlElement, text: str | None, dateish: bool) -> None:
        if text and text.strip():
            block = block_of(el)
            block.text += " " + " ".join(text.split())
            block.dateish = block.dateish or dateish

    def walk(el: HtmlElement, furniture: bool, dateish: bool) -> None:
        if el not in keep:
            if _is_decoy(el, lengths, soft=False):
                return
            furniture = furniture or _is_decoy(el, lengths)
        words = _classes(el)
        short = lengths.text.get(el, 0) <= _MARKED_CHARS
        dateish = dateish or (short and bool(words) and bool(_CLASS_DATE.search(words)))
        readable = not furniture or dateish or el.tag == "time"
        if readable and short and words:
            if _says_updated(words):
                add(el, _CLASS_MARKS["updated"], dateish)
            elif _CLASS_PUBLISHED.search(words):
                add(el, _CLASS_MARKS["published"], dateish)
        if el.tag == "time":
            block = block_of(el)
            block.times.append((len(block.text), el))
            readable = True
        if readable:
            add(el, el.text, dateish)
        for child in el:
            if isinstance(child.tag, str):
                walk(child, furniture and el.tag != "time", dateish)
            if readable and child.tail and child.tail.strip():
                add(el, child.tail, dateish)

    walk(container, False, False)
    return [b for b in blocks if b.text.strip() or b.times]


def pruned(tree: HtmlElement) -> HtmlElement:
    """A copy of the page without its decoy blocks (teasers, related, sidebars, navigation,
    comments, tickers, lists of links), the site's footers and the ``<link>`` elements of
    resources ("/static/2025-09-08T18:44:48-fbafb73/main.css": a deploy's date): what htmldate
    may read once the article's own region said nothing."""
    copy = deepcopy(tree)
    h1 = _headline(copy)
    keep = {h1, *h1.iterancestors()} if h1 is not None else set()
    lengths = _Lengths(copy)
    doomed = []
    stack = [copy]
    while stack:
        el = stack.pop()
        for child in el:
            if not isinstance(child.tag, str) or child.tag == "head":
                continue
            if child.tag == "body":
                stack.append(child)
                continue
            site_footer = child.tag == "footer" and not any(
                a.tag == "article" for a in child.iterancestors()
            )
            if child not in keep and (site_footer or _is_decoy(child, lengths)):
                doomed.append(child)
            else:
                stack.append(child)
    for link in copy.iter("link"):  # stylesheets, fonts, icons: their paths carry build dates
        rel = set((link.get("rel") or "").lower().split())
        if not rel & _PAGE_LINKS and link not in doomed:
            doomed.append(link)
    for el in doomed:
        if el.getparent() is not None:  # not the root, nor already gone with an ancestor
            el.drop_tree()  # its tail stays: text of the surroundings
    return copy


_PAGE_LINKS = frozenset(("canonical", "alternate", "amphtml", "shortlink"))  # the page's URLs


# --------------------------------------------------------------------------- choosing


def find_published(tree: HtmlElement, url: str) -> str | None:
    """The page's publication date as ``YYYY-MM-DD`` (or the ``<time datetime>`` value when
    one says so), None when the page shows none. See the module docstring for the order."""
    return explain(tree, url)[0]


def explain(tree: HtmlElement, url: str) -> tuple[str | None, str]:
    """``find_published``'s answer and the step that gave it ("labelled", "time", "url",
    "page-time", "header", "dateish", "dateline", "tail" or "none")."""
    lang, region = _language(tree)
    if region is None and lang in (None, "en"):
        region = _slash_order(tree)
    h1 = _headline(tree)
    from_url = url_date(url)
    if h1 is None:
        if from_url:
            return from_url.isoformat(), "url"
        near = _near_headline(tree, None, lang, region, times=True)
        return near if near[0] else _near_headline(tree, None, lang, region, times=False)
    container = _container(h1)
    blocks = _blocks(container, h1)
    at = next((i for i, b in enumerate(blocks) if b.el is h1 or h1 in b.el.iterancestors()), 0)
    body_el = _body_element(container)
    after = 0  # the header's blocks after the headline: up to the body
    long_blocks = 0
    for block in blocks[at + 1 : at + 1 + _HEADER_BLOCKS]:
        if _inside(block.el, body_el):
            break
        if len(block.text) >= _BODY_CHARS:
            long_blocks += 1
            if body_el is None or long_blocks > _LEAD_BLOCKS:
                break
        after += 1
    header = blocks[:at] + blocks[at + 1 : at + 1 + after]
    body = blocks[at + 1 + after :]
    tail = [b for b in body[-_TAIL_BLOCKS:] if len(b.text) <= _TAIL_CHARS]
    dateish = [b for b in body if b.dateish and len(b.text) <= _TAIL_CHARS]

    seen: dict[int, list[Found]] = {}

    def dates(block: _Block) -> list[Found]:
        if id(block) not in seen:
            seen[id(block)] = text_dates(block.text, lang, region)
        return seen[id(block)]

    # 1. labelled as the publication: header, <time>, date lines, the article's last blocks
    for block in header + [b for b in blocks if b.times] + dateish + tail:
        for found in dates(block):
            if found.label == "published":
                return found.day.isoformat(), "labelled"
        for offset, el in block.times:
            if label_of(block.text[max(0, offset - LABEL_WINDOW) : offset].lower()) == "published":
                value = _time_value(el, lang, region)
                if value:
                    return value, "labelled"
    # 2. a <time> element not labelled as an update
    for block in blocks:
        for offset, el in block.times:
            before = block.text[max(0, offset - LABEL_WINDOW) : offset].lower()
            if label_of(before) == "updated" or _says_updated(_classes(el)):
                continue
            value = _time_value(el, lang, region)
            if value:
                return value, "time"
    # 3. the URL
    if from_url:
        return from_url.isoformat(), "url"
    # 4. outside the article's region: the <time> nearest the headline
    value, step = _near_headline(tree, h1, lang, region, times=True)
    if value:
        return value, step
    # 5. the first unlabelled date of the header's short lines, then of a date line (by class),
    # then of a date line outside the region nearest the headline
    for step, lines in (("header", header), ("dateish", dateish)):
        for block in lines:
            for found in dates(block):
                if found.label is None and _byline_like(block.text, found):
                    return found.day.isoformat(), step
    value, step = _near_headline(tree, h1, lang, region, times=False)
    if value:
        return value, step
    # 6. a dateline opening the body, or a short line that is little more than a date
    for block in blocks[at + 1 : at + 1 + after] + body[:1]:  # a standfirst, the first paragraph
        for found in dates(block)[:1]:
            if found.label is None and _DATELINE.match(block.text[: found.start]):
                rest = block.text[found.end : found.end + _DATELINE_REST]
                if _DATELINE_END.search(rest):
                    return found.day.isoformat(), "dateline"
    for block in tail:
        for found in dates(block):
            if found.label is None and len(block.text) - (found.end - found.start) <= _DATE_LINE:
                return found.day.isoformat(), "tail"
    return None, "none"


_DATE_LINE_CLASS = re.compile(
    r"(?:^|[\s_-])(?:date|time|dateline|byline|publish|posted|timestamp|datum|fecha|czas)"
)


_NEAR_ELEMENTS = 40  # a date line of no date class counts this near the headline (elements)


def _near_headline(
    tree: HtmlElement,
    h1: HtmlElement | None,
    lang: str | None,
    region: str | None,
    *,
    times: bool,
) -> tuple[str | None, str]:
    """The date nearest the headline (in document order, before or after it; the first on a
    page without one) of a ``<time>`` (``times``) or else of a short date line (its class says
    date, time or byline, or it is a bare line near the headline), outside teasers, links,
    lists of links, sidebars, asides, the site's header and footer; never one labelled an
    update. What the article's region left out."""
    h1_at = next((at for at, el in enumerate(tree.iter()) if el is h1), None)
    best: tuple[int, str, str] | None = None
    for at, el in enumerate(tree.iter()):
        if not isinstance(el.tag, str) or el.tag == "a":
            continue
        distance = abs(at - h1_at) if h1_at is not None else at
        if best is not None and distance >= best[0]:
            if h1_at is None or at > h1_at:
                break  # farther on than the best: done
            continue
        if (el.tag == "time") != times:
            continue
        if times:
            value, step = _page_time(el, lang, region), "page-time"
        else:
            value, step = _page_date_line(el, lang, region, distance), "page-dateish"
        if value and (best is None or distance < best[0]):
            best = (distance, value, step)
    return (best[1], best[2]) if best else (None, "none")


def _page_time(el: HtmlElement, lang: str | None, region: str | None) -> str | None:
    if _says_updated(_classes(el)) or _in_teaser_or_site_furniture(el):
        return None
    parent = el.getparent()
    before = (parent.text_content() if parent is not None else "").split(el.text or "\0")[0]
    if label_of(before[-LABEL_WINDOW:].lower()) == "updated":
        return None
    return _time_value(el, lang, region)


def _page_date_line(
    el: HtmlElement, lang: str | None, region: str | None, distance: int
) -> str | None:
    """The date of a short date line: an element whose class says date, time or byline, or
    near the headline (``_NEAR_ELEMENTS``) any short block of its own text."""
    words = _classes(el)
    if _says_updated(words):
        return None
    classed = bool(words and _DATE_LINE_CLASS.search(words))
    if not classed:
        own = (el.text or "").strip()
        if distance > _NEAR_ELEMENTS or el.tag in _INLINE_TAGS or el.tag in _PROSE or not own:
            return None
    text = " ".join("".join(el.itertext()).split())
    if not text or len(text) > _TAIL_CHARS or _in_teaser_or_site_furniture(el):
        return None
    for found in text_dates(text, lang, region):
        if found.label == "published":
            return found.day.isoformat()
        if found.label is None and _byline_like(text, found, classed or None):
            return found.day.isoformat()
    return None


_PROSE = frozenset(("p", "li", "td", "blockquote", "figcaption", "h2", "h3", "h4"))
_BARE_LINE_WORDS = 4  # words beside the date in a date line known by nothing but its place


_SLASHED = re.compile(r"(?<![\d/])([0-3]?\d)/([0-3]?\d)/(?:19|20)\d\d(?![\d/])")


def _slash_order(tree: HtmlElement) -> str | None:
    """ "US" (month first) or "GB" (day first) when the page's own slashed dates say so
    ("25/12/2026" anywhere makes "03/02/2026" February 3), else None."""
    day_first = month_first = False
    for a, b in _SLASHED.findall(tree.text_content()):
        day_first = day_first or int(a) > 12 >= int(b)
        month_first = month_first or int(b) > 12 >= int(a)
    if day_first == month_first:
        return None
    return "GB" if day_first else "US"


def _in_teaser_or_site_furniture(el: HtmlElement) -> bool:
    if el.tag != "time" and _is_decoy(el):
        return True
    for ancestor in el.iterancestors():
        tag = ancestor.tag
        if tag == "a" or _is_decoy(ancestor):
            return True
        if tag == "footer" and not any(a.tag == "article" for a in ancestor.iterancestors()):
            return True
        if tag == "header" and any(
            len(nav.findall(".//a")) >= _SITE_NAV_LINKS for nav in ancestor.iter("nav")
        ):
            return True
    return False


def _byline_like(text: str, found: Found, classed: bool | None = True) -> bool:
    """A line that is little more than the date: a byline or date line, not a sentence of a
    lead ("Die Stadt beschloss den Bau am 12. Mai 2024."); at most ``_BYLINE_WORDS`` other
    words, or ``_BARE_LINE_WORDS`` and no full stop when nothing (``classed`` None) but its
    place says it is one."""
    rest = text[: found.start] + " " + text[found.end :]
    words = [w for w in _WORD.findall(rest) if not w.isdigit()]
    if classed is None and (len(words) > _BARE_LINE_WORDS or "." in rest.rstrip(" .")):
        return False
    return len(words) <= _BYLINE_WORDS and not _SENTENCE.search(rest) and len(text) < _BODY_CHARS


def _inside(el: HtmlElement, ancestor: HtmlElement | None) -> bool:
    return ancestor is not None and (el is ancestor or ancestor in el.iterancestors())


def _body_element(container: HtmlElement) -> HtmlElement | None:
    """The element holding most of the container's paragraphs (the body's text)."""
    counts: dict[HtmlElement, int] = {}
    for p in container.iter("p"):
        parent = p.getparent()
        if parent is not None and _text_len(p) >= _PARAGRAPH_CHARS:
            counts[parent] = counts.get(parent, 0) + 1
    best = max(counts, key=counts.__getitem__, default=None)
    return best if best is not None and counts[best] >= 2 else None


def _time_value(el: HtmlElement, lang: str | None, region: str | None) -> str | None:
    value = (el.get("datetime") or "").strip()
    if value:
        found = text_dates(value[:10])
        if found and found[0].start == 0:
            return value if len(value) > 10 else found[0].day.isoformat()
    text = " ".join("".join(el.itertext()).split())
    found = [f for f in text_dates(text, lang, region) if f.label != "updated"]
    return found[0].day.isoformat() if found else None


def _language(tree: HtmlElement) -> tuple[str | None, str | None]:
    """(language, region) of ``<html lang>``: "en-US" -> ("en", "US")."""
    root = tree.getroottree().getroot()
    value = (root.get("lang") or root.get("xml:lang") or "").strip().replace("_", "-")
    if not value:
        return None, None
    lang, _, region = value.partition("-")
    return lang.lower() or None, region.upper() or None
