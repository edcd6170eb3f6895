"""Storage rows as the commands print them with ``--json`` (the API answers the same JSON)
and as the pages show them (pure over rows and values; rows read through `rows.get`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.model import Source
from scheduler.service.health import assess
from scheduler.web.rows import get, iso_z, when

Row = Any  # a storage record (crawler.records) or a mapping of its columns


def text_time(value: Any) -> str | None:
    """A time as the JSON shows it: UTC ISO 8601 with `Z` (a datetime or stored text)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return iso_z(value)
    return str(value)


def article_json(row: Row, matched: Sequence[str] | None = None) -> dict[str, Any]:
    """One article of ``search --json`` / ``rules test --json``."""
    out = {name: get(row, name) for name in ("id", "url", "source", "title", "author")} | {
        "published": text_time(get(row, "published")),
        "first_seen": text_time(get(row, "first_seen")),
        "language": get(row, "language"),
        "summary": get(row, "summary"),
    }
    if matched is not None:
        out["matched"] = list(matched)
    return out


def alert_json(row: Row) -> dict[str, Any]:
    """One delivery of ``alerts --json``."""
    status = get(row, "status")
    matched = get(row, "matched")
    return {
        "id": get(row, "id"),
        "delivery": get(row, "delivery"),
        "event": get(row, "event"),
        "rule": get(row, "rule"),
        "channel": get(row, "channel"),
        "article_id": get(row, "article_id"),
        "story_id": get(row, "story_id"),
        "matched": json.loads(matched or "[]")
        if isinstance(matched, str | None)
        else list(matched),
        "status": status,
        "attempts": get(row, "attempts"),
        "created": text_time(get(row, "created")),
        "next_attempt": text_time(get(row, "next_attempt")) if status == "pending" else None,
        "last_attempt": text_time(get(row, "last_attempt")),
        "last_error": get(row, "last_error"),
        "sent": text_time(get(row, "sent")),
        "merged_into": get(row, "merged_into"),
    }


def source_json(
    source: Source, state: Row | None, last: Row | None, articles_24h: int
) -> dict[str, Any]:
    """One source of ``sources --json``."""
    state = state or {}
    failures = get(state, "consecutive_failures", 0) or 0
    return {
        "name": source.name,
        "kind": source.kind,
        "url": source.url,
        "status": get(state, "last_status"),
        "last_run": text_time(get(state, "last_run")),
        "last_success": text_time(get(state, "last_success")),
        "consecutive_failures": failures,
        "last_error": get(state, "last_error") if failures else None,
        "last_warning": get(state, "last_warning"),
        "next_due": text_time(get(state, "next_due")),
        "articles_24h": articles_24h,
        "last_run_counts": (
            {k: get(last, k) for k in ("fetched", "pages", "new", "seen", "off_topic", "errors")}
            if last
            else None
        ),
        "last_error_class": get(last, "error_class") if last else None,
        "last_duration": get(last, "duration") if last else None,
        "last_node": get(last, "node") if last else None,  # the node of its last run
    }


@dataclass(frozen=True)
class SourceView:
    """A source as /sources shows it."""

    name: str
    kind: str
    url: str
    status: str  # ok | failing | silent | never run
    detail: str
    last_success: datetime | None
    last_error: str | None
    error_since: datetime | None  # the first failed run of the current streak
    next_due: datetime | None
    articles_24h: int
    articles_7d: int

    @property
    def attention(self) -> bool:
        return self.status in ("failing", "silent") or self.last_error is not None


def source_view(
    source: Source,
    state: Row | None,
    failing_runs: Sequence[Row],
    recent_first_seen: Sequence[datetime],
    counts: tuple[int, int],
    failures_threshold: int,
    now: datetime,
) -> SourceView:
    """`failing_runs`: the source's latest runs, newest first, as many as it failed in a row."""
    failures = int(get(state, "consecutive_failures", 0) or 0) if state else 0
    last_error = get(state, "last_error") if state and failures else None
    if not state or not get(state, "last_run"):
        status, detail = "never run", ""
    else:
        health = assess(failures, failures_threshold, last_error, recent_first_seen, now)
        status, detail = health.state, health.detail
    since = when(failing_runs[-1], "started") if failures and failing_runs else None
    return SourceView(
        name=source.name,
        kind=source.kind,
        url=source.url,
        status=status,
        detail=detail,
        last_success=when(state, "last_success") if state else None,
        last_error=last_error,
        error_since=since,
        next_due=when(state, "next_due") if state else None,
        articles_24h=counts[0],
        articles_7d=counts[1],
    )


@dataclass
class StoryLine:
    """One story among results: the article shown for it (the newest that matched), the
    terms it matched, and the story's other articles."""

    story_id: int | None
    article: Row
    matched: list[str]
    others: list[Row] = field(default_factory=list)
    hits: int = 1  # articles of the story among the results

    @property
    def outlets(self) -> list[str]:
        own = get(self.article, "source")
        return sorted({str(get(o, "source")) for o in self.others} - {own})


def story_lines(
    found: Sequence[tuple[Row, Sequence[str]]],
    also: Callable[[int | None, int], list[Row]],
    limit: int = 50,
) -> list[StoryLine]:
    """Results grouped by story, in the order of each story's first result."""
    lines: dict[object, StoryLine] = {}
    for row, matched in found:
        story = get(row, "story_id")
        key = story if story is not None else ("article", get(row, "id"))
        line = lines.get(key)
        if line is not None:
            line.hits += 1
            continue
        if len(lines) >= limit:
            continue
        lines[key] = StoryLine(story, row, list(matched))
    for line in lines.values():
        line.others = also(line.story_id, int(get(line.article, "id")))
    return list(lines.values())


def within(rows: Sequence[Row], name: str, since: datetime) -> list[Row]:
    return [r for r in rows if (t := when(r, name)) is not None and t >= since]
