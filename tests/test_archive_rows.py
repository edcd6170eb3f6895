"""Typed records from an engine's rows (crawler/archive/rows.py): what every engine returns."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone

import pytest

from crawler.archive import AlertIn, ArticleIn, RunRecord, Storage
from crawler.archive.rows import (
    to_article,
    to_delivery,
    to_due_digest,
    to_pass,
    to_pending_page,
    to_source_state,
)
from crawler.clock import iso
from crawler.records import Article, Delivery, Run, SourceState, StoryMember

NOW = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)

ARTICLE_ROW = {
    "id": 7,
    "url": "https://e.org/a",
    "source": "wire",
    "guid": None,
    "title": "NATO",
    "author": None,
    "published": "2025-06-09T09:00:00Z",
    "first_seen": "2025-06-09T10:00:00Z",
    "updated": "2025-06-09T10:00:00Z",
    "language": "en",
    "summary": None,
    "text": "text",
    "fingerprint": None,
    "story_id": 7,
    "page_status": None,
    "description": None,
    "site_name": None,
    "title_key": None,
}


def test_times_come_back_as_aware_utc_datetimes_from_text_or_from_datetimes() -> None:
    from_text = to_article(ARTICLE_ROW)
    # an engine with a time type hands datetimes, in any zone or none (taken as UTC)
    east = timezone(timedelta(hours=2))
    from_times = to_article(
        {
            **ARTICLE_ROW,
            "published": datetime(2025, 6, 9, 11, 0, tzinfo=east),
            "first_seen": datetime(2025, 6, 9, 10, 0),
            "updated": NOW,
        }
    )
    assert from_text == from_times
    assert from_text.first_seen == NOW and from_text.first_seen.tzinfo == UTC
    assert from_text.published == NOW - timedelta(hours=1)
    assert to_article({**ARTICLE_ROW, "published": None}).published is None


def test_json_columns_come_as_text_or_as_parsed_values() -> None:
    row = {
        "id": 1,
        "delivery": "d",
        "event": "alert",
        "rule": "r",
        "channel": "c",
        "article_id": 7,
        "story_id": 7,
        "matched": '["nato", "air defence"]',
        "payload": None,
        "status": "pending",
        "attempts": 0,
        "created": "2025-06-09T10:00:00Z",
        "expires": "2025-06-10T10:00:00Z",
        "next_attempt": "2025-06-09T10:00:00Z",
        "last_attempt": None,
        "last_error": None,
        "sent": None,
        "hold_from": None,
        "hold_until": None,
        "digest_id": None,
        "pass_id": None,
        "merged_into": None,
    }
    assert to_delivery(row).matched == ("nato", "air defence")
    assert to_delivery({**row, "matched": ["nato", "air defence"]}) == to_delivery(row)
    assert to_delivery({**row, "matched": None}).matched == ()
    page = {
        "url": "https://e.org/p",
        "source": "wire",
        "attempts": 1,
        "first_attempt": NOW,
        "last_attempt": NOW,
        "last_error": "timeout",
    }
    assert to_pending_page({**page, "info": '{"title": "T"}'}).info == {"title": "T"}
    assert to_pending_page({**page, "info": {"title": "T"}}).info == {"title": "T"}
    assert to_pending_page({**page, "info": None}).info == {}
    group = {"rule": "r", "channel": "c", "hold_from": NOW, "hold_until": NOW}
    assert to_due_digest({**group, "ids": "3,1,2"}).ids == (1, 2, 3)
    assert to_due_digest({**group, "ids": [3, 1, 2]}).ids == (1, 2, 3)


def test_a_source_never_seen_and_a_row_with_nulls() -> None:
    blank = SourceState("wire")
    assert (blank.consecutive_failures, blank.next_due, blank.url) == (0, None, None)
    row = {field.name: None for field in dataclasses.fields(SourceState)}
    assert to_source_state({**row, "name": "wire"}) == blank
    lease = {"id": "p", "owner": "box:1", "started": "2025-06-09T10:00:00Z"}
    held = to_pass({**lease, "lease_until": "2025-06-09T10:01:00Z"})
    assert held.lease_until - held.started == timedelta(minutes=1)


def test_records_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        to_article(ARTICLE_ROW).title = "changed"  # type: ignore[misc]


def test_each_engine_returns_records(open_engine: Callable[[], Storage]) -> None:
    with closing(open_engine()) as archive:
        archive.register_source("wire", "feed", "https://e.org/feed")
        archive.record_run(RunRecord("wire", NOW, NOW + timedelta(seconds=2), new=1), NOW)
        article = ArticleIn(
            "https://e.org/a", "wire", None, "NATO", None, "2025-06-09T09:00:00Z", "en", None,
            "the text", None,
        )  # fmt: skip
        alert = AlertIn("r", "hook", ("nato",))
        first = archive.store_article(article, NOW, lambda *_: [alert])
        archive.store_article(
            dataclasses.replace(article, url="https://o.org/a", source="other", text="the text"),
            NOW,
            lambda *_: [],
        )
        state = archive.source_state("wire")
        assert isinstance(state, SourceState) and state.last_run == NOW
        assert state.next_due == NOW and state.last_success == NOW + timedelta(seconds=2)
        [run] = archive.runs("wire")
        assert isinstance(run, Run) and (run.new, run.duration) == (1, 2.0)
        assert archive.last_runs() == {"wire": run}
        stored = archive.article(first.article_id)
        assert isinstance(stored, Article) and stored.urls == ("https://e.org/a",)
        assert stored.published == NOW - timedelta(hours=1)
        assert iso(stored.first_seen) == "2025-06-09T10:00:00Z"
        [delivery] = archive.deliveries()
        assert isinstance(delivery, Delivery) and delivery.matched == ("nato",)
        assert (delivery.created, delivery.expires) == (NOW, NOW + timedelta(hours=24))
        articles = list(archive.iter_articles())
        assert [a.url for a in articles] == ["https://e.org/a", "https://o.org/a"]
        assert [a.urls for a in articles] == [("https://e.org/a",), ("https://o.org/a",)]
        assert archive.also_reported_by(first.story_id, 0) == [
            StoryMember("wire", "https://e.org/a", "NATO")
        ]
