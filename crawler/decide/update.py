"""What an incoming copy of an archived article does to its record (pure)."""

from __future__ import annotations

from typing import Any

from crawler.records import ArticleIn


def decide_update(row: dict[str, Any], article: ArticleIn, kind: str) -> str:
    """What an incoming copy of an archived article does to it (pure).

    "edited": the record takes the new fields (and rules are matched again); "unchanged" (the
    same URL, nothing new) or "duplicate" (known under another URL, guid or text) otherwise.
    A copy read from the article page enriches a record that only had its feed entry; a feed
    entry never overwrites what was read from the page.
    """
    if article.origin == "page":
        if row["page_status"] != "ok":
            return "edited"
        if kind == "url" and (row["title"], row["text"]) != (article.title, article.text):
            return "edited"
    elif row["page_status"] != "ok" and kind == "url":
        stored = (row["title"], row["summary"], row["text"])
        if stored != (article.title, article.summary, article.text):
            return "edited"
    return "unchanged" if kind == "url" else "duplicate"
