"""Identity, duplicates and stories (docs/how-it-decides.md) end to end: real crawls of feeds served
locally, one alert per story, copies listed under also_reported_by, edits, rebuild."""

from __future__ import annotations

import json
import time
from pathlib import Path
from xml.sax.saxutils import escape

from nw import db_rows, json_out, newswatch, service, write_config
from servers import FixtureSite, WebhookReceiver, free_port

WIRE = (
    "Defence ministers of the alliance agreed on Thursday to station two additional Patriot "
    "batteries in eastern Poland, officials said after a closed meeting in Brussels. The "
    "decision follows months of talks about gaps in the integrated air defence network along "
    "the eastern flank, where drones crossed into allied airspace several times this year. "
    "Germany and the Netherlands will provide the launchers while crews from Poland complete "
    "their training at a range near Ustka before the end of the summer. The alliance also "
    "approved funding for new radar sites in Lithuania and Latvia and asked industry to speed "
    "up deliveries of interceptor missiles, which several members said were running low after "
    "transfers to Ukraine. A spokesperson said the batteries would be under national command "
    "but linked to the common air picture of the alliance from the first day of operation."
)
OTHER = (
    "Naval commanders of the alliance opened a two week exercise in the Baltic Sea on Monday "
    "with forty ships and twenty aircraft taking part, the maritime command said in a "
    "statement. The drills focus on clearing sea mines near harbour approaches and on "
    "protecting undersea cables and pipelines after several incidents in recent years. Sweden "
    "and Finland take part for the second time as full members, sending corvettes and a "
    "submarine rescue vessel. Commanders said the exercise would test new procedures for "
    "sharing sonar data between national navies in near real time, and a floating command "
    "post will move between ports in Estonia and Germany during the second week of the drills."
)


def item(n: str, title: str, text: str, site_url: str, path: str | None = None) -> str:
    link = f"{site_url}{path or f'/a/{n}.html'}"
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f'<guid isPermaLink="false">urn:{n}</guid><description>{escape(text)}</description>'
        "</item>"
    )


def feed(*items: str) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>F</title>'
        + "".join(items)
        + "</channel></rss>"
    )


def trimmed(text: str, share: float) -> str:
    words = text.split()
    return " ".join(words[: int(len(words) * share)])


def edited(text: str, every: int = 20) -> str:
    words = text.split()
    return " ".join("changed" if i % every == 7 else w for i, w in enumerate(words))


def halves(text: str) -> tuple[str, str]:
    """The first and the last 55% of the words: each is a copy of the story (the original holds
    it), but they share too little to be one story without the original."""
    words = text.split()
    cut = len(words) // 2
    return " ".join(words[: cut + 5]), " ".join(words[cut - 5 :])


# A trimmed copy and an edited copy that match the original but not each other: the lead
# alone, and the rest with some words edited (the rule "air" matches each of them).
TRIMMED, EDITED = halves(WIRE)[0], edited(halves(WIRE)[1], 20)


def setup(tmp_path: Path, site: FixtureSite, hook: WebhookReceiver, *names: str) -> Path:
    sources = "".join(f'[[sources]]\nname = "{n}"\nfeed = "{site.url}/{n}.xml"\n\n' for n in names)
    body = (
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        + sources
        + '[[rules]]\nname = "air"\nquery = \'Patriot OR "air defence" OR interceptor\'\n'
        'notify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{hook.url}"\n'
    )
    return write_config(tmp_path, body)


def export(config: Path) -> list[dict]:
    result = newswatch(config, "export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_wire_story_from_three_outlets_alerts_once(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/wire.xml", feed(item("w1", "Allies add Patriot batteries", WIRE, site.url)))
    config = setup(tmp_path, site, webhook, "wire", "paper", "radio")
    site.set("/paper.xml", feed())
    site.set("/radio.xml", feed())
    assert newswatch(config, "crawl").returncode == 0
    [alert] = webhook.wait_for(1)
    assert alert.json["story"]["also_reported_by"] == []

    # later: the same wire copy in another template (dateline, footer), and trimmed to 60%
    wrapped = f"BRUSSELS (Paper Wire) - {WIRE} Reporting by A. Writer; editing by B. Editor."
    site.set("/paper.xml", feed(item("p1", "Patriot batteries for Poland", wrapped, site.url)))
    site.set(
        "/radio.xml", feed(item("r1", "More air defence in the east", trimmed(WIRE, 0.6), site.url))
    )
    assert newswatch(config, "crawl", "--all").returncode == 0
    time.sleep(0.5)
    assert len(webhook.requests) == 1  # one alert for the story
    records = {r["source"]: r for r in export(config)}
    assert len(records) == 3  # three articles ...
    assert len({r["story"] for r in records.values()}) == 1  # ... one story
    also = {a["source"] for a in records["wire"]["also_reported_by"]}
    assert also == {"paper", "radio"}
    runs = db_rows(tmp_path / "nw.db", "SELECT source, new FROM runs WHERE source != 'wire'")
    assert {r["new"] for r in runs if r["new"]} == {1}


def test_copies_that_do_not_match_each_other_merge_through_the_original(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    # the first half and the second half of the story first: two stories; the original,
    # which holds each of them, links them
    first, second = halves(WIRE)
    site.set("/a.xml", feed(item("a1", "First half", first, site.url)))
    site.set("/b.xml", feed(item("b1", "Second half", second, site.url)))
    site.set("/c.xml", feed())
    config = setup(tmp_path, site, webhook, "a", "b", "c")
    assert newswatch(config, "crawl").returncode == 0
    assert len({r["story"] for r in export(config)}) == 2  # the copies alone: two stories
    site.set("/c.xml", feed(item("c1", "Original", WIRE, site.url)))
    assert newswatch(config, "crawl", "--all").returncode == 0
    stories = {r["story"] for r in export(config)}
    assert len(stories) == 1


def test_different_stories_on_the_same_topic_stay_apart(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set(
        "/a.xml",
        feed(
            item("a1", "Patriot batteries", WIRE, site.url),
            item("a2", "Baltic naval drills", OTHER, site.url),
        ),
    )
    config = setup(tmp_path, site, webhook, "a")
    assert newswatch(config, "crawl").returncode == 0
    records = export(config)
    assert len({r["story"] for r in records}) == 2
    assert all(r["also_reported_by"] == [] for r in records)


def test_same_text_new_url_new_guid_new_title_is_the_same_article(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/a.xml", feed(item("a1", "Allies add Patriot batteries", WIRE, site.url)))
    config = setup(tmp_path, site, webhook, "a")
    assert newswatch(config, "crawl").returncode == 0
    site.set(
        "/a.xml",
        feed(
            item(
                "a1-moved",
                "Retitled: Patriots for Poland",
                WIRE,
                site.url,
                "/moved/story.html?utm_source=x",
            )
        ),
    )
    assert newswatch(config, "crawl", "--all").returncode == 0
    time.sleep(0.3)
    assert len(webhook.requests) == 1
    [record] = export(config)
    assert f"{site.url}/moved/story.html" in record["urls"]


def test_an_edit_alerts_only_a_rule_that_matches_it_for_the_first_time(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/a.xml", feed(item("a1", "Naval drills", OTHER, site.url)))
    body = (
        '[crawl]\ndelay = "0s"\nfetch_articles = false\n\n'
        f'[[sources]]\nname = "a"\nfeed = "{site.url}/a.xml"\n\n'
        '[[rules]]\nname = "navy"\nquery = \'Baltic\'\nnotify = ["hook"]\n\n'
        '[[rules]]\nname = "mines"\nquery = \'minehunters\'\nnotify = ["hook"]\n\n'
        f'[channels.hook]\ntype = "webhook"\nurl = "{webhook.url}"\n'
    )
    config = write_config(tmp_path, body)
    assert newswatch(config, "crawl").returncode == 0
    webhook.wait_for(1)
    site.set(
        "/a.xml", feed(item("a1", "Naval drills", OTHER + " Eight minehunters joined.", site.url))
    )
    assert newswatch(config, "crawl", "--all").returncode == 0
    requests = webhook.wait_for(2)
    time.sleep(0.3)
    assert [r.json["rule"] for r in webhook.requests] == ["navy", "mines"]
    [record] = export(config)
    assert record["text"].endswith("Eight minehunters joined.")
    assert requests[1].json["article"]["url"] == record["url"]


def test_rebuild_recomputes_stories_and_keeps_alert_history(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    site.set("/a.xml", feed(item("a1", "Patriot batteries", WIRE, site.url)))
    site.set(
        "/b.xml",
        feed(
            item("b1", "Copy", f"LONDON - {WIRE} (c) Wire", site.url),
            item("b2", "Drills", OTHER, site.url),
        ),
    )
    config = setup(tmp_path, site, webhook, "a", "b")
    assert newswatch(config, "crawl").returncode == 0
    before = {r["url"]: r["story"] for r in export(config)}
    alerts = json_out(newswatch(config, "alerts", "--json"))
    db = tmp_path / "nw.db"
    from nw import db_exec

    db_exec(db, "UPDATE articles SET story_id = id")  # as an older method might have left it
    db_exec(db, "DELETE FROM lsh_bands")
    result = newswatch(config, "rebuild")
    assert result.returncode == 0, result.stderr
    assert "3 articles in 2 stories" in result.stdout
    assert "rebuilding stories [" in result.stderr
    assert {r["url"]: r["story"] for r in export(config)} == before
    assert json_out(newswatch(config, "alerts", "--json")) == alerts


def worst_order(site_url: str) -> str:
    """A feed of the trimmed copy, the edited one, then the original that joins them."""
    return feed(
        item("t", "Trimmed", TRIMMED, site_url),
        item("e", "Edited and re-titled", EDITED, site_url),
        item("o", "Original", WIRE, site_url),
    )


def _one_alert_for_the_story(config: Path, hook: WebhookReceiver, timeout: float = 10) -> None:
    """Exactly one alert went out for the three copies, naming the other two outlets; the
    collapsed alerts stay in the log, marked as merged into it (the copy that linked the two
    stories joined an alerted story, so it queued none of its own)."""
    [alert] = hook.wait_for(1, timeout=timeout)
    time.sleep(0.5)
    assert len(hook.requests) == 1
    records = export(config)
    assert len(records) == 3 and len({r["story"] for r in records}) == 1
    named = {a["url"] for a in alert.json["story"]["also_reported_by"]}
    assert named == {r["url"] for r in records} - {alert.json["article"]["url"]}
    rows = json_out(newswatch(config, "alerts", "--json"))
    [sent] = [r for r in rows if r["status"] == "sent"]
    merged = [r for r in rows if r["status"] == "merged"]
    assert sent["delivery"] == alert.headers["X-Newswatch-Delivery"]
    assert len(merged) == 1 and merged[0]["merged_into"] == sent["id"]
    table = newswatch(config, "alerts", "--status", "merged")
    assert table.returncode == 0 and f"merged into {sent['id']}" in table.stdout


def test_copies_in_the_worst_order_in_one_pass_alert_once(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    # the trimmed copy, then the edited one (they do not match each other: two stories), then
    # the original, which merges them: all in one pass
    site.set(
        "/a.xml",
        worst_order(site.url),
    )
    config = setup(tmp_path, site, webhook, "a")
    assert newswatch(config, "crawl").returncode == 0
    _one_alert_for_the_story(config, webhook)


def test_copies_in_the_worst_order_in_one_pass_of_the_service_alert_once(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    # three outlets in one pass, answering in the worst order, slowly enough that the
    # service's delivery rounds (every 5 s) run while the pass goes on
    site.set("/a.xml", feed(item("t", "Trimmed", TRIMMED, site.url)))
    site.set("/b.xml", feed(item("e", "Edited and re-titled", EDITED, site.url)), delay=3)
    site.set("/c.xml", feed(item("o", "Original", WIRE, site.url)), delay=7)
    config = setup(tmp_path, site, webhook, "a", "b", "c")
    config.write_text(config.read_text() + f'\n[service]\nlisten = "127.0.0.1:{free_port()}"\n')
    with service(config) as running:
        running.wait_for_output("watching")
        _one_alert_for_the_story(config, webhook, timeout=30)
        assert running.stop() == 0


def test_a_later_copy_that_links_an_alerted_story_merges_into_its_alert(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    # pass 1: the trimmed copy alerts; pass 2: the edited copy (a story of its own at first)
    # and the original that links it to the alerted story: no second alert
    site.set("/a.xml", feed(item("t", "Trimmed", TRIMMED, site.url)))
    config = setup(tmp_path, site, webhook, "a")
    assert newswatch(config, "crawl").returncode == 0
    [first] = webhook.wait_for(1)
    site.set(
        "/a.xml",
        worst_order(site.url),
    )
    assert newswatch(config, "crawl", "--all").returncode == 0
    time.sleep(0.5)
    assert len(webhook.requests) == 1
    rows = json_out(newswatch(config, "alerts", "--json"))
    [sent] = [r for r in rows if r["status"] == "sent"]
    assert [r["merged_into"] for r in rows if r["status"] == "merged"] == [sent["id"]]
    assert sent["delivery"] == first.headers["X-Newswatch-Delivery"]
