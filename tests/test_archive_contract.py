"""More of the storage contract, on both engines (the `engine` fixture: a real SQLite file and a
real PostgreSQL database): pages to retry, health notices, digests, stories and their
rebuilding, pruning, transactions, and the source bookkeeping the service reads. Each test
states what the interface promises; both engines must answer alike."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crawler.archive import (
    RETRY_WINDOW,
    AlertIn,
    ArticleIn,
    RunRecord,
    Storage,
    StoryMember,
)
from crawler.decide import neardup
from crawler.decide.fingerprint import text_fingerprint
from crawler.records import Article

NOW = datetime(2025, 6, 9, 10, 20, tzinfo=UTC)
WORDS = [f"{a}{b}{c}" for a in "bdfgklmnprst" for b in "aeiou" for c in "lmnrst"]


def story(seed: int, words: int = 80) -> str:
    return " ".join(random.Random(seed).choices(WORDS, k=words))


def copy_of(text: str) -> str:
    words = text.split()
    words[len(words) // 2] = "edited"
    return " ".join(words)


def article(url: str, text: str | None = None, sketch: bool = True, **extra: Any) -> ArticleIn:
    values: dict[str, Any] = {
        "url": url,
        "source": "wire",
        "guid": None,
        "title": "A title",
        "author": None,
        "published": None,
        "language": None,
        "summary": None,
        "text": text,
        "fingerprint": None,
    }
    values.update(extra)
    made = ArticleIn(**values)
    if sketch and text:
        made.sketch = neardup.sketch(text)
    return made


def none(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
    return []


@pytest.fixture
def archive(open_engine: Callable[[], Storage]) -> Storage:
    return open_engine()


def test_pages_to_try_again(archive: Storage) -> None:
    info = {"title": "From the feed", "published": "2025-06-09T09:00:00Z"}
    archive.add_pending_page("https://e.org/p", "wire", info, "timeout", NOW)
    later = NOW + timedelta(minutes=10)
    archive.add_pending_page("https://e.org/p", "wire", info, "HTTP 503", later)
    archive.add_pending_page("https://e.org/q", "other", {}, "timeout", NOW)
    [page] = archive.pending_pages("wire", max_attempts=5)
    assert (page.url, page.source, page.info, page.attempts) == ("https://e.org/p", "wire", info, 2)
    assert (page.first_attempt, page.last_attempt, page.last_error) == (NOW, later, "HTTP 503")
    assert archive.pending_pages("wire", max_attempts=2) == []  # tried enough
    # the page read at last: storing it drops it from the list
    archive.store_article(article("https://e.org/p", "the text", origin="page"), later, none)
    assert archive.pending_pages("wire", max_attempts=5) == []
    archive.drop_pending_page("https://e.org/q")
    assert archive.pending_pages("other", max_attempts=5) == []


def test_health_state_and_its_notices_are_kept_together(archive: Storage) -> None:
    payload = json.dumps({"event": "source-health", "state": "failing"})
    archive.set_health("wire", "failing", NOW, [("ops", "d-1", payload), ("mail", "d-2", payload)])
    state = archive.source_state("wire")
    assert state is not None
    assert (state.health_state, state.health_since) == ("failing", NOW)
    notices = sorted(archive.deliveries(), key=lambda d: d.delivery)
    assert [(d.event, d.channel, d.delivery, d.status) for d in notices] == [
        ("source-health", "ops", "d-1", "pending"),
        ("source-health", "mail", "d-2", "pending"),
    ]
    assert notices[0].payload == payload and notices[0].rule is None
    assert (notices[0].created, notices[0].expires) == (NOW, NOW + RETRY_WINDOW)
    assert [d.delivery for d in archive.due_deliveries(NOW)] == ["d-1", "d-2"]


def test_sources_validators_runs_and_arrivals(archive: Storage) -> None:
    assert archive.source_state("wire") is None
    archive.register_source("wire", "feed", "https://e.org/feed.xml")
    archive.save_validators("wire", '"etag-1"', "Mon, 09 Jun 2025 09:00:00 GMT", "abc123")
    archive.save_validators("new", None, None, None)  # a source not yet registered
    states = archive.source_states()
    assert set(states) == {"wire", "new"}
    wire = states["wire"]
    assert (wire.kind, wire.url, wire.etag, wire.last_modified, wire.body_hash) == (
        "feed",
        "https://e.org/feed.xml",
        '"etag-1"',
        "Mon, 09 Jun 2025 09:00:00 GMT",
        "abc123",
    )
    not_before = NOW + timedelta(minutes=30)
    run = RunRecord("wire", NOW, NOW + timedelta(seconds=1), status="ok", not_before=not_before)
    archive.record_run(run, NOW + timedelta(minutes=15))
    archive.record_run(RunRecord("new", NOW, NOW, status="error", error="refused"), None)
    last = archive.last_runs()
    assert {name: r.status for name, r in last.items()} == {"wire": "ok", "new": "error"}
    state = archive.source_state("wire")
    assert state is not None and state.not_before == not_before

    for minutes, source in ((0, "wire"), (5, "wire"), (7, "other"), (9, "wire")):
        archive.store_article(
            article(f"https://e.org/{minutes}", f"text {minutes}", source=source),
            NOW + timedelta(minutes=minutes),
            none,
        )
    assert archive.recent_first_seen("wire", limit=2) == [
        NOW + timedelta(minutes=9),
        NOW + timedelta(minutes=5),
    ]
    assert archive.articles_since(NOW + timedelta(minutes=5)) == {"wire": 2, "other": 1}
    since = [a.url for a in archive.iter_articles(since=NOW + timedelta(minutes=5))]
    assert since == ["https://e.org/5", "https://e.org/7", "https://e.org/9"]
    assert [a.url for a in archive.iter_articles(source="other")] == ["https://e.org/7"]


def test_held_alerts_become_one_digest_when_their_period_closes(archive: Storage) -> None:
    hourly = AlertIn("air", "mail", ("nato",), digest="hourly")
    for n in range(3):
        archive.store_article(
            article(f"https://e.org/{n}", story(n)), NOW + timedelta(minutes=n), lambda *_: [hourly]
        )
    held = sorted(archive.deliveries("held"), key=lambda d: d.id)
    assert len(held) == 3
    end = datetime(2025, 6, 9, 11, 0, tzinfo=UTC)
    assert {(d.hold_from, d.hold_until) for d in held} == {(NOW.replace(minute=0), end)}
    assert archive.due_deliveries(end) == []  # held, not due
    assert archive.due_digests(end - timedelta(seconds=1)) == []
    [due] = archive.due_digests(end)
    assert (due.rule, due.channel, due.hold_until) == ("air", "mail", end)
    assert due.ids == tuple(d.id for d in held)
    digest_id = archive.add_digest("air", "mail", "digest-1", '{"digest": 1}', due.ids, end)
    assert digest_id is not None
    digest = archive.delivery(digest_id)
    assert digest is not None
    assert (digest.event, digest.status, digest.delivery, digest.payload) == (
        "digest",
        "pending",
        "digest-1",
        '{"digest": 1}',
    )
    members = [archive.delivery(i) for i in due.ids]
    assert {(m.status, m.digest_id) for m in members if m is not None} == {("digested", digest_id)}
    assert archive.due_digests(end) == []


def test_copies_join_their_story_and_a_rebuild_finds_the_same_stories(archive: Storage) -> None:
    first = archive.store_article(article("https://a.example/1", story(1)), NOW, none)
    other = archive.store_article(article("https://b.example/2", story(2)), NOW, none)
    copy = archive.store_article(
        article("https://c.example/1", copy_of(story(1)), source="other"), NOW, none
    )
    assert (copy.outcome, copy.joined_story, copy.story_id) == ("new", True, first.story_id)
    assert other.story_id != first.story_id
    assert archive.article_story(copy.article_id) == first.story_id
    assert archive.also_reported_by(first.story_id, first.article_id) == [
        StoryMember("other", "https://c.example/1", "A title")
    ]
    [exported] = [a for a in archive.iter_articles() if a.id == first.article_id]
    assert exported.also_reported_by == (StoryMember("other", "https://c.example/1", "A title"),)

    seen: list[Article] = []

    def compute(stored: Article) -> tuple[str | None, neardup.Sketch | None, str | None]:
        seen.append(stored)
        text = stored.text or ""
        return text_fingerprint(text), neardup.sketch(text), neardup.title_key(stored.title)

    progress: list[tuple[int, int]] = []
    assert archive.rebuild_stories(compute, lambda done, total: progress.append((done, total))) == 2
    assert [a.id for a in seen] == [first.article_id, other.article_id, copy.article_id]
    assert all(isinstance(a, Article) and a.first_seen == NOW for a in seen)
    assert progress[-1] == (3, 3)
    assert archive.article_story(copy.article_id) == archive.article_story(first.article_id)
    assert archive.article_story(other.article_id) == other.article_id


def test_pruning_keeps_urls_as_seen_and_articles_with_pending_alerts(archive: Storage) -> None:
    old = NOW - timedelta(days=40)
    gone = archive.store_article(
        article("https://e.org/old", story(1), urls=("https://e.org/old?utm=x",)), old, none
    )
    kept = archive.store_article(
        article("https://e.org/alerting", story(2)), old, lambda *_: [AlertIn("r", "c", ())]
    )
    fresh = archive.store_article(article("https://e.org/new", story(3)), NOW, none)
    archive.record_run(RunRecord("wire", old, old, status="ok"), None)
    archive.record_run(RunRecord("wire", NOW, NOW, status="ok"), None)
    assert archive.prune(NOW - timedelta(days=30)) == 1
    assert archive.article(gone.article_id) is None
    assert archive.article(kept.article_id) is not None  # its alert is still pending
    assert archive.article(fresh.article_id) is not None
    assert archive.count_articles() == 2
    assert archive.is_known_url("https://e.org/old")  # never fetched again
    assert archive.is_known_url("https://e.org/old?utm=x")
    assert [r.started for r in archive.runs("wire")] == [NOW]
    # its sketch went too: a copy of it is a story of its own now
    again = archive.store_article(article("https://f.example/x", copy_of(story(1))), NOW, none)
    assert (again.outcome, again.joined_story) == ("new", False)


def test_a_transaction_commits_all_or_nothing(archive: Storage) -> None:
    with pytest.raises(RuntimeError), archive.transaction():
        archive.mark_seen("https://e.org/a", "wire", "off-topic", NOW)
        archive.store_article(article("https://e.org/b", "text"), NOW, none)
        raise RuntimeError("stop")
    assert not archive.is_known_url("https://e.org/a")
    assert archive.count_articles() == 0
    with archive.transaction():
        archive.mark_seen("https://e.org/a", "wire", "off-topic", NOW)
        archive.store_article(article("https://e.org/b", "text"), NOW, none)
    assert archive.is_known_url("https://e.org/a") and archive.count_articles() == 1


def test_health_of_the_archive_itself(archive: Storage) -> None:
    assert archive.writable()
    assert archive.schema_version() >= 1
    archive.checkpoint()  # nothing to see, nothing must fail
