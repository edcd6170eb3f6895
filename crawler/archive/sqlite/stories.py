"""Stories: near-duplicate sketches (crawler.decide.neardup), clustering
a new article into its story, rebuilding every story, and a story's other articles."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from crawler.archive.rows import to_article, to_story_member
from crawler.archive.sqlite.base import SqliteBase
from crawler.clock import iso
from crawler.decide import neardup
from crawler.records import Article, StoryMember


class StoriesMixin(SqliteBase):
    def _cluster(
        self,
        article_id: int,
        sketch: neardup.Sketch | None,
        title_key: str | None,
        now: datetime,
    ) -> int:
        """Put a new article in its story: the story of the archived copies it matches (their
        stories merge if several), else a story of its own. Returns the story id."""
        stories: set[int] = set()
        if sketch is not None:
            candidates: dict[int, bool] = {}  # article id -> within the title window
            every_key = [*sketch.band_keys, *sketch.lead_keys]
            for start in range(0, len(every_key), 500):
                keys = every_key[start : start + 500]
                marks = ",".join("?" for _ in keys)
                for (other,) in self.db.execute(
                    f"SELECT DISTINCT article_id FROM lsh_bands WHERE band_key IN ({marks})",
                    keys,
                ).fetchall():
                    candidates.setdefault(int(other), False)
            if title_key is not None:
                window = iso(now - timedelta(hours=neardup.TITLE_WINDOW_HOURS))
                for (other,) in self.db.execute(
                    "SELECT id FROM articles WHERE title_key = ? AND first_seen >= ? AND id != ?",
                    (title_key, window, article_id),
                ).fetchall():
                    candidates[int(other)] = True
            own_title = self._one("SELECT title FROM articles WHERE id = ?", (article_id,))
            for other, in_window in list(candidates.items())[:200]:
                row = self._one(
                    "SELECT s.data, a.title, a.story_id FROM article_shingles s "
                    "JOIN articles a ON a.id = s.article_id WHERE s.article_id = ?",
                    (other,),
                )
                if row is None or row["story_id"] in stories:
                    continue
                theirs = neardup.decode_shingles(row["data"])
                if in_window:
                    same = neardup.same_story_with_titles(
                        sketch.shingles, theirs, (own_title or {}).get("title"), row["title"]
                    )
                else:
                    same = neardup.same_story(sketch.shingles, theirs)
                if same:
                    stories.add(int(row["story_id"]))
            self._remember_sketch(article_id, sketch)
        target = neardup.merge_target(stories)
        if target is None:
            return article_id
        story, merged = target
        if merged:
            marks = ",".join("?" for _ in merged)
            self.db.execute(
                f"UPDATE articles SET story_id = ? WHERE story_id IN ({marks})", (story, *merged)
            )
        self.db.execute("UPDATE articles SET story_id = ? WHERE id = ?", (story, article_id))
        return story

    def _remember_sketch(self, article_id: int, sketch: neardup.Sketch | None) -> None:
        if sketch is None:
            return
        self.db.conn.executemany(
            "INSERT OR IGNORE INTO lsh_bands (band_key, article_id) VALUES (?, ?)",
            [(key, article_id) for key in (*sketch.band_keys, *sketch.lead_keys)],
        )
        self.db.execute(
            "INSERT OR REPLACE INTO article_shingles (article_id, data, lead_keys) "
            "VALUES (?, ?, ?)",
            (
                article_id,
                neardup.encode_shingles(sketch.shingles),
                neardup.encode_keys(sketch.lead_keys),
            ),
        )

    def _forget_sketch(self, article_id: int) -> None:
        row = self._one(
            "SELECT data, lead_keys FROM article_shingles WHERE article_id = ?", (article_id,)
        )
        if row is None:
            return
        signature = neardup.signature(neardup.decode_shingles(row["data"]))
        keys = neardup.band_keys(signature) if signature is not None else []
        self.db.conn.executemany(
            "DELETE FROM lsh_bands WHERE band_key = ? AND article_id = ?",
            [(key, article_id) for key in (*keys, *neardup.decode_keys(row["lead_keys"]))],
        )
        self.db.execute("DELETE FROM article_shingles WHERE article_id = ?", (article_id,))

    def rebuild_stories(
        self,
        compute: Callable[[Article], tuple[str | None, neardup.Sketch | None, str | None]],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Recompute every article's fingerprint, sketch and title key (`compute(article)`) and
        its story, in arrival order, as if the articles came in again. Alerts and their
        history are untouched. Returns the number of stories."""
        total = int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])
        with self.transaction():
            self.db.execute("DELETE FROM lsh_bands")
            self.db.execute("DELETE FROM article_shingles")
            self.db.execute("UPDATE articles SET story_id = id")
        done = 0
        last = 0
        while True:
            articles = [
                to_article(row)
                for row in self._all(
                    "SELECT * FROM articles WHERE id > ? ORDER BY id LIMIT 500", (last,)
                )
            ]
            if not articles:
                break
            with self.transaction():
                for article in articles:
                    fingerprint, sketch, title_key = compute(article)
                    self.db.execute(
                        "UPDATE articles SET fingerprint = ?, title_key = ? WHERE id = ?",
                        (fingerprint, title_key, article.id),
                    )
                    self._cluster(article.id, sketch, title_key, article.first_seen)
                    done += 1
            last = articles[-1].id
            if progress is not None:
                progress(done, total)
        return int(self.db.execute("SELECT count(DISTINCT story_id) FROM articles").fetchone()[0])

    def article_story(self, article_id: int) -> int | None:
        """The story an article belongs to now (stories can merge)."""
        row = self._one("SELECT story_id FROM articles WHERE id = ?", (article_id,))
        return int(row["story_id"]) if row and row["story_id"] is not None else None

    def also_reported_by(self, story_id: int | None, article_id: int) -> list[StoryMember]:
        """Other articles of the story: the later copies, in arrival order."""
        if story_id is None:
            return []
        rows = self._all(
            "SELECT source, url, title FROM articles WHERE story_id = ? AND id != ? ORDER BY id",
            (story_id, article_id),
        )
        return [to_story_member(row) for row in rows]

    def story_articles(self, story_id: int) -> list[Article]:
        """Every article of a story, in arrival order (the web view's story page)."""
        rows = self._all("SELECT * FROM articles WHERE story_id = ? ORDER BY id", (story_id,))
        return [to_article(row) for row in rows]
