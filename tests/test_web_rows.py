"""Reading storage rows in the web view (scheduler/web/rows.py, reports.text_time): typed
records and plain mappings read alike, times as datetimes or ISO text."""

from __future__ import annotations

from datetime import UTC, datetime

from crawler.model import Source
from crawler.records import SourceState
from scheduler.web.reports import source_json, text_time
from scheduler.web.rows import get, when

AT = datetime(2026, 12, 5, 11, 10, tzinfo=UTC)


def test_records_and_mappings_read_alike() -> None:
    record = SourceState("wire", last_success=AT, consecutive_failures=2, last_error="HTTP 503")
    mapping = {
        "name": "wire",
        "last_success": "2026-12-05T11:10:00Z",
        "consecutive_failures": 2,
        "last_error": "HTTP 503",
    }
    for row in (record, mapping):
        assert get(row, "name") == "wire"
        assert get(row, "missing", 7) == 7
        assert when(row, "last_success") == AT
        assert when(row, "last_run") is None
    source = Source("wire", "feed", "https://example.org/rss")
    assert source_json(source, record, None, 3) == source_json(source, mapping, None, 3)
    assert source_json(source, record, None, 3)["last_success"] == "2026-12-05T11:10:00Z"


def test_times() -> None:
    naive = datetime(2026, 12, 5, 11, 10)
    assert when({"t": naive}, "t") == AT  # a naive time is UTC
    assert when({"t": "not a time"}, "t") is None
    assert text_time(AT) == "2026-12-05T11:10:00Z"
    assert text_time("2026-12-05T11:10:00Z") == "2026-12-05T11:10:00Z"
    assert text_time(None) is None and text_time("") is None
