"""What leaves the system, as values (pure): alert payloads and snippets
(docs/how-it-decides.md)."""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any

from crawler.clock import iso_or_none
from crawler.records import Article, StoryMember

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


def article_fields(article: Article) -> dict[str, Any]:
    """An archived article's fields as an alert shows them (times as UTC ISO text)."""
    return {
        "url": article.url,
        "title": article.title,
        "source": article.source,
        "published": iso_or_none(article.published),
        "author": article.author,
        "language": article.language,
        "summary": article.summary,
        "text": article.text,
    }


def member_fields(member: StoryMember) -> dict[str, Any]:
    """Another article of a story as an alert shows it."""
    return {"source": member.source, "url": member.url, "title": member.title}


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
    """The webhook body of one alert, exactly as the README's quickstart shows it."""
    return {
        "event": "alert",
        "delivery": delivery,
        "rule": rule,
        "matched": list(matched),
        "article": article_view(article, matched),
        "story": story_view(story_id, also_reported_by),
        "created": created,
    }


# ------------------------------------------------------------------------------ email and chat
# Pure renderings of the payloads above (alert, digest, source-health) for people: an email
# subject, a plain-text body and an HTML alternative; a chat title and a Markdown body.

SUBJECT_PREFIX = "[newswatch]"
_SAFE_LINK = re.compile(r"https?://", re.IGNORECASE)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]])")


def digest_payload(
    *, delivery: str, rule: str, start: str, end: str, alerts: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The body of a digest (docs/how-it-decides.md, "Digests"): the alerts of one rule over
    one period, each `{rule, matched, article, story}` as in an alert."""
    return {
        "event": "digest",
        "delivery": delivery,
        "rule": rule,
        "from": start,
        "to": end,
        "alerts": [{k: a[k] for k in ("rule", "matched", "article", "story")} for a in alerts],
    }


def _one_line(text: object) -> str:
    """`text` on one line: runs of whitespace (newlines too) become one space."""
    return " ".join(str(text).split()) if text is not None else ""


def readable_time(iso: str | None) -> str:
    """`2025-06-09T10:00:00Z` as `2025-06-09 10:00 UTC`; anything else as given."""
    if not iso:
        return "unknown"
    match = re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(?::\d\d(?:\.\d+)?)?(Z|[+-]00:?00)?", iso)
    if match is None:
        return iso
    return f"{match[1]} {match[2]} UTC" if match[3] else f"{match[1]} {match[2]}"


def readable_period(start: str | None, end: str | None) -> str:
    """`2025-06-09 09:00 – 10:00 UTC` (one day) or the two times in full."""
    first, last = readable_time(start), readable_time(end)
    day, _, rest = first.partition(" ")
    if rest.endswith(" UTC") and last.startswith(day + " ") and last.endswith(" UTC"):
        return f"{first.removesuffix(' UTC')} – {last.removeprefix(day + ' ')}"
    return f"{first} – {last}"


def mark_terms(
    text: str,
    terms: Sequence[str],
    before: str,
    after: str,
    escape: Callable[[str], str] = lambda part: part,
) -> str:
    """`text` with each matched term wrapped in `before`/`after`; `escape` applies to the text
    itself (not to the markers), e.g. `html.escape`."""
    out: list[str] = []
    position = 0
    for start, end in term_spans(text, terms):
        out += [escape(text[position:start]), before, escape(text[start:end]), after]
        position = end
    out.append(escape(text[position:]))
    return "".join(out)


def _alerts_of(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return list(payload.get("alerts") or [])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def email_subject(payload: dict[str, Any]) -> str:
    """One line: `[newswatch] <rule>: <title>`, `[newswatch] <rule>: N alerts (from – to)` or
    `[newswatch] source <source> is <state>`."""
    event = payload.get("event")
    if event == "alert":
        article = payload.get("article") or {}
        title = _one_line(article.get("title")) or _one_line(article.get("url"))
        subject = f"{SUBJECT_PREFIX} {payload.get('rule')}: {title}"
    elif event == "digest":
        n = len(_alerts_of(payload))
        period = readable_period(payload.get("from"), payload.get("to"))
        subject = f"{SUBJECT_PREFIX} {payload.get('rule')}: {_count(n, 'alert')} ({period})"
    elif event == "source-health":
        subject = f"{SUBJECT_PREFIX} source {payload.get('source')} is {payload.get('state')}"
    else:
        subject = f"{SUBJECT_PREFIX} {event}"
    return _one_line(subject)


# ---- plain text


def _alert_text(alert: dict[str, Any], indent: str = "") -> list[str]:
    article = alert.get("article") or {}
    matched = [str(term) for term in alert.get("matched") or []]
    lines = [_one_line(article.get("title")) or "(no title)"]
    lines.append(f"Source:    {article.get('source')}")
    if article.get("author"):
        lines.append(f"Author:    {_one_line(article['author'])}")
    lines.append(f"Published: {readable_time(article.get('published'))}")
    lines.append(f"Link:      {article.get('url')}")
    text = _one_line(article.get("snippet"))
    if text:
        lines += ["", mark_terms(text, matched, "**", "**")]
    if matched:
        lines += ["", f"Matched:   {', '.join(matched)}"]
    also = (alert.get("story") or {}).get("also_reported_by") or []
    if also:
        lines += ["", "Also reported by:"]
        for other in also:
            title = _one_line(other.get("title"))
            named = f"{title} " if title else ""
            lines.append(f"  - {other.get('source')}: {named}<{other.get('url')}>")
    return [indent + line if line else "" for line in lines]


def _source_health_text(payload: dict[str, Any]) -> list[str]:
    lines = [f"Source {payload.get('source')} is {payload.get('state')}."]
    detail = str(payload.get("detail") or "").strip()
    if detail:
        lines += ["", detail]
    return [*lines, "", "Run newswatch sources to see the state of every source."]


def email_text(payload: dict[str, Any]) -> str:
    """The plain-text body; matched terms in the snippet are marked `**term**`."""
    event = payload.get("event")
    if event == "alert":
        lines = _alert_text(payload)
        lines += ["", "-- ", f"newswatch rule {payload.get('rule')}"]
    elif event == "digest":
        alerts = _alerts_of(payload)
        period = readable_period(payload.get("from"), payload.get("to"))
        lines = [f"{_count(len(alerts), 'alert')} for rule {payload.get('rule')}, {period}."]
        for number, alert in enumerate(alerts, 1):
            block = _alert_text(alert, indent="   ")
            lines += ["", f"{number}. {block[0].strip()}", *block[1:]]
        lines += ["", "-- ", f"newswatch rule {payload.get('rule')}"]
    elif event == "source-health":
        lines = _source_health_text(payload)
    else:
        lines = [json.dumps(payload, indent=2, ensure_ascii=False)]
    return "\n".join(lines) + "\n"


# ---- HTML

_HTML_HEAD = (
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head>\n'
    '<body style="font-family: sans-serif; line-height: 1.4">\n'
)
_HTML_FOOT = '<p style="color: #777; font-size: small">newswatch{rule}</p>\n</body></html>\n'


def _html_link(url: object, label: str | None = None) -> str:
    """An `<a>` for http(s) URLs; any other scheme is shown as text, never linked."""
    text = html.escape(str(url) if url is not None else "")
    shown = html.escape(label) if label else text
    if not _SAFE_LINK.match(str(url or "")):
        return shown
    return f'<a href="{text}">{shown}</a>'


def _alert_html(alert: dict[str, Any], heading: str = "h2") -> list[str]:
    article = alert.get("article") or {}
    matched = [str(term) for term in alert.get("matched") or []]
    title = _one_line(article.get("title")) or "(no title)"
    out = [f"<{heading}>{_html_link(article.get('url'), title)}</{heading}>", "<p>"]
    out.append(f"Source: {html.escape(str(article.get('source')))}<br>")
    if article.get("author"):
        out.append(f"Author: {html.escape(_one_line(article['author']))}<br>")
    out.append(f"Published: {html.escape(readable_time(article.get('published')))}<br>")
    out.append(f"Link: {_html_link(article.get('url'))}")
    out.append("</p>")
    text = _one_line(article.get("snippet"))
    if text:
        marked = mark_terms(text, matched, "<mark>", "</mark>", html.escape)
        out.append(f'<blockquote style="margin-left: 1em">{marked}</blockquote>')
    if matched:
        out.append(f"<p>Matched: {html.escape(', '.join(matched))}</p>")
    also = (alert.get("story") or {}).get("also_reported_by") or []
    if also:
        out.append("<p>Also reported by:</p>\n<ul>")
        for other in also:
            label = _one_line(other.get("title")) or str(other.get("url"))
            source = html.escape(str(other.get("source")))
            out.append(f"<li>{source}: {_html_link(other.get('url'), label)}</li>")
        out.append("</ul>")
    return out


def email_html(payload: dict[str, Any]) -> str:
    """The HTML alternative: everything escaped, matched terms in `<mark>`."""
    event = payload.get("event")
    rule = f" rule {html.escape(str(payload.get('rule')))}" if payload.get("rule") else ""
    out = [_HTML_HEAD.format(title=html.escape(email_subject(payload)))]
    if event == "alert":
        out += _alert_html(payload)
    elif event == "digest":
        alerts = _alerts_of(payload)
        period = readable_period(payload.get("from"), payload.get("to"))
        out.append(
            f"<h2>{_count(len(alerts), 'alert')} for rule "
            f"{html.escape(str(payload.get('rule')))}, {html.escape(period)}</h2>"
        )
        for alert in alerts:
            out += ["<hr>", *_alert_html(alert, heading="h3")]
    elif event == "source-health":
        lines = _source_health_text(payload)
        out.append(f"<h2>{html.escape(lines[0])}</h2>")
        out += [f"<p>{html.escape(line)}</p>" for line in lines[1:] if line]
    else:
        out.append(f"<pre>{html.escape(json.dumps(payload, indent=2, ensure_ascii=False))}</pre>")
    out.append(_HTML_FOOT.format(rule=rule))
    return "\n".join(out)


# ---- chat (Markdown, as Apprise takes it)


def markdown_escape(text: str) -> str:
    """`text` safe inside Markdown: its emphasis, code and link characters backslash-escaped,
    and `<` written `&lt;` so that no HTML survives a Markdown-to-HTML conversion."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("<", "&lt;")


def _markdown_link(url: object, label: str) -> str:
    if not _SAFE_LINK.match(str(url or "")):
        return markdown_escape(label)
    target = str(url).replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{markdown_escape(label)}]({target})"


def _alert_markdown(alert: dict[str, Any]) -> list[str]:
    article = alert.get("article") or {}
    matched = [str(term) for term in alert.get("matched") or []]
    title = _one_line(article.get("title")) or str(article.get("url"))
    when = readable_time(article.get("published"))
    lines = [
        f"{_markdown_link(article.get('url'), title)}",
        f"{markdown_escape(str(article.get('source')))} · {when}",
    ]
    text = _one_line(article.get("snippet"))
    if text:
        lines.append(mark_terms(text, matched, "**", "**", markdown_escape))
    also = (alert.get("story") or {}).get("also_reported_by") or []
    if also:
        links = [_markdown_link(o.get("url"), str(o.get("source"))) for o in also]
        lines.append("Also reported by " + ", ".join(links))
    return lines


def chat_title(payload: dict[str, Any]) -> str:
    """The notification title: the same line as the email subject."""
    return email_subject(payload)


def chat_markdown(payload: dict[str, Any]) -> str:
    """The Markdown body: the title as a link, source, time, the snippet with **marked**
    terms; a digest is a list of those."""
    event = payload.get("event")
    if event == "alert":
        return "\n\n".join(_alert_markdown(payload)) + "\n"
    if event == "digest":
        alerts = _alerts_of(payload)
        period = readable_period(payload.get("from"), payload.get("to"))
        rule = markdown_escape(str(payload.get("rule")))
        lines = [f"{_count(len(alerts), 'alert')} for rule {rule}, {period}:", ""]
        for alert in alerts:
            first, *rest = _alert_markdown(alert)
            lines.append("  \n".join([f"- {first}", *(f"  {line}" for line in rest)]))
        return "\n".join(lines) + "\n"
    if event == "source-health":
        lines = [markdown_escape(line) for line in _source_health_text(payload) if line]
        return "\n\n".join(lines) + "\n"
    return "```\n" + json.dumps(payload, indent=2, ensure_ascii=False) + "\n```\n"
