"""Alerts people trust: digests, the per-rule hourly cap, crash safety under SIGKILL, and the
backtest agreeing with the live matcher. Real `newswatch` processes, real receivers."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from nw import command, db_exec, db_rows, json_out, newswatch, write_config
from servers import FixtureSite, WebhookReceiver

ITEM = """<item><title>{title}</title><link>{{{{SITE}}}}/a/{n}.html</link>
<guid isPermaLink="false">urn:wire:{n}</guid>
<pubDate>Mon, 09 Jun 2025 10:00:00 +0000</pubDate>
<description>{text}</description></item>"""
TOPICS = ["Baltic", "Poland", "Romania", "Arctic", "Black Sea", "Norway", "Finland", "Turkey"]


def wire_feed(n: int) -> str:
    """n distinct NATO items: their texts differ, so no two are the same article."""
    items = "\n".join(
        ITEM.format(
            n=i,
            title=f"NATO item {i}: {TOPICS[i % len(TOPICS)]} exercise number {i}",
            text=f"NATO allies met about {TOPICS[i % len(TOPICS)]} for the {i}th time, "
            f"discussing readiness plan {i * 7} and budget line {i * 13}.",
        )
        for i in range(n)
    )
    head = '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
    return f"{head}{items}</channel></rss>"


def config_for(tmp_path: Path, site: FixtureSite, hook: WebhookReceiver, rule_extra: str) -> Path:
    body = (
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "wire"\nfeed = "{site.url}/wire.xml"\n\n'
        f'[[rules]]\nname = "nato"\nquery = "NATO"\nnotify = ["hook"]\n{rule_extra}\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{hook.url}"\ntimeout = "5s"\n'
    )
    return write_config(tmp_path, body)


def test_hourly_digest_collects_alerts_into_one_delivery(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/wire.xml", wire_feed(3), content_type="application/xml")
    config = config_for(tmp_path, site, webhook, 'digest = "hourly"')
    assert newswatch(config, "crawl").returncode == 0
    time.sleep(0.3)
    assert webhook.requests == []  # held until the hour closes
    held = json_out(newswatch(config, "alerts", "--status", "held", "--json"))
    assert len(held) == 3

    # the hour closes (as if the next cron run came after it)
    db = tmp_path / "nw.db"
    db_exec(
        db,
        "UPDATE outbox SET hold_until = '2000-01-01T01:00:00Z', hold_from = '2000-01-01T00:00:00Z'",
    )
    assert newswatch(config, "crawl").returncode == 0
    [digest] = webhook.wait_for(1)
    assert digest.headers["X-Newswatch-Event"] == "digest"
    body = digest.json
    assert body["event"] == "digest" and body["rule"] == "nato"
    assert (body["from"], body["to"]) == ("2000-01-01T00:00:00Z", "2000-01-01T01:00:00Z")
    assert body["delivery"] == digest.headers["X-Newswatch-Delivery"]
    assert sorted(a["article"]["title"][:11] for a in body["alerts"]) == [
        "NATO item 0",
        "NATO item 1",
        "NATO item 2",
    ]
    assert all(set(a) == {"rule", "matched", "article", "story"} for a in body["alerts"])
    assert len(json_out(newswatch(config, "alerts", "--status", "digested", "--json"))) == 3
    # nothing is sent twice
    assert newswatch(config, "crawl", "--all").returncode == 0
    time.sleep(0.3)
    assert len(webhook.requests) == 1


def test_max_per_hour_sends_the_first_n_and_digests_the_rest(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/wire.xml", wire_feed(7), content_type="application/xml")
    config = config_for(tmp_path, site, webhook, "max_per_hour = 3")
    assert newswatch(config, "crawl").returncode == 0
    singles = webhook.wait_for(3)
    time.sleep(0.3)
    assert len(webhook.requests) == 3
    assert all(r.headers["X-Newswatch-Event"] == "alert" for r in singles)
    held = json_out(newswatch(config, "alerts", "--status", "held", "--json"))
    assert len(held) == 4  # not dropped: waiting for the end of the hour

    db_exec(
        tmp_path / "nw.db",
        "UPDATE outbox SET hold_until = '2000-01-01T01:00:00Z' WHERE status = 'held'",
    )
    assert newswatch(config, "crawl").returncode == 0
    requests = webhook.wait_for(4)
    digest = requests[3]
    assert digest.headers["X-Newswatch-Event"] == "digest"
    assert len(digest.json["alerts"]) == 4
    titles = {r.json["article"]["title"] for r in singles}
    titles |= {a["article"]["title"] for a in digest.json["alerts"]}
    assert len(titles) == 7  # every alert delivered exactly once, one way or the other


def test_sigkill_mid_batch_loses_nothing_and_repeats_at_most_the_send_in_flight(
    tmp_path: Path, site: FixtureSite
) -> None:
    n = 12
    site.set("/wire.xml", wire_feed(n), content_type="application/xml")
    # each delivery takes 0.4 s to answer, so the batch is still running when it is killed
    with WebhookReceiver(responses=[(200, {}, b"ok", 0.4)]) as hook:
        config = config_for(tmp_path, site, hook, "")
        proc = subprocess.Popen(
            [*command(), "-c", str(config), "crawl"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")},
        )
        try:
            hook.wait_for(4, timeout=60)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        killed_at = len(hook.requests)
        assert killed_at < n  # it really was killed mid-batch
        rows = db_rows(tmp_path / "nw.db", "SELECT status FROM outbox")
        assert len(rows) == n  # everything queued survived

        assert newswatch(config, "crawl").returncode == 0
        ids = [r.headers["X-Newswatch-Delivery"] for r in hook.requests]
        assert len(set(ids)) == n  # every alert delivered
        repeats = len(ids) - len(set(ids))
        assert repeats <= 1  # only the send in flight may repeat
        sent = db_rows(tmp_path / "nw.db", "SELECT status FROM outbox WHERE status = 'sent'")
        assert len(sent) == n


def test_backtest_agrees_with_the_live_matcher_and_search(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    body = (
        '[crawl]\ndelay = "0s"\n\n'
        f'[[sources]]\nname = "daily"\nfeed = "{site.url}/feeds/defence.xml"\n\n'
        f'[[sources]]\nname = "radar"\nfeed = "{site.url}/feeds/malformed.xml"\n\n'
        f'[[sources]]\nname = "section"\nsite = "{site.url}/news/"\n\n'
        '[[rules]]\nname = "air"\nquery = \'(NATO OR OTAN) AND ("air defence" OR '
        '"air defense" OR Patriot) NOT title:radar\'\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}"\n'
    )
    config = write_config(tmp_path, body)
    assert newswatch(config, "crawl").returncode == 0
    live = {r["article_id"] for r in json_out(newswatch(config, "alerts", "--json"))}
    backtest = {a["id"] for a in json_out(newswatch(config, "rules", "test", "air", "--json"))}
    query = '(NATO OR OTAN) AND ("air defence" OR "air defense" OR Patriot) NOT title:radar'
    searched = {a["id"] for a in json_out(newswatch(config, "search", query, "--json"))}
    assert live and live == backtest == searched
