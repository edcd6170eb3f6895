"""What the command line prints as tables: aligned columns, and the per-source line of a pass
(`newswatch crawl` and `newswatch demo` print the same one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crawler.fetch.context import MAX_NEW_PAGES
from crawler.records import RunRecord


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """Print `rows` under `headers`, each column as wide as its widest cell."""
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def summary_line(result: RunRecord) -> list[Any]:
    """A source's row in the table of a pass: what it did, and what went wrong."""
    detail = result.error or result.warning or ""
    if result.truncated:
        more = f"more new pages than one pass takes ({MAX_NEW_PAGES}): the rest come next pass"
        detail = f"{detail}; {more}" if detail else more
    return [
        result.source,
        result.status,
        result.fetched,
        result.new,
        result.seen,
        result.off_topic,
        result.errors,
        detail,
    ]
