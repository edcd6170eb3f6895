"""What an incoming copy of an archived article does to its record (pure)."""

from __future__ import annotations

from crawler.records import Article, ArticleIn


def decide_update(known: Article, article: ArticleIn, kind: str) -> str:
    """What an incoming copy of an archived article does to it (pure).

    "edited": the record takes the new fields (and rules are matched again); "unchanged" (the
    same URL, nothing new) or "duplicate" (known under another URL, guid or text) otherwise.
    A copy read from the article page enriches a record that only had its feed entry; a feed
    entry never overwrites what was read from the page.
    """
    if article.origin == "page":
        if known.page_status != "ok":
            return "edited"
        if kind == "url" and (known.title, known.text) != (article.title, article.text):
            return "edited"
    elif known.page_status != "ok" and kind == "url":
        stored = (known.title, known.summary, known.text)
        if stored != (article.title, article.summary, article.text):
            return "edited"
    return "unchanged" if kind == "url" else "duplicate"
