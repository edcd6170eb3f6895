"""The rule bench: a rule, or an edited query never saved, over the archive, answered as
``newswatch rules test`` answers it (the same search, the same filter on the rule's sources),
with its matches per day and the TOML of an edited query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crawler.archive.interface import SearchStore
from crawler.model import Rule
from crawler.query import Query, QueryError
from crawler.query.search import backtest
from scheduler.web.opml import toml_string

Found = list[tuple[Any, list[str]]]


@dataclass
class Bench:
    """A rule (or edited query) run over the archive."""

    rule: Rule | None
    text: str  # the query as typed (the rule's own when not edited)
    edited: bool
    error: QueryError | None = None
    found: Found = field(default_factory=list)

    def toml(self) -> str:
        """The edited query as a ``[[rules]]`` block to paste into the config."""
        name = self.rule.name if self.rule is not None else "new-rule"
        lines = ["[[rules]]", f"name = {toml_string(name)}", f"query = {toml_string(self.text)}"]
        if self.rule is not None:
            notify = ", ".join(toml_string(n) for n in self.rule.notify)
            lines.append(f"notify = [{notify}]")
            if self.rule.digest != "off":
                lines.append(f"digest = {toml_string(self.rule.digest)}")
            if self.rule.sources:
                lines.append(f"sources = [{', '.join(toml_string(s) for s in self.rule.sources)}]")
        return "\n".join(lines) + "\n"


def run_bench(
    archive: SearchStore,
    rule: Rule | None,
    text: str | None,
    since: datetime | None,
    parse: Callable[[str], Query],
) -> Bench:
    edited = text is not None and (rule is None or text.strip() != rule.query_text.strip())
    if not edited and rule is not None:
        bench = Bench(rule, rule.query_text, False)
        bench.found = backtest(archive, rule.query, since, rule.sources)
        return bench
    typed = text or ""
    bench = Bench(rule, typed, True)
    try:
        query = parse(typed)
    except QueryError as exc:
        bench.error = exc
        return bench
    bench.found = backtest(archive, query, since, rule.sources if rule is not None else ())
    return bench
