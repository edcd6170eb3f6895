"""Stories: near-duplicate sketches (crawler.decide.neardup), clustering a new article into its
story, rebuilding every story, and a story's other articles. The same steps and decisions as
the SQLite engine (`crawler.archive.sqlite.stories`), so both cluster alike.

Two nodes may archive two copies of one story at the same moment. `store_article` takes a
transaction-scoped advisory lock on each band key, lead key and title key of the new article
before it looks for candidates (`_lock`), so the second copy waits for the first to commit and
then finds it: one story, as with one writer. The locks end with the transaction (safe behind
pgbouncer's transaction pooling; nothing is left held when a session is lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from crawler.archive.postgres.base import PostgresBase, ts
from crawler.archive.rows import to_article, to_story_member
from crawler.decide import neardup
from crawler.records import Article, StoryMember


class StoriesMixin(PostgresBase):
    def _lock(self, keys: Iterable[int]) -> None:
        """Wait for, then hold until the transaction ends, an advisory lock on each key (in
        ascending order, so two transactions never wait for each other in a circle)."""
        ordered = sorted(set(keys))
        if ordered:
            self._execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM "
                "(SELECT k FROM unnest(%s::bigint[]) AS k ORDER BY k) AS keys",
                (ordered,),
            )

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
            for row in self._all(
                "SELECT DISTINCT article_id FROM lsh_bands WHERE band_key = ANY(%s::bigint[]) "
                "ORDER BY article_id",
                (every_key,),
            ):
                candidates.setdefault(int(row["article_id"]), False)
            if title_key is not None:
                window = ts(now - timedelta(hours=neardup.TITLE_WINDOW_HOURS))
                for row in self._all(
                    "SELECT id FROM articles WHERE title_key = %s AND first_seen >= %s "
                    "AND id != %s ORDER BY id",
                    (title_key, window, article_id),
                ):
                    candidates[int(row["id"])] = True
            own_title = self._one("SELECT title FROM articles WHERE id = %s", (article_id,))
            for other, in_window in list(candidates.items())[:200]:
                shingles = self._one(
                    "SELECT s.data, a.title, a.story_id FROM article_shingles s "
                    "JOIN articles a ON a.id = s.article_id WHERE s.article_id = %s",
                    (other,),
                )
                if shingles is None or shingles["story_id"] in stories:
                    continue
                theirs = neardup.decode_shingles(bytes(shingles["data"]))
                if in_window:
                    same = neardup.same_story_with_titles(
                        sketch.shingles, theirs, (own_title or {}).get("title"), shingles["title"]
                    )
                else:
                    same = neardup.same_story(sketch.shingles, theirs)
                if same:
                    stories.add(int(shingles["story_id"]))
            self._remember_sketch(article_id, sketch)
        target = neardup.merge_target(stories)
        if target is None:
            return article_id
        story, merged = target
        if merged:
            self._execute(
                "UPDATE articles SET story_id = %s WHERE story_id = ANY(%s::bigint[])",
                (story, list(merged)),
            )
        self._execute("UPDATE articles SET story_id = %s WHERE id = %s", (story, article_id))
        return story

    def _remember_sketch(self, article_id: int, sketch: neardup.Sketch | None) -> None:
        if sketch is None:
            return
        self._execute(
            "INSERT INTO lsh_bands (band_key, article_id) "
            "SELECT k, %s FROM unnest(%s::bigint[]) AS k ON CONFLICT DO NOTHING",
            (article_id, [*sketch.band_keys, *sketch.lead_keys]),
        )
        self._execute(
            """INSERT INTO article_shingles (article_id, data, lead_keys) VALUES (%s, %s, %s)
               ON CONFLICT (article_id) DO UPDATE
               SET data = excluded.data, lead_keys = excluded.lead_keys""",
            (
                article_id,
                neardup.encode_shingles(sketch.shingles),
                neardup.encode_keys(sketch.lead_keys),
            ),
        )

    def _forget_sketch(self, article_id: int) -> None:
        row = self._one(
            "SELECT data, lead_keys FROM article_shingles WHERE article_id = %s", (article_id,)
        )
        if row is None:
            return
        signature = neardup.signature(neardup.decode_shingles(bytes(row["data"])))
        keys = neardup.band_keys(signature) if signature is not None else []
        lead = neardup.decode_keys(bytes(row["lead_keys"]) if row["lead_keys"] else None)
        self._execute(
            "DELETE FROM lsh_bands WHERE article_id = %s AND band_key = ANY(%s::bigint[])",
            (article_id, [*keys, *lead]),
        )
        self._execute("DELETE FROM article_shingles WHERE article_id = %s", (article_id,))

    def rebuild_stories(
        self,
        compute: Callable[[Article], tuple[str | None, neardup.Sketch | None, str | None]],
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Recompute every article's fingerprint, sketch and title key (`compute(article)`) and
        its story, in arrival order, as if the articles came in again. Alerts and their
        history are untouched. Returns the number of stories.

        Each batch holds the articles table against other writers (a node archiving meanwhile
        waits for the batch), instead of an advisory lock per key."""
        total = int((self._one("SELECT count(*) AS n FROM articles") or {"n": 0})["n"])
        with self._transaction():
            self._execute("LOCK TABLE articles IN SHARE ROW EXCLUSIVE MODE")
            self._execute("DELETE FROM lsh_bands")
            self._execute("DELETE FROM article_shingles")
            self._execute("UPDATE articles SET story_id = id")
        done = 0
        last = 0
        while True:
            articles = [
                to_article(row)
                for row in self._all(
                    "SELECT * FROM articles WHERE id > %s ORDER BY id LIMIT 500", (last,)
                )
            ]
            if not articles:
                break
            with self._transaction():
                self._execute("LOCK TABLE articles IN SHARE ROW EXCLUSIVE MODE")
                for article in articles:
                    fingerprint, sketch, title_key = compute(article)
                    self._execute(
                        "UPDATE articles SET fingerprint = %s, title_key = %s WHERE id = %s",
                        (fingerprint, title_key, article.id),
                    )
                    self._cluster(article.id, sketch, title_key, article.first_seen)
                    done += 1
            last = articles[-1].id
            if progress is not None:
                progress(done, total)
        count = self._one("SELECT count(DISTINCT story_id) AS n FROM articles")
        return int(count["n"]) if count else 0

    def article_story(self, article_id: int) -> int | None:
        """The story an article belongs to now (stories can merge)."""
        row = self._one("SELECT story_id FROM articles WHERE id = %s", (article_id,))
        return int(row["story_id"]) if row and row["story_id"] is not None else None

    def also_reported_by(self, story_id: int | None, article_id: int) -> list[StoryMember]:
        """Other articles of the story: the later copies, in arrival order."""
        if story_id is None:
            return []
        rows = self._all(
            "SELECT source, url, title FROM articles WHERE story_id = %s AND id != %s ORDER BY id",
            (story_id, article_id),
        )
        return [to_story_member(row) for row in rows]

    def story_articles(self, story_id: int) -> list[Article]:
        """Every article of a story, in arrival order (the web view's story page)."""
        rows = self._all("SELECT * FROM articles WHERE story_id = %s ORDER BY id", (story_id,))
        return [to_article(row) for row in rows]
