"""Invalid UTF-8 end to end: a feed and an article page declared UTF-8 whose bytes are not
(stray 0xFF, a truncated sequence, an overlong form, an encoded surrogate, a NUL byte). The
crawl archives what can be read, search finds it, and the alert that leaves is valid JSON."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import count, integrity, words
from nw import json_out, newswatch, write_config
from servers import FixtureSite, WebhookReceiver

BAD = [b"\xff", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80", b"\x00"]


def test_invalid_utf8_in_a_feed_and_a_page(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    items = b"".join(
        b"<item><title>NATO drill " + str(i).encode() + bad + b" update</title>"
        b"<link>" + site.url.encode() + b"/n/" + str(i).encode() + b".html</link>"
        b"<description>Allied air defence"
        + bad
        + b" exercise "
        + str(i).encode()
        + b".</description></item>"
        for i, bad in enumerate(BAD)
    )
    feed = (
        b'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>W</title>'
        + items
        + b"</channel></rss>"
    )
    site.set("/wire.xml", feed, content_type="application/rss+xml; charset=utf-8")
    for i, bad in enumerate(BAD):  # distinct texts: five stories, five alerts
        text = f"Allied ministers discussed air defence. {words(i)}".encode()
        page = (
            b'<html><head><meta charset="utf-8"><title>NATO drill ' + str(i).encode() + b"</title>"
            b"</head><body><article><h1>NATO drill "
            + str(i).encode()
            + bad
            + b"</h1><p>"
            + text
            + bad
            + b" Readiness plan "
            + str(i * 7).encode()
            + b".</p></article></body></html>"
        )
        site.set(f"/n/{i}.html", page, content_type="text/html; charset=utf-8")
    config = write_config(
        tmp_path,
        f'[crawl]\ndelay = "0s"\n\n[[sources]]\nname = "wire"\nfeed = "{site.url}/wire.xml"\n\n'
        '[[rules]]\nname = "nato"\nquery = "NATO AND \\"air defence\\""\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}"\n',
    )

    done = newswatch(config, "crawl")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    db = tmp_path / "nw.db"
    assert integrity(db) == "ok"
    assert count(db, "SELECT count(*) FROM articles") == len(BAD)

    found = json_out(newswatch(config, "search", '"air defence" AND drill', "--json"))
    assert len(found) == len(BAD), found

    posts = webhook.wait_for(len(BAD), timeout=30)
    for post in posts:
        payload = json.loads(post.body.decode("utf-8"))  # strict: valid UTF-8 JSON
        assert payload["article"]["title"].startswith("NATO drill")
        assert "\x00" not in json.dumps(payload, ensure_ascii=False)
    [state] = json_out(newswatch(config, "sources", "--json"))
    assert state["status"] in ("ok", "warning"), state
    assert state["last_run_counts"]["errors"] == 0, state
