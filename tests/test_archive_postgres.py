"""The PostgreSQL engine's own tests, against a real server (tests/pgserver.py): its schema and
migrations, its error edge, two nodes writing at the same moment, its search index, and the
throwaway cluster the tests start when no server answers. What both engines share is the
contract in tests/test_crawler_archive.py."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pgserver
import psycopg
import pytest

import crawler.archive.postgres.schema as pg_schema
from crawler.archive import AlertIn, ArchiveError, ArticleIn, StorageError, open_archive
from crawler.archive.postgres import SCHEMA_VERSION, PostgresArchive
from crawler.archive.postgres.articles import DOC_BYTES, search_lexemes
from crawler.archive.postgres.search import to_tsquery
from crawler.decide import neardup
from crawler.query import parse
from crawler.query.search import search

NOW = datetime(2025, 6, 9, 10, 0, tzinfo=UTC)


def article(url: str, text: str | None = None, **extra: Any) -> ArticleIn:
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
    return ArticleIn(**values)


def no_alerts(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
    return []


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database with a session of its own, as another node would."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


# ------------------------------------------------------------------------------ schema


def test_a_new_archive_has_the_schema(empty_postgres_url: str) -> None:
    with PostgresArchive(empty_postgres_url) as archive:
        assert archive.schema_version() == SCHEMA_VERSION
        assert archive.writable()
    tables = {
        name
        for (name,) in query(
            empty_postgres_url,
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    }
    assert {
        "sources",
        "runs",
        "articles",
        "article_urls",
        "article_guids",
        "article_search",
        "seen",
        "pending_pages",
        "outbox",
        "passes",
        "lsh_bands",
        "article_shingles",
        "period_slots",
        "newswatch_schema",
    } == tables
    assert query(empty_postgres_url, "SELECT version FROM newswatch_schema") == [(SCHEMA_VERSION,)]


def test_the_tables_have_the_sqlite_engines_columns(postgres_url: str, tmp_path: Any) -> None:
    """Same tables, same columns, same order: rows of both engines have the same keys (the
    claims' lease columns and each source's host included: both engines claim)."""
    import sqlite3

    open_archive(path=tmp_path / "nw.db").close()
    lite = sqlite3.connect(tmp_path / "nw.db")
    for table in ("sources", "runs", "articles", "seen", "pending_pages", "outbox", "passes"):
        theirs = [row[1] for row in lite.execute(f"PRAGMA table_info({table})")]
        ours = [
            name
            for (name,) in query(
                postgres_url,
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (table,),
            )
        ]
        assert ours == theirs, table
    lite.close()


def test_reopening_keeps_data_and_an_archive_from_a_newer_newswatch_is_refused(
    postgres_url: str,
) -> None:
    with PostgresArchive(postgres_url) as first:
        first.store_article(article("https://e.org/a", text="kept text"), NOW, no_alerts)
    for _ in range(2):
        with PostgresArchive(postgres_url) as again:
            assert again.count_articles() == 1
    query(postgres_url, "UPDATE newswatch_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(ArchiveError, match="upgrade newswatch") as raised:
        PostgresArchive(postgres_url)
    assert str(SCHEMA_VERSION + 1) in str(raised.value)
    assert query(postgres_url, "SELECT version FROM newswatch_schema") == [(SCHEMA_VERSION + 1,)]


def test_a_migration_applies_once_and_a_failing_one_changes_nothing(
    empty_postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    PostgresArchive(empty_postgres_url).close()
    calls: list[int] = []

    def add_notes(conn: psycopg.Connection[Any]) -> None:
        calls.append(1)
        conn.execute("ALTER TABLE articles ADD COLUMN note text")

    def broken(conn: psycopg.Connection[Any]) -> None:
        conn.execute("CREATE TABLE half_done (id integer)")
        conn.execute("ALTER TABLE no_such_table ADD COLUMN x text")

    monkeypatch.setattr(pg_schema, "MIGRATIONS", (*pg_schema.MIGRATIONS, broken))
    monkeypatch.setattr(pg_schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(ArchiveError, match="no_such_table"):
        PostgresArchive(empty_postgres_url)
    assert query(empty_postgres_url, "SELECT version FROM newswatch_schema") == [(SCHEMA_VERSION,)]
    assert query(empty_postgres_url, "SELECT to_regclass('half_done')") == [(None,)]

    monkeypatch.setattr(pg_schema, "MIGRATIONS", (*pg_schema.MIGRATIONS[:-1], add_notes))
    for _ in range(2):
        with PostgresArchive(empty_postgres_url) as upgraded:
            assert upgraded.schema_version() == SCHEMA_VERSION + 1
    assert calls == [1]


def test_nodes_opening_a_new_archive_together_migrate_it_once(empty_postgres_url: str) -> None:
    barrier = threading.Barrier(4)
    answers: list[int | str] = []

    def open_after() -> None:
        barrier.wait()
        try:
            with PostgresArchive(empty_postgres_url) as opened:
                answers.append(opened.schema_version())
        except ArchiveError as exc:
            answers.append(str(exc))

    threads = [threading.Thread(target=open_after) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [SCHEMA_VERSION] * 4


# ------------------------------------------------------------------------------ errors


def test_a_server_that_does_not_answer_is_an_archive_error_without_the_password() -> None:
    port = pgserver.free_port()
    with pytest.raises(ArchiveError, match="cannot open the archive") as raised:
        PostgresArchive(f"postgresql://newswatch:s3cret@127.0.0.1:{port}/nw?connect_timeout=2")
    assert "s3cret" not in str(raised.value)
    assert f"127.0.0.1:{port}/nw" in str(raised.value)


def test_engine_errors_leave_the_archive_as_its_own(postgres_url: str) -> None:
    with PostgresArchive(postgres_url) as archive:
        archive.store_article(article("https://e.org/a", text="kept"), NOW, no_alerts)
        query(postgres_url, "DROP TABLE outbox")
        query(postgres_url, "DROP TABLE article_urls")
        with pytest.raises(StorageError, match="outbox") as raised:
            archive.deliveries()
        assert isinstance(raised.value.__cause__, psycopg.Error)
        with pytest.raises(StorageError):  # a generator's error too
            list(archive.iter_articles())  # each article's URLs are read as it is yielded
        with pytest.raises(StorageError), archive.transaction():
            archive.mark_seen("https://e.org/b", "wire", "off-topic", NOW)
            archive.deliveries()
        assert query(postgres_url, "SELECT count(*) FROM seen") == [(0,)]  # rolled back
        assert archive.count_articles() == 1


def test_sessions_terminated_by_the_server_are_replaced_before_the_next_call(
    postgres_url: str,
) -> None:
    with PostgresArchive(postgres_url) as archive:
        archive.mark_seen("https://e.org/a", "wire", "off-topic", NOW)
        name = postgres_url.rsplit("/", 1)[1]
        for _ in range(2):
            [(ended,)] = query(
                postgres_url,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            assert ended >= 1
            assert archive.is_known_url("https://e.org/a")  # no call fails
            assert archive.writable()


def test_a_server_gone_makes_the_archive_unwritable_quickly(postgres_url: str) -> None:
    archive = PostgresArchive(postgres_url)
    try:
        archive.pool.close()  # as if no connection could be had
        started = time.monotonic()
        assert archive.writable() is False
        assert time.monotonic() - started < 5
        with pytest.raises(StorageError):
            archive.count_articles()
    finally:
        archive.close()


# ------------------------------------------------------------------------------ two nodes


def race(url: str, nodes: int, work: Callable[[PostgresArchive, int], Any]) -> list[Any]:
    """Run `work(archive, n)` on `nodes` archives of their own (as on as many nodes), started
    at the same moment; their answers, in node order."""
    archives = [PostgresArchive(url) for _ in range(nodes)]
    barrier = threading.Barrier(nodes)
    answers: list[Any] = [None] * nodes

    def run(n: int) -> None:
        barrier.wait()
        try:
            answers[n] = work(archives[n], n)
        except Exception as exc:  # the test reports it
            answers[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for archive in archives:
        archive.close()
    return answers


def story_copies(seed: int) -> list[str]:
    """A story of its own (unlike any other seed's) and a lightly edited copy of it."""
    words = random.Random(seed).choices(VOCABULARY, k=80)
    copy = [*words]
    copy[40] = "edited"
    return [" ".join(words), " ".join(copy)]


VOCABULARY = [f"{a}{b}{c}" for a in "bdfgklmnprst" for b in "aeiou" for c in "lmnrst"]


def test_two_nodes_storing_copies_of_one_story_at_once_make_one_story_and_one_alert(
    postgres_url: str,
) -> None:
    def alerts(article_id: int, story_id: int, outcome: str) -> list[AlertIn]:
        return [AlertIn("nato", "hook", ("nato",))]

    for round_ in range(6):
        copies = story_copies(round_)
        assert neardup.same_story(*(neardup.shingles(c) for c in copies))

        def store(archive: PostgresArchive, n: int, copies: list[str] = copies) -> Any:
            return archive.store_article(
                article(
                    f"https://site{n}.example/{copies[0][:20]}",
                    text=copies[n],
                    sketch=neardup.sketch(copies[n]),
                ),
                NOW,
                alerts,
            )

        first, second = race(postgres_url, 2, store)
        assert not isinstance(first, Exception), first
        assert not isinstance(second, Exception), second
        assert first.story_id == second.story_id
        assert sorted([first.joined_story, second.joined_story]) == [False, True]
    with PostgresArchive(postgres_url) as archive:
        assert len([d for d in archive.deliveries() if d.event == "alert"]) == 6
        assert archive.count_articles() == 12


def test_two_nodes_storing_one_url_at_once_archive_it_once(postgres_url: str) -> None:
    def store(archive: PostgresArchive, n: int) -> Any:
        return archive.store_article(
            article("https://e.org/same", text="one text", guid=f"g{n}"), NOW, no_alerts
        )

    answers = race(postgres_url, 3, store)
    assert not [a for a in answers if isinstance(a, Exception)], answers
    assert sorted(a.outcome for a in answers) == ["new", "unchanged", "unchanged"]
    assert len({a.article_id for a in answers}) == 1


# ------------------------------------------------------------------------------ search


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nato", "('nato')"),
        ('"air defence"', "('air' & 'defence')"),
        ("defen*", "('defen':*)"),
        ("air-def*", "('air' & 'def':*)"),
        ("NEAR(nato radar, 3)", "('nato') & ('radar')"),
        ("(nato OR otan) AND radar", "(('nato') | ('otan')) & ('radar')"),
    ],
)
def test_an_fts_expression_becomes_a_tsquery(text: str, expected: str) -> None:
    fts = parse(text).to_fts()
    assert fts is not None
    assert to_tsquery(fts) == expected


def test_a_document_too_large_for_a_tsvector_is_always_a_candidate(postgres_url: str) -> None:
    words = [f"w{n:07d}" for n in range(DOC_BYTES // 10)]
    huge = " ".join(["nato", *words])
    assert search_lexemes(None, None, huge) is None
    with PostgresArchive(postgres_url) as archive:
        archive.store_article(article("https://e.org/huge", text=huge), NOW, no_alerts)
        archive.store_article(article("https://e.org/small", text="otan only"), NOW, no_alerts)
        assert [row.url for row, _ in search(archive, parse("nato"))] == ["https://e.org/huge"]
        assert query(postgres_url, "SELECT count(*) FROM article_search WHERE doc IS NULL") == [
            (1,)
        ]


def test_open_archive_takes_exactly_one_of_path_and_url(tmp_path: Any) -> None:
    with pytest.raises(ArchiveError, match="not both"):
        open_archive(path=tmp_path / "nw.db", url="postgresql://x@127.0.0.1/nw")
    with pytest.raises(ArchiveError, match="not both"):
        open_archive()
    with pytest.raises(ArchiveError, match="postgresql://"):
        open_archive(url="mysql://x@127.0.0.1/nw")


# ------------------------------------------------------------------------------ pgserver


def test_a_throwaway_cluster_starts_answers_survives_a_restart_and_is_stopped() -> None:
    """The tests' third way to a server (pgserver.Throwaway), on a port of its own; an open
    archive carries on through a restart of the server."""
    if pgserver.server_binaries() is None:
        pytest.skip(pgserver.HOW_TO_ENABLE)
    cluster = pgserver.Throwaway()
    try:
        cluster.start()
        assert pgserver.answers(cluster.url) is None
        with pgserver.fresh_database(cluster.url) as url:
            with PostgresArchive(url) as archive:
                archive.mark_seen("https://e.org/a", "wire", "off-topic", NOW)
                assert archive.is_known_url("https://e.org/a")
            name = url.rsplit("/", 1)[1]
        assert query(cluster.url, "SELECT 1 FROM pg_database WHERE datname = %s", (name,)) == []
        # PostgreSQL restarted under an open archive: the next calls get fresh connections
        with pgserver.fresh_database(cluster.url) as url, PostgresArchive(url) as archive:
            archive.mark_seen("https://e.org/b", "wire", "off-topic", NOW)
            cluster.restart()
            assert archive.is_known_url("https://e.org/b")
            assert archive.mark_seen("https://e.org/c", "wire", "off-topic", NOW)
            assert archive.writable()
        folder = cluster.folder
        assert folder is not None and folder.is_dir()
    finally:
        cluster.stop()
    assert pgserver.answers(cluster.url, timeout=1) is not None
    assert not folder.exists()


def test_fresh_databases_are_dropped_after_use(postgres_server: pgserver.Server) -> None:
    with pgserver.fresh_database(postgres_server.url) as url:
        name = url.rsplit("/", 1)[1]
        assert pgserver.answers(url) is None
    gone = query(postgres_server.url, "SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    assert gone == []


def test_a_pass_keeps_its_times_to_the_second(postgres_url: str) -> None:
    """Passes keep the time they are given (the contract), to the second."""
    with PostgresArchive(postgres_url) as archive:
        pass_id = archive.begin_pass("node-1:1", NOW, timedelta(seconds=60))
        [row] = archive.passes()
        assert (row.id, row.started, row.lease_until) == (
            pass_id,
            NOW,
            NOW + timedelta(seconds=60),
        )


def test_a_configured_server_that_does_not_answer_is_reported_not_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{pgserver.free_port()}/postgres?connect_timeout=1"
    monkeypatch.setenv(pgserver.ENV, url)
    server, why = pgserver.find_server()
    assert server is None
    assert why.startswith(f"{pgserver.ENV}={url} does not answer")
