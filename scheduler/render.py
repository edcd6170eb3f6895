"""What leaves the system, as values (pure): alert payloads and snippets (SPEC section 6)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

SNIPPET_CHARS = 280


def _fold(text: str) -> str:
    """Lower-case without accents, one character per character of `text` where possible."""
    out = []
    for char in text:
        base = unicodedata.normalize("NFKD", char)
        base = "".join(c for c in base if not unicodedata.combining(c)).lower()
        out.append(base[:1] if len(base) >= 1 else char)
    return "".join(out)


def term_pattern(term: str) -> re.Pattern[str]:
    """A regex over folded text finding a matched term as the query language means it."""
    term = term.removeprefix("title:").strip('"')
    prefix = term.endswith("*")
    words = re.findall(r"[^\W_]+", _fold(term.rstrip("*")))
    if not words:
        return re.compile(r"(?!x)x")
    body = r"[\W_]+".join(re.escape(w) for w in words)
    tail = r"[^\W_]*" if prefix else r"(?![^\W_])"
    return re.compile(r"(?<![^\W_])" + body + tail)


def term_spans(text: str, terms: Sequence[str]) -> list[tuple[int, int]]:
    """Non-overlapping (start, end) spans of the matched terms in `text`, in order."""
    folded = _fold(text)
    spans = sorted(
        ((m.start(), m.end()) for t in terms for m in term_pattern(t).finditer(folded) if m.end()),
        key=lambda span: (span[0], -span[1]),  # at one start the longest wins: the phrase
    )
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            continue
        merged.append((start, end))
    return merged


def snippet(text: str | None, terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """About `width` characters of `text` around the first matched term."""
    if not text:
        return ""
    text = " ".join(text.split())
    spans = term_spans(text, terms)
    if len(text) <= width:
        return text
    first = spans[0][0] if spans else 0
    # a third of the window before the match; near the end, the whole window before it
    start = max(0, min(first - width // 3, len(text) - width))
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(text), start + width)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > first else end
    return ("… " if start else "") + text[start:end].strip() + (" …" if end < len(text) else "")


def article_view(row: dict[str, Any], matched: Sequence[str]) -> dict[str, Any]:
    """The `article` object of an alert."""
    text = row.get("text") or row.get("summary")
    return {
        "url": row["url"],
        "title": row.get("title"),
        "source": row["source"],
        "published": row.get("published"),
        "author": row.get("author"),
        "language": row.get("language"),
        "summary": row.get("summary"),
        "snippet": snippet(text, matched),
    }


def story_view(story_id: int | None, also: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(story_id) if story_id is not None else None,
        "also_reported_by": [
            {"source": a["source"], "url": a["url"], "title": a.get("title")} for a in also
        ],
    }


def alert_payload(
    *,
    delivery: str,
    rule: str,
    matched: Sequence[str],
    article: dict[str, Any],
    story_id: int | None,
    also_reported_by: Sequence[dict[str, Any]],
    created: str,
) -> dict[str, Any]:
    """The webhook body of one alert, exactly as SPEC section 6 shows it."""
    return {
        "event": "alert",
        "delivery": delivery,
        "rule": rule,
        "matched": list(matched),
        "article": article_view(article, matched),
        "story": story_view(story_id, also_reported_by),
        "created": created,
    }
