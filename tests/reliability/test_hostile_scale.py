"""Hostile sizes end to end: a feed of twenty thousand items, a 50 MB article page."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import count, integrity
from nw import json_out, newswatch, write_config
from servers import FixtureSite


def test_a_feed_of_twenty_thousand_items_is_archived_whole(
    tmp_path: Path, site: FixtureSite
) -> None:
    n = 20_000
    items = "".join(
        f"<item><title>Item {i}</title><link>{{{{SITE}}}}/n/{i}.html</link>"
        f"<description>NATO item {i}, plan {i * 7}, line {i * 13}.</description></item>"
        for i in range(n)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Big</title>'
    site.set("/big.xml", f"{head}{items}</channel></rss>", content_type="application/xml")
    config = write_config(
        tmp_path,
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "big"\nfeed = "{site.url}/big.xml"\n',
    )
    done = newswatch(config, "crawl", timeout=300)
    assert done.returncode == 0, done.stderr
    db = tmp_path / "nw.db"
    assert integrity(db) == "ok"
    assert count(db, "SELECT count(*) FROM articles") == n
    [state] = json_out(newswatch(config, "sources", "--json"))
    assert state["status"] == "ok"


def test_a_50_mb_page_is_that_pages_error_and_the_rest_goes_on(
    tmp_path: Path, site: FixtureSite
) -> None:
    text = "Allied ministers met to discuss air defence along the eastern flank. " * 6
    for name in ("small", "huge"):
        body = f"<html><head><title>{name}</title></head><body><article><p>{name}. {text}</p>"
        if name == "huge":
            body += "<p>" + "x" * 50_000_000 + "</p>"
        site.set(f"/n/{name}.html", body + "</article></body></html>")
    items = "".join(
        f"<item><title>{name} story</title><link>{{{{SITE}}}}/n/{name}.html</link>"
        f"<description>The {name} story.</description></item>"
        for name in ("small", "huge")
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Mixed</title>'
    site.set("/mixed.xml", f"{head}{items}</channel></rss>", content_type="application/xml")
    config = write_config(
        tmp_path,
        f'[crawl]\ndelay = "0s"\n\n[[sources]]\nname = "mixed"\nfeed = "{site.url}/mixed.xml"\n',
    )
    done = newswatch(config, "crawl", timeout=300)
    assert done.returncode == 0, done.stderr
    export = newswatch(config, "export", "--format", "jsonl")
    records = {
        r["title"]: r for r in (json.loads(x) for x in export.stdout.splitlines() if x.strip())
    }
    assert set(records) == {"small story", "huge story"}  # the huge one keeps its feed fields
    assert "air defence" in (records["small story"]["text"] or "")
    assert "air defence" not in (records["huge story"]["text"] or "")  # not the page's text
    [state] = json_out(newswatch(config, "sources", "--json"))
    assert state["last_run_counts"]["errors"] == 1, state
