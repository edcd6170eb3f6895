"""Search: the articles the full-text index says may match (a superset); `crawler.query.search`
confirms them with the query language, so the answers are the SQLite engine's.

The index (``article_search.doc``) holds each article's query-language tokens as lexemes. The
FTS5 expression the interface hands over (`crawler.query.Query.to_fts`: quoted token strings,
a ``*`` for a prefix, AND, OR and parentheses) becomes a ``tsquery`` over those lexemes
(`to_tsquery`): a phrase or NEAR becomes the AND of its tokens, a prefix ``'defen':*``. That is
a superset of what the query matches, which is all a candidate list must be.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from crawler.archive.postgres.articles import LEXEME_BYTES
from crawler.archive.postgres.base import PostgresBase
from crawler.archive.rows import to_article
from crawler.records import Article

_FTS_TOKEN = re.compile(r'\s*(?:("(?:[^"]|"")*")(\*?)|(\()|(\))|(AND|OR|NOT)\b)')


def _lexeme(token: str, prefix: bool) -> str:
    quoted = "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"
    return quoted + ":*" if prefix else quoted


def to_tsquery(fts: str) -> str | None:
    """The ``tsquery`` text for an FTS5 expression of `Query.to_fts`; None when it has a part
    this cannot translate (then every article is a candidate)."""
    out: list[str] = []
    position = 0
    fts = fts.strip()
    while position < len(fts):
        found = _FTS_TOKEN.match(fts, position)
        if found is None:
            return None
        position = found.end()
        string, star, opening, closing, operator = found.groups()
        if string is not None:
            tokens = string[1:-1].replace('""', '"').split()
            if not tokens or any(len(t.encode("utf-8")) > LEXEME_BYTES for t in tokens):
                return None
            parts = [_lexeme(t, bool(star) and i == len(tokens) - 1) for i, t in enumerate(tokens)]
            out.append("(" + " & ".join(parts) + ")")
        elif opening:
            out.append("(")
        elif closing:
            out.append(")")
        elif operator == "AND":
            out.append("&")
        elif operator == "OR":
            out.append("|")
        else:
            return None  # NOT: never produced by to_fts; do not narrow
    return " ".join(out).replace("( ", "(").replace(" )", ")") if out else None


class SearchMixin(PostgresBase):
    def search_candidates(
        self, fts: str | None, since: datetime | None = None, source: str | None = None
    ) -> Iterator[Article]:
        """The articles an FTS5 expression (`Query.to_fts`) may match, newest first: a
        superset, which `crawler.query.search` confirms with the query itself. None: every article
        (a query the index cannot narrow, such as ``NOT nato``)."""
        where, params = self._filters(since, source, prefix="a.")
        tsquery = to_tsquery(fts) if fts is not None else None
        if tsquery is not None:
            # Two index reads (the GIN index; the partial index of NULL documents): "doc @@ q OR
            # doc IS NULL" in one condition read every document of the table.
            sql = (
                "SELECT a.* FROM articles a WHERE a.id IN ("
                "SELECT article_id FROM article_search WHERE doc @@ %s::tsquery UNION ALL "
                "SELECT article_id FROM article_search WHERE doc IS NULL) "
                f"{where.replace('WHERE', 'AND', 1)} ORDER BY a.first_seen DESC, a.id DESC"
            )
            params = [tsquery, *params]
        else:
            sql = f"SELECT a.* FROM articles a {where} ORDER BY a.first_seen DESC, a.id DESC"
        for row in self._stream(sql, params):
            yield to_article(row)
