"""The archive opens in Datasette with its full-text index: `datasette archive.db` finds the
articles' FTS table, and `_search=` on `articles` works, on a new archive and after edits and
pruning (the external-content index stays in step with the rows)."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from datasette.app import Datasette
from datasette.utils import detect_fts

from crawler.archive import Archive, ArticleIn
from crawler.query import parse
from crawler.query.search import search

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def _article(url: str, title: str, text: str, origin: str = "feed") -> ArticleIn:
    return ArticleIn(
        url=url,
        source="wire",
        guid=None,
        title=title,
        author=None,
        published=None,
        language="en",
        summary=None,
        text=text,
        fingerprint=None,
        origin=origin,
    )


def _search(path: Path, terms: str) -> list[str]:
    async def ask() -> list[dict[str, Any]]:
        ds = Datasette([str(path)])
        await ds.invoke_startup()
        response = await ds.client.get(
            f"/{path.stem}/articles.json", params={"_search": terms, "_shape": "array"}
        )
        assert response.status_code == 200, response.text
        return list(response.json())

    return sorted(row["url"] for row in asyncio.run(ask()))


def test_datasette_finds_the_articles_search_index_and_searches_it(tmp_path: Path) -> None:
    path = tmp_path / "archive.db"
    with Archive(path) as archive:
        archive.store_article(
            _article("https://e.org/1", "NATO summit", "Allies met in Vilnius."), NOW, lambda *_: []
        )
        archive.store_article(
            _article("https://e.org/2", "Naval drills", "Ships sailed in the Baltic."),
            NOW,
            lambda *_: [],
        )
    with sqlite3.connect(path) as conn:
        assert detect_fts(conn, "articles") == "articles_fts"
    assert _search(path, "nato") == ["https://e.org/1"]
    assert _search(path, "baltic") == ["https://e.org/2"]

    # an edit re-indexes the article: its old words are gone, its new ones found
    with Archive(path) as archive:
        archive.store_article(
            _article("https://e.org/2", "Naval drills", "Frigates sailed near Gotland.", "page"),
            NOW,
            lambda *_: [],
        )
        assert [row.url for row, _ in search(archive, parse("gotland"))] == ["https://e.org/2"]
        assert search(archive, parse("baltic")) == []
    assert _search(path, "gotland") == ["https://e.org/2"]
    assert _search(path, "baltic") == []

    # pruning removes what it deletes from the index too; the index stays consistent
    with Archive(path) as archive:
        assert archive.prune(NOW + timedelta(days=1)) == 2
    assert _search(path, "nato") == []
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO articles_fts (articles_fts) VALUES ('integrity-check')")
        assert conn.execute("SELECT count(*) FROM articles_fts_docsize").fetchone() == (0,)
