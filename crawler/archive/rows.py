"""From an engine's row to a typed record (`crawler.records`): one function per record.

A row is a mapping of column name to the value the engine stored. Every engine reads the same
columns (docs/architecture.md, "Storage"), so each engine hands its rows to these functions
and callers never see a row. The values may come as an engine keeps them: times as UTC ISO
text (SQLite) or as datetimes (an engine with a time type), JSON as text or as parsed values.
`to_time` does the same for a time read on its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crawler.clock import parse_iso
from crawler.records import (
    Article,
    Delivery,
    DueDigest,
    Pass,
    PendingPage,
    Run,
    SourceState,
    StoryMember,
)

__all__ = [
    "to_article",
    "to_delivery",
    "to_due_digest",
    "to_pass",
    "to_pending_page",
    "to_run",
    "to_source_state",
    "to_story_member",
    "to_time",
]

Row = Mapping[str, Any]


def to_time(value: str | datetime) -> datetime:
    """A stored time as an aware UTC datetime (a time without zone is UTC)."""
    when = parse_iso(value) if isinstance(value, str) else value
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _time_or_none(value: str | datetime | None) -> datetime | None:
    return to_time(value) if value else None


def _json(value: Any, empty: Any) -> Any:
    """A JSON column: text to parse, a value an engine parsed already, or NULL."""
    if value is None or value == "":
        return empty
    return json.loads(value) if isinstance(value, str | bytes) else value


def _int_or_none(value: Any) -> int | None:
    return int(value) if value is not None else None


def to_source_state(row: Row) -> SourceState:
    return SourceState(
        name=row["name"],
        kind=row["kind"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_run=_time_or_none(row["last_run"]),
        last_success=_time_or_none(row["last_success"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
        last_error_class=row["last_error_class"],
        last_warning=row["last_warning"],
        consecutive_failures=int(row["consecutive_failures"] or 0),
        next_due=_time_or_none(row["next_due"]),
        not_before=_time_or_none(row["not_before"]),
        health_state=row["health_state"],
        health_since=_time_or_none(row["health_since"]),
    )


def to_run(row: Row) -> Run:
    return Run(
        id=int(row["id"]),
        source=row["source"],
        started=to_time(row["started"]),
        finished=to_time(row["finished"]),
        status=row["status"],
        http_status=_int_or_none(row["http_status"]),
        fetched=int(row["fetched"]),
        new=int(row["new"]),
        seen=int(row["seen"]),
        off_topic=int(row["off_topic"]),
        errors=int(row["errors"]),
        error_class=row["error_class"],
        error=row["error"],
        warning=row["warning"],
        duration=float(row["duration"]),
        pages=int(row["pages"]),
        node=row.get("node"),
    )


def to_story_member(row: Row) -> StoryMember:
    return StoryMember(source=row["source"], url=row["url"], title=row["title"])


def to_article(
    row: Row, urls: Sequence[str] = (), also_reported_by: Sequence[StoryMember] = ()
) -> Article:
    """An article from its row; `urls` and `also_reported_by` when the engine read them."""
    return Article(
        id=int(row["id"]),
        url=row["url"],
        source=row["source"],
        guid=row["guid"],
        title=row["title"],
        author=row["author"],
        published=_time_or_none(row["published"]),
        first_seen=to_time(row["first_seen"]),
        updated=to_time(row["updated"]),
        language=row["language"],
        summary=row["summary"],
        text=row["text"],
        fingerprint=row["fingerprint"],
        story_id=_int_or_none(row["story_id"]),
        page_status=row["page_status"],
        description=row["description"],
        site_name=row["site_name"],
        title_key=row["title_key"],
        urls=tuple(urls),
        also_reported_by=tuple(also_reported_by),
    )


def to_pending_page(row: Row) -> PendingPage:
    return PendingPage(
        url=row["url"],
        source=row["source"],
        info=dict(_json(row["info"], {})),
        attempts=int(row["attempts"]),
        first_attempt=to_time(row["first_attempt"]),
        last_attempt=to_time(row["last_attempt"]),
        last_error=row["last_error"],
    )


def to_pass(row: Row) -> Pass:
    return Pass(
        id=row["id"],
        owner=row["owner"],
        started=to_time(row["started"]),
        lease_until=to_time(row["lease_until"]),
    )


def to_due_digest(row: Row) -> DueDigest:
    """`ids`: the held rows' ids, as a list or as comma-separated text (SQLite's
    ``group_concat``)."""
    ids = row["ids"]
    if isinstance(ids, str):
        ids = ids.split(",")
    return DueDigest(
        rule=row["rule"],
        channel=row["channel"],
        hold_from=to_time(row["hold_from"]),
        hold_until=to_time(row["hold_until"]),
        ids=tuple(sorted(int(i) for i in ids)),
    )


def to_delivery(row: Row) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        delivery=row["delivery"],
        event=row["event"],
        rule=row["rule"],
        channel=row["channel"],
        article_id=_int_or_none(row["article_id"]),
        story_id=_int_or_none(row["story_id"]),
        matched=tuple(_json(row["matched"], [])),
        payload=row["payload"],
        status=row["status"],
        attempts=int(row["attempts"]),
        created=to_time(row["created"]),
        expires=to_time(row["expires"]),
        next_attempt=to_time(row["next_attempt"]),
        last_attempt=_time_or_none(row["last_attempt"]),
        last_error=row["last_error"],
        sent=_time_or_none(row["sent"]),
        hold_from=_time_or_none(row["hold_from"]),
        hold_until=_time_or_none(row["hold_until"]),
        digest_id=_int_or_none(row["digest_id"]),
        pass_id=row["pass_id"],
        merged_into=_int_or_none(row["merged_into"]),
        lease_token=row.get("lease_token"),
    )
