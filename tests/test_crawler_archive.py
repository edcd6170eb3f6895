"""The archive (crawler/archive/) on both engines: real SQLite files in tmp_path and real
PostgreSQL databases (tests/pgserver.py). The tests that take `archive` (or `open_engine`) are
the contract: each runs on both engines with the same expectations. The schema tests are each
engine's own (tests/test_archive_postgres.py for PostgreSQL's)."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

import crawler.archive.sqlite.base as engine_base
import crawler.archive.sqlite.schema as archive_module
from crawler.archive import (
    RETRY_WINDOW,
    SCHEMA_VERSION,
    AlertIn,
    Archive,
    ArchiveError,
    ArticleIn,
    Delivery,
    RunRecord,
    Storage,
)
from crawler.clock import iso, iso_or_none
from crawler.decide.fingerprint import text_fingerprint
from crawler.query import Document, parse
from crawler.query.search import search

NOW = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)
LONG_TEXT = (
    "NATO defence ministers agreed on Monday to deploy additional Patriot and IRIS-T air "
    "defence systems to allies on the eastern flank after months of talks in Brussels."
)


def article(
    url: str,
    *,
    source: str = "wire",
    guid: str | None = None,
    title: str | None = "A title",
    summary: str | None = None,
    text: str | None = None,
    urls: tuple[str, ...] = (),
    fingerprint: str | None = None,
) -> ArticleIn:
    return ArticleIn(
        url=url,
        source=source,
        guid=guid,
        title=title,
        author=None,
        published=None,
        language=None,
        summary=summary,
        text=text,
        fingerprint=fingerprint,
        urls=urls,
    )


def no_alerts(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
    return []


def alerts(*pairs: tuple[str, str]) -> Callable[[int, int, str], list[AlertIn]]:
    def decide(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
        return [AlertIn(rule, channel, ("nato",)) for rule, channel in pairs]

    return decide


def rows(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read the file with a separate connection, as another process would."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.execute(sql, params))
    finally:
        conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nw.db"


@pytest.fixture
def archive(open_engine: Callable[[], Storage]) -> Storage:
    """This test's archive, on each engine in turn."""
    return open_engine()


# ------------------------------------------------------------------------------ schema


def test_a_new_archive_has_the_schema_wal_and_fts(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "there.db"
    with Archive(path) as new:
        assert new.schema_version() == SCHEMA_VERSION
    assert path.is_file()
    assert rows(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    [(sql,)] = rows(path, "SELECT sql FROM sqlite_master WHERE name = 'articles_fts'")
    assert "fts5" in sql.lower()
    tables = {name for (name,) in rows(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sources", "runs", "articles", "article_urls", "article_guids", "seen"} <= tables
    assert "outbox" in tables


def test_reopening_is_idempotent_and_keeps_data(db_path: Path) -> None:
    with Archive(db_path) as first:
        first.store_article(article("https://e.org/a", text="kept text"), NOW, no_alerts)
    schema = rows(db_path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")
    for _ in range(2):
        with Archive(db_path) as again:
            assert again.schema_version() == SCHEMA_VERSION
            assert again.count_articles() == 1
    assert rows(db_path, "SELECT type, name, sql FROM sqlite_master ORDER BY name") == schema
    assert rows(db_path, "SELECT url, text FROM articles") == [("https://e.org/a", "kept text")]
    assert rows(db_path, "PRAGMA integrity_check") == [("ok",)]


def test_an_archive_from_a_newer_newswatch_is_refused(db_path: Path) -> None:
    Archive(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(ArchiveError, match="upgrade newswatch") as raised:
        Archive(db_path)
    assert str(SCHEMA_VERSION + 1) in str(raised.value)
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]  # left alone


def test_a_migration_applies_once_and_data_survives(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = archive_module.MIGRATIONS
    # a version-1 file, written by the first release
    monkeypatch.setattr(archive_module, "MIGRATIONS", real[:1])
    monkeypatch.setattr(archive_module, "SCHEMA_VERSION", 1)
    with Archive(db_path) as v1:
        assert v1.schema_version() == 1
        v1.db.execute(
            "INSERT INTO articles (url, source, title, text, first_seen, updated) "
            "VALUES ('https://e.org/old', 'wire', 'Old NATO story', 'old text', ?, ?)",
            (iso(NOW), iso(NOW)),
        )
        v1.db.execute(  # as the v1 writer indexes it: the query language's tokens
            "INSERT INTO articles_fts (rowid, title, summary, text) "
            "VALUES (last_insert_rowid(), 'old nato story', '', 'old text')"
        )
        v1.mark_seen("https://e.org/seen", "wire", "off-topic", NOW)

    calls: list[int] = []

    def add_notes(db: sqlite_utils.Database) -> None:
        calls.append(1)
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT)")
        db.execute("ALTER TABLE articles ADD COLUMN note TEXT")
        db.execute("UPDATE articles SET note = 'migrated'")

    upgraded = (*real, add_notes)
    monkeypatch.setattr(archive_module, "MIGRATIONS", upgraded)
    monkeypatch.setattr(archive_module, "SCHEMA_VERSION", len(upgraded))
    for _ in range(2):
        with Archive(db_path) as new:
            assert new.schema_version() == len(upgraded)
            assert new.is_known_url("https://e.org/seen")
            [old] = search(new, parse("nato"))
            note = new.db.execute(
                "SELECT note FROM articles WHERE id = ?", (old[0].id,)
            ).fetchone()[0]
            assert (old[0].url, note) == ("https://e.org/old", "migrated")
    assert calls == [1]

    # the real later migrations ran too: the columns of a fresh archive are all there
    fresh = db_path.parent / "fresh.db"
    monkeypatch.setattr(archive_module, "MIGRATIONS", real)
    monkeypatch.setattr(archive_module, "SCHEMA_VERSION", len(real))
    Archive(fresh).close()
    columns = {r[1] for r in rows(fresh, "PRAGMA table_info(articles)")}
    assert columns | {"note"} == {r[1] for r in rows(db_path, "PRAGMA table_info(articles)")}


def test_a_failing_migration_changes_nothing(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Archive(db_path) as current:
        current.store_article(article("https://e.org/a"), NOW, no_alerts)

    def broken(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE half_done (id INTEGER)")
        db.execute("ALTER TABLE no_such_table ADD COLUMN x TEXT")

    monkeypatch.setattr(archive_module, "MIGRATIONS", (*archive_module.MIGRATIONS, broken))
    monkeypatch.setattr(archive_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(ArchiveError):
        Archive(db_path)
    assert rows(db_path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert rows(db_path, "SELECT name FROM sqlite_master WHERE name = 'half_done'") == []
    assert rows(db_path, "SELECT url FROM articles") == [("https://e.org/a",)]


def _open_after(barrier: Any, path: Path, out: Any) -> None:
    barrier.wait()
    try:
        with Archive(path) as opened:
            out.put(opened.schema_version())
    except ArchiveError as exc:
        out.put(str(exc))


def test_processes_opening_a_new_archive_together_migrate_it_once(tmp_path: Path) -> None:
    """A service starting while `newswatch sources` runs: both find an empty file. Without the
    write lock around the migrations, 13 rounds in 30 failed with "duplicate column name"."""
    context = multiprocessing.get_context("spawn")
    for n in range(6):
        path = tmp_path / f"race-{n}.db"
        barrier, out = context.Barrier(4), context.Queue()
        procs = [context.Process(target=_open_after, args=(barrier, path, out)) for _ in range(4)]
        for proc in procs:
            proc.start()
        answers = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
        assert answers == [SCHEMA_VERSION] * 4, answers


# ------------------------------------------------------------------------------ identity


def test_the_same_canonical_url_is_unchanged(archive: Storage) -> None:
    first = archive.store_article(article("https://e.org/a", text="one"), NOW, no_alerts)
    assert (first.outcome, first.duplicate_kind) == ("new", None)
    assert first.story_id == first.article_id
    again = archive.store_article(article("https://e.org/a", text="one"), NOW, no_alerts)
    assert (again.outcome, again.duplicate_kind) == ("unchanged", "url")
    assert again.article_id == first.article_id
    assert archive.count_articles() == 1


def test_an_alias_url_is_a_duplicate(archive: Storage) -> None:
    first = archive.store_article(
        article("https://e.org/a", urls=("https://e.org/a", "https://m.e.org/a?utm_source=x")),
        NOW,
        no_alerts,
    )
    dup = archive.store_article(article("https://m.e.org/a?utm_source=x"), NOW, no_alerts)
    assert (dup.outcome, dup.duplicate_kind) == ("duplicate", "alias")
    assert dup.article_id == first.article_id
    assert archive.count_articles() == 1
    stored = archive.article(first.article_id)
    assert stored is not None and stored.url == "https://e.org/a"


def test_a_known_guid_with_a_new_url_is_a_duplicate_and_the_url_an_alias(
    archive: Storage,
) -> None:
    first = archive.store_article(article("https://e.org/a", guid="urn:1"), NOW, no_alerts)
    moved = archive.store_article(article("https://e.org/a-renamed", guid="urn:1"), NOW, no_alerts)
    assert (moved.outcome, moved.duplicate_kind) == ("duplicate", "guid")
    assert moved.article_id == first.article_id
    stored = archive.article(first.article_id)
    assert stored is not None
    assert list(stored.urls) == ["https://e.org/a", "https://e.org/a-renamed"]
    assert archive.is_known_url("https://e.org/a-renamed")
    assert archive.count_articles() == 1
    # a guid belongs to its source: the same guid elsewhere is another article
    other = archive.store_article(
        article("https://o.org/x", guid="urn:1", source="other"), NOW, no_alerts
    )
    assert other.outcome == "new"


def test_the_same_text_under_another_url_and_guid_is_a_duplicate(archive: Storage) -> None:
    fingerprint = text_fingerprint(LONG_TEXT)
    assert fingerprint is not None
    first = archive.store_article(
        article("https://e.org/a", guid="g1", text=LONG_TEXT, fingerprint=fingerprint),
        NOW,
        no_alerts,
    )
    copy = archive.store_article(
        article("https://e.org/b", guid="g2", text=LONG_TEXT.upper(), fingerprint=fingerprint),
        NOW,
        no_alerts,
    )
    assert (copy.outcome, copy.duplicate_kind) == ("duplicate", "fingerprint")
    assert copy.article_id == first.article_id
    assert archive.count_articles() == 1
    # a teaser too short to fingerprint identifies nothing
    short = archive.store_article(
        article("https://e.org/c", text="Read more", fingerprint=text_fingerprint("Read more")),
        NOW,
        no_alerts,
    )
    assert short.outcome == "new"


def test_changed_text_at_the_same_url_is_an_edit(archive: Storage) -> None:
    first = archive.store_article(
        article("https://e.org/a", title="Draft", text="the zeppelin story"), NOW, no_alerts
    )
    later = NOW + timedelta(hours=1)
    edited = archive.store_article(
        article("https://e.org/a", title="Final", text="the hovercraft story"), later, no_alerts
    )
    assert (edited.outcome, edited.article_id) == ("edited", first.article_id)
    stored = archive.article(first.article_id)
    assert stored is not None
    assert (stored.title, stored.text) == ("Final", "the hovercraft story")
    assert (iso(stored.first_seen), iso(stored.updated)) == (iso(NOW), iso(later))
    # the full-text index follows the edit
    assert [r.id for r, _ in search(archive, parse("hovercraft"))] == [first.article_id]
    assert search(archive, parse("zeppelin")) == []
    assert archive.count_articles() == 1


# ------------------------------------------------------------------------------ outbox


def outbox(archive: Storage) -> list[Delivery]:
    return sorted(archive.deliveries(), key=lambda r: r.id)


def test_alerts_are_queued_with_the_article(archive: Storage) -> None:
    seen: list[tuple[int, int, str]] = []

    def decide(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
        seen.append((article_id, story_id, outcome))
        return [AlertIn("air", "hook", ("nato", "air defence")), AlertIn("air", "mail", ())]

    stored = archive.store_article(article("https://e.org/a"), NOW, decide)
    assert seen == [(stored.article_id, stored.story_id, "new")]
    queued = outbox(archive)
    assert [(r.rule, r.channel, r.status) for r in queued] == [
        ("air", "hook", "pending"),
        ("air", "mail", "pending"),
    ]
    assert list(queued[0].matched) == ["nato", "air defence"]
    assert queued[0].article_id == stored.article_id
    assert (iso(queued[0].created), iso(queued[0].next_attempt)) == (iso(NOW), iso(NOW))
    assert iso(queued[0].expires) == iso(NOW + RETRY_WINDOW)
    assert len({r.delivery for r in queued}) == 2

    # duplicates and unchanged copies are never matched
    archive.store_article(article("https://e.org/a"), NOW, decide)
    assert len(seen) == 1 and len(outbox(archive)) == 2


def test_when_matching_fails_neither_article_nor_alert_is_stored(
    open_engine: Callable[[], Storage], engine: str, db_path: Path
) -> None:
    def broken(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
        raise RuntimeError("rule engine exploded")

    def half(article_id: int, story_id: int, outcome: str) -> Iterator[AlertIn]:
        yield AlertIn("air", "hook", ("nato",))
        raise RuntimeError("exploded after one alert")

    archive = open_engine()
    for decide in (broken, half):
        with pytest.raises(RuntimeError, match="exploded"):
            archive.store_article(
                article("https://e.org/a", guid="g", urls=("https://e.org/a?x=1",)),
                NOW,
                decide,  # type: ignore[arg-type]
            )
    assert not archive.is_known_url("https://e.org/a")
    assert not archive.is_known_url("https://e.org/a?x=1")
    assert archive.count_articles() == 0
    assert archive.deliveries() == []
    assert list(archive.iter_articles()) == []
    # the guid was not kept either: the same guid under another URL is a new article
    again = archive.store_article(article("https://e.org/b", guid="g"), NOW, no_alerts)
    assert (again.outcome, again.duplicate_kind) == ("new", None)
    if engine == "sqlite":
        for table in ("articles", "article_urls", "article_guids", "outbox"):
            expected = 1 if table in ("articles", "article_urls", "article_guids") else 0
            assert rows(db_path, f"SELECT count(*) FROM {table}") == [(expected,)], table


def test_an_edit_queues_only_new_rule_channel_pairs(archive: Storage) -> None:
    first = archive.store_article(
        article("https://e.org/a", text="NATO summit"), NOW, alerts(("nato", "hook"))
    )
    [original] = outbox(archive)
    archive.mark_sent(original.id, NOW)
    edited = archive.store_article(
        article("https://e.org/a", text="NATO summit on air defence"),
        NOW + timedelta(minutes=5),
        alerts(("nato", "hook"), ("air", "hook"), ("air", "mail")),
    )
    assert edited.outcome == "edited"
    queued = outbox(archive)
    assert [(r.rule, r.channel) for r in queued] == [
        ("nato", "hook"),
        ("air", "hook"),
        ("air", "mail"),
    ]
    assert queued[0].delivery == original.delivery
    assert queued[0].status == "sent"  # not queued again
    assert all(r.story_id == first.story_id for r in queued)


def test_due_sent_failed_and_retried_deliveries(archive: Storage) -> None:
    archive.store_article(
        article("https://e.org/a"), NOW, alerts(("r", "one"), ("r", "two"), ("r", "three"))
    )
    one, two, three = outbox(archive)
    assert archive.due_deliveries(NOW - timedelta(seconds=1)) == []
    assert [r.id for r in archive.due_deliveries(NOW)] == [one.id, two.id, three.id]
    assert len(archive.due_deliveries(NOW, limit=2)) == 2

    later = NOW + timedelta(seconds=3)
    archive.mark_sent(one.id, later)
    archive.mark_attempt_failed(two.id, later, "HTTP 500", later + timedelta(seconds=5))
    archive.mark_attempt_failed(three.id, later, "gone for good", None)

    sent = archive.delivery(one.id)
    assert sent is not None
    assert (sent.status, sent.attempts, iso_or_none(sent.sent)) == ("sent", 1, iso(later))
    retrying = archive.delivery(two.id)
    assert retrying is not None
    assert (retrying.status, retrying.attempts, retrying.last_error) == (
        "pending",
        1,
        "HTTP 500",
    )
    assert iso(retrying.next_attempt) == iso(later + timedelta(seconds=5))
    failed = archive.delivery(three.id)
    assert failed is not None and (failed.status, failed.attempts) == ("failed", 1)

    assert archive.due_deliveries(later) == []  # two waits, three failed, one sent
    assert [r.id for r in archive.due_deliveries(later + timedelta(seconds=5))] == [two.id]
    assert [r.id for r in archive.deliveries("failed")] == [three.id]

    # retry by id: only failed ones are touched; the delivery id stays
    retry_time = NOW + timedelta(days=3)
    assert archive.retry_deliveries(retry_time, [one.id, three.id]) == 1
    again = archive.delivery(three.id)
    assert again is not None
    assert (again.status, again.delivery) == ("pending", three.delivery)
    assert iso(again.next_attempt) == iso(retry_time)
    assert iso(again.expires) == iso(retry_time + RETRY_WINDOW)
    assert archive.delivery(one.id).status == "sent"  # type: ignore[union-attr]

    # retry all failed
    archive.mark_attempt_failed(two.id, later, "HTTP 500", None)
    archive.mark_attempt_failed(three.id, retry_time, "HTTP 500", None)
    assert archive.retry_deliveries(retry_time, None) == 2
    assert archive.deliveries("failed") == []
    assert archive.retry_deliveries(retry_time, None) == 0


def test_payload_is_frozen_once(archive: Storage) -> None:
    archive.store_article(article("https://e.org/a"), NOW, alerts(("r", "c")))
    [row] = outbox(archive)
    archive.set_payload(row.id, '{"first": true}')
    archive.set_payload(row.id, '{"second": true}')
    frozen = archive.delivery(row.id)
    assert frozen is not None and frozen.payload == '{"first": true}'


# ------------------------------------------------------------------------------ seen


def test_mark_seen_and_is_known_url(archive: Storage) -> None:
    assert not archive.is_known_url("https://e.org/off-topic")
    assert archive.mark_seen("https://e.org/off-topic", "wire", "off-topic", NOW) is True
    assert archive.mark_seen("https://e.org/off-topic", "wire", "off-topic", NOW) is False
    assert archive.is_known_url("https://e.org/off-topic")
    archive.store_article(
        article("https://e.org/a", urls=("https://e.org/a", "https://e.org/a?utm_source=x")),
        NOW,
        no_alerts,
    )
    assert archive.is_known_url("https://e.org/a")
    assert archive.is_known_url("https://e.org/a?utm_source=x")
    assert not archive.is_known_url("https://e.org/b")
    assert archive.count_articles() == 1  # seen URLs are not articles


# ------------------------------------------------------------------------------ search

CORPUS = [
    # (source, title, summary, text)
    ("wire", "NATO allies boost air defence", "Patriot and IRIS-T systems", "NATO said."),
    ("wire", "Air-Defence radar tested", "The radar saw drones", "A NATO range in Norway."),
    ("wire", "Rovers win the derby", "Football", "A late header settled it."),
    ("local", "OTAN: la défense aérienne renforcée", "Les alliés", "Texte en français."),
    ("local", "Türkiye hosts NATO's meeting", None, "Ministers met in Ankara."),
    ("local", "Harbour festival", "Smoked fish and bread", None),
    ("wire", "Missile defence review", "missile-defence budget", "Defensive systems."),
    ("wire", "Defenders of the realm", None, "A history book."),
    ("other", "Natoo is not a word", "senato neither", "nat o"),
    ("other", None, "NATO summary only", None),
    ("other", "Radar near NATO base", "far away", "NATO and the radar were far apart " * 3),
    ("wire", "nato", "lower-case title", "air defense in US spelling"),
]
QUERIES = [
    "nato",
    "NATO",
    '"air defence"',
    "defen*",
    'NATO AND "air defence"',
    "nato OR otan",
    "NOT nato",
    "NOT nato AND NOT radar",
    "title:nato",
    'title:"air defence"',
    "title:nato OR title:otan",
    "NEAR(nato radar, 3)",
    "NEAR(nato radar)",
    "nato NOT football",
    "(nato OR otan) AND NOT title:nato",
    "défense",
    "defense",
    "turkiye",
    "iris-t",
    'patriot OR "IRIS-T"',
    "missile*",
    "smoked fish",
    "submarine",
    'nato OR NOT "air defence"',
]


@pytest.fixture
def corpus(archive: Storage) -> Storage:
    for index, (source, title, summary, text) in enumerate(CORPUS):
        archive.store_article(
            article(
                f"https://e.org/{index}", source=source, title=title, summary=summary, text=text
            ),
            NOW + timedelta(minutes=index % 5),  # some share a first_seen second
            no_alerts,
        )
    return archive


def brute_force(
    archive: Storage,
    text: str,
    since: datetime | None = None,
    source: str | None = None,
    limit: int | None = None,
) -> list[tuple[int, list[str]]]:
    """Every article, read through the interface and tested by the query itself."""
    query = parse(text)
    found = []
    for article in archive.iter_articles():
        if since is not None and article.first_seen < since:
            continue
        if source is not None and article.source != source:
            continue
        doc = Document.from_fields(article.title, article.summary, article.text)
        matched = query.matches(doc)
        if matched is not None:
            found.append((article.first_seen, article.id, matched))
    found.sort(key=lambda f: (f[0], f[1]), reverse=True)
    return [(row_id, matched) for _, row_id, matched in found][:limit]


def searched(archive: Storage, text: str, **filters: Any) -> list[tuple[int, list[str]]]:
    return [(row.id, matched) for row, matched in search(archive, parse(text), **filters)]


@pytest.mark.parametrize("query", QUERIES)
def test_search_equals_brute_force(corpus: Storage, query: str) -> None:
    assert searched(corpus, query) == brute_force(corpus, query)


def test_search_finds_what_it_should(corpus: Storage) -> None:
    assert {row_id for row_id, _ in searched(corpus, "nato")} == {1, 2, 5, 10, 11, 12}
    assert len(searched(corpus, "NOT nato")) == len(CORPUS) - 6
    assert {row_id for row_id, _ in searched(corpus, "title:nato")} == {1, 5, 11, 12}
    assert searched(corpus, '"air defence"')[0][1] == ["air defence"]


@pytest.mark.parametrize("query", ["nato", "NOT nato", "defen*", 'title:"air defence" OR radar'])
def test_search_filters(corpus: Storage, query: str) -> None:
    since = NOW + timedelta(minutes=3)
    assert searched(corpus, query, since=since) == brute_force(corpus, query, since=since)
    assert searched(corpus, query, source="wire") == brute_force(corpus, query, source="wire")
    both: dict[str, Any] = {"since": since, "source": "local"}
    assert searched(corpus, query, **both) == brute_force(corpus, query, **both)
    for limit in (1, 2, 100):
        assert searched(corpus, query, limit=limit) == brute_force(corpus, query, limit=limit)


def test_search_equals_brute_force_for_compatibility_characters(archive: Storage) -> None:
    archive.store_article(
        article("https://jp.example/1", title="ＮＡＴＯ 首脳会議", summary="ﬁnance ministers"),
        NOW,
        no_alerts,
    )
    assert brute_force(archive, "nato AND finance") != []
    assert searched(archive, "nato AND finance") == brute_force(archive, "nato AND finance")


# ------------------------------------------------------------------------------ runs


def run(status: str, started: datetime, **extra: Any) -> RunRecord:
    return RunRecord(
        source="wire",
        started=started,
        finished=started + timedelta(seconds=2),
        status=status,
        **extra,
    )


def test_record_run_tracks_health_and_next_due(archive: Storage) -> None:
    due = NOW + timedelta(minutes=15)
    archive.record_run(run("error", NOW, error="refused", error_class="ConnectionRefused"), due)
    state = archive.source_state("wire")
    assert state is not None
    assert (state.consecutive_failures, state.last_error, iso_or_none(state.next_due)) == (
        1,
        "refused",
        iso(due),
    )
    assert state.last_success is None

    second = NOW + timedelta(minutes=15)
    archive.record_run(run("error", second, error="timeout"), second + timedelta(minutes=15))
    state = archive.source_state("wire")
    assert state is not None
    assert (state.consecutive_failures, state.last_error) == (2, "timeout")
    assert iso_or_none(state.last_run) == iso(second)

    third = NOW + timedelta(minutes=30)
    archive.record_run(run("ok", third, fetched=4, new=2), third + timedelta(minutes=15))
    state = archive.source_state("wire")
    assert state is not None
    assert state.consecutive_failures == 0
    assert iso_or_none(state.last_success) == iso(third + timedelta(seconds=2))
    assert iso_or_none(state.next_due) == iso(third + timedelta(minutes=15))
    assert state.last_status == "ok"

    archive.record_run(run("warning", third, warning="malformed feed"), None)
    state = archive.source_state("wire")
    assert state is not None
    assert (state.last_warning, state.next_due) == ("malformed feed", None)

    history = archive.runs("wire")
    assert [r.status for r in history] == ["warning", "ok", "error", "error"]
    assert history[1].fetched == 4 and history[1].new == 2
    assert history[1].duration == 2.0
    assert archive.runs("elsewhere") == []


def test_opening_waits_out_a_lock_sqlite_refuses_without_waiting() -> None:
    """Two processes switching a new file to WAL together: SQLite fails one at once ("database
    is locked", its busy handler not called); opening tries again for up to the busy timeout."""
    calls: list[float] = []

    def switch_to_wal() -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")

    engine_base._when_not_busy(switch_to_wal, 5.0)
    assert len(calls) == 3

    def broken() -> None:
        raise sqlite3.OperationalError("no such table: x")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        engine_base._when_not_busy(broken, 5.0)

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        engine_base._when_not_busy(always_locked, 0.3)
    assert time.monotonic() - started < 1.0


def test_engine_errors_leave_the_archive_as_its_own(db_path: Path) -> None:
    from crawler.archive import StorageError

    with Archive(db_path) as archive:
        archive.store_article(article("https://e.org/a", text="kept"), NOW, no_alerts)
        raw = sqlite3.connect(db_path)
        raw.execute("DROP TABLE outbox")
        raw.execute("DROP TABLE article_urls")
        raw.commit()
        raw.close()
        with pytest.raises(StorageError, match="no such table: outbox") as raised:
            archive.deliveries()
        assert isinstance(raised.value.__cause__, sqlite3.Error)
        with pytest.raises(StorageError):  # a generator's error too
            list(archive.iter_articles())  # each article's URLs are read as it is yielded
        assert archive.count_articles() == 1
