"""`newswatch migrate --to URL` end to end: a real SQLite archive (crawled from the fixture
site, plus every kind of row the crawl did not make) copied into a real, empty PostgreSQL
database; the commands then answer alike on both, the SQLite file's bytes are unchanged, a
non-empty target is refused, and a copy that fails half-way leaves nothing behind."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from nw import json_out, newswatch, write_config
from servers import FixtureSite, WebhookReceiver

from crawler.archive import AlertIn, ArticleIn, RunRecord, open_archive
from crawler.decide import neardup

FIXTURE_SITE = Path(__file__).parent / "fixtures" / "site"
STORY = " ".join(f"word{n % 97} story{n % 13} text{n}" for n in range(120))
NOW = datetime(2025, 6, 9, 10, 20, tzinfo=UTC)
SOURCES = """
[[sources]]
name = "defence-daily"
feed = "{site}/feeds/defence.xml"

[[sources]]
name = "other-outlet"
feed = "{site}/feeds/other-outlet.xml"

[[rules]]
name = "air-defence"
query = 'NATO OR defence'
notify = ["ops-hook"]

[[rules]]
name = "hourly"
query = 'defence'
notify = ["ops-hook"]
digest = "hourly"

[channels.ops-hook]
type = "webhook"
url = "{hook}"
"""


def file_hashes(path: Path) -> dict[str, str]:
    """The archive file's hash, and its write-ahead log's if it has content (a read-only
    reader of a WAL file leaves an empty one, and the index beside it, as any reader does)."""
    wal = path.with_name(path.name + "-wal")
    files = [path, wal] if wal.exists() and wal.stat().st_size else [path]
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def more_rows(path: Path) -> None:
    """What one crawl does not leave: a page to retry, a seen URL, an alias and a GUID, a
    failed delivery, a pass still holding an alert, a digest, a health notice, a period slot,
    validators."""
    archive = open_archive(path=path)
    try:
        archive.add_pending_page(
            "https://e.org/later", "defence-daily", {"title": "Later"}, "HTTP 503", NOW
        )
        archive.mark_seen("https://e.org/off-topic", "defence-daily", "topic", NOW)
        archive.save_validators("defence-daily", '"etag-1"', "Mon, 09 Jun 2025 10:00:00 GMT", "h")
        extra = ArticleIn(
            url="https://e.org/guided",
            source="other-outlet",
            guid="tag:e.org,2025:1",
            title="Ministers talk about fisheries",
            author="A. Writer",
            published="2025-06-09T09:00:00Z",
            language="en",
            summary="Fisheries",
            text="Ministers met to talk about fisheries quotas in the north sea. " * 5,
            fingerprint=None,
            urls=("https://e.org/guided?amp=1", "https://e.org/guided"),
        )
        for n, where in enumerate(("https://e.org/story", "https://f.org/copy")):
            text = STORY + (" Updated." if n else "")
            copy = dataclasses.replace(extra, url=where, guid=None, urls=(), text=text)
            copy.sketch = neardup.sketch(text)
            archive.store_article(copy, NOW, lambda *_: [])
        alert = AlertIn("fish", "ops-hook", ("fisheries",))
        held = AlertIn("fish-digest", "ops-hook", ("fisheries",), digest="daily")
        pass_id = archive.begin_pass("elsewhere:1", NOW, timedelta(minutes=1))
        archive.store_article(extra, NOW, lambda *_: [alert, held], hold=pass_id)
        archive.record_run(
            RunRecord(
                source="other-outlet",
                started=NOW,
                finished=NOW + timedelta(seconds=2),
                status="error",
                http_status=503,
                error="HTTP 503",
                error_class="http",
            ),
            NOW + timedelta(minutes=5),
        )
        archive.set_health("other-outlet", "failing", NOW, [("ops-hook", "health-1", "{}")])
        [failing] = [d for d in archive.deliveries("pending") if d.delivery == "health-1"]
        archive.mark_attempt_failed(failing.id, NOW, "HTTP 410", None)
        archive.claim_slot("prune", "2025-06-09T10:00:00Z", "node-a:1", NOW)
    finally:
        archive.close()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite archive crawled twice from the fixture site and given every other kind of
    row, made once for this module (each test copies it)."""
    where = tmp_path_factory.mktemp("template")
    with FixtureSite(FIXTURE_SITE) as site, WebhookReceiver() as hook:
        body = '[archive]\npath = "nw.db"\n\n' + SOURCES.format(site=site.url, hook=hook.url)
        config = write_config(where, body)
        for args in (("crawl",), ("crawl", "--all")):
            done = newswatch(config, *args)
            assert done.returncode == 0, done.stderr
    more_rows(where / "nw.db")
    return where


@pytest.fixture
def crawled(template: Path, tmp_path: Path) -> Path:
    """This test's config and its own copy of the template archive."""
    shutil.copy(template / "nw.db", tmp_path / "nw.db")
    config = tmp_path / "newswatch.toml"
    config.write_text((template / "newswatch.toml").read_text())
    return config


def answers(config: Path) -> dict[str, Any]:
    export = newswatch(config, "export")
    assert export.returncode == 0, export.stderr
    return {
        "search": json_out(newswatch(config, "search", "nato OR fisheries", "--json")),
        "phrase": json_out(newswatch(config, "search", '"air defence"', "--json")),
        "sources": json_out(newswatch(config, "sources", "--json")),
        "alerts": json_out(newswatch(config, "alerts", "--json")),
        "export": [json.loads(line) for line in export.stdout.splitlines()],
    }


def test_migrate_copies_everything_and_the_commands_answer_alike(
    crawled: Path, empty_postgres_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "nw.db"
    before = answers(crawled)
    lite = open_archive(path=path)
    try:
        records = {
            "deliveries": lite.deliveries(),
            "passes": lite.passes(),
            "states": lite.source_states(),
            "runs": lite.runs(),
            "pending": lite.pending_pages("defence-daily", 5),
            "articles": list(lite.iter_articles()),
        }
    finally:
        lite.close()
    hashes = file_hashes(path)  # as any command leaves it

    done = newswatch(crawled, "migrate", "--to", empty_postgres_url)
    assert done.returncode == 0, done.stderr
    assert "migrate: articles" in done.stderr  # progress
    assert "unchanged" in done.stdout and "articles" in done.stdout
    assert file_hashes(path) == hashes  # the SQLite file, byte for byte

    url_config = write_config(
        tmp_path,
        crawled.read_text().replace('path = "nw.db"', f'url = "{empty_postgres_url}"'),
        name="pg.toml",
    )
    after = answers(url_config)
    assert before["export"] and before["alerts"] and before["search"]
    assert {d["status"] for d in before["alerts"]} >= {"sent", "failed", "held"}
    assert any(r["also_reported_by"] for r in before["export"])  # stories came across
    assert after == before

    pg = open_archive(url=empty_postgres_url)
    try:
        assert pg.deliveries() == records["deliveries"]
        assert pg.passes() == records["passes"]
        assert pg.source_states() == records["states"]
        assert pg.runs() == records["runs"]
        assert pg.pending_pages("defence-daily", 5) == records["pending"]
        assert list(pg.iter_articles()) == records["articles"]
        assert pg.is_known_url("https://e.org/off-topic")
        assert pg.is_known_url("https://e.org/guided?amp=1")
        found = pg.find_article([], "other-outlet", "tag:e.org,2025:1", None)
        assert found is not None and found[0].url == "https://e.org/guided"
        assert pg.claim_slot("prune", "2025-06-09T10:00:00Z", "node-b:1", NOW) is False
        # new rows go on after the copied ids
        top = max(a.id for a in records["articles"])
        stored = pg.store_article(
            ArticleIn(
                url="https://e.org/new",
                source="wire",
                guid=None,
                title="New",
                author=None,
                published=None,
                language=None,
                summary=None,
                text="something new",
                fingerprint=None,
            ),
            NOW,
            lambda *_: [],
        )
        assert stored.article_id > top
    finally:
        pg.close()
    # the archive at the URL is no longer empty: a second migrate is refused
    again = newswatch(crawled, "migrate", "--to", empty_postgres_url)
    assert again.returncode == 1
    assert "already holds an archive" in again.stderr and "empty database" in again.stderr


def test_a_copy_that_fails_half_way_leaves_nothing(
    crawled: Path, empty_postgres_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "nw.db"
    # a NUL in the last outbox row: SQLite keeps it, PostgreSQL's text refuses it, after the
    # articles, their URLs and stories were copied in the same transaction
    with sqlite3.connect(path) as conn:
        last = "(SELECT max(id) FROM outbox)"
        conn.execute(f"UPDATE outbox SET last_error = 'bad' || char(0) WHERE id = {last}")
    conn.close()
    hashes = file_hashes(path)
    failed = newswatch(crawled, "migrate", "--to", empty_postgres_url)
    assert failed.returncode == 1, failed.stdout
    assert "nothing was kept" in failed.stderr
    assert "migrate: articles" in failed.stderr  # it had got that far
    assert file_hashes(path) == hashes
    for table in ("articles", "article_urls", "lsh_bands", "sources", "runs", "outbox"):
        assert count(empty_postgres_url, table) == 0, table
    # fixed, it runs again into the same database
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE outbox SET last_error = 'bad' WHERE last_error LIKE 'bad%'")
    conn.close()
    done = newswatch(crawled, "migrate", "--to", empty_postgres_url)
    assert done.returncode == 0, done.stderr
    assert count(empty_postgres_url, "articles") > 0


def test_migrate_refuses_what_it_cannot_do(
    crawled: Path, empty_postgres_url: str, tmp_path: Path
) -> None:
    bad = newswatch(crawled, "migrate", "--to", "mysql://db/news")
    assert bad.returncode == 2 and "postgresql://" in bad.stderr
    with psycopg.connect(empty_postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    other = newswatch(crawled, "migrate", "--to", empty_postgres_url)
    assert other.returncode == 1
    assert "is not empty (tables invoices)" in other.stderr
    assert count(empty_postgres_url, "invoices") == 0
    pg_config = write_config(tmp_path, f'[archive]\nurl = "{empty_postgres_url}"\n', name="pg.toml")
    wrong_side = newswatch(pg_config, "migrate", "--to", empty_postgres_url)
    assert wrong_side.returncode == 2 and "[archive] path" in wrong_side.stderr
