"""`newswatch demo` (docs/commands.md) as a real subprocess: it serves the bundled sample site
(scheduler/demo_site/, see its README.md) on 127.0.0.1, crawls it with the real pipeline into a
temporary archive, shows the alerts instead of sending them, and leaves an archive that the
other commands read when given --keep DIR."""

from __future__ import annotations

import html
import json
import re
import subprocess
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from nw import newswatch, service
from servers import free_port, verify_signature

from scheduler.config import load

NATO_AIR = "NATO allies agree joint air defence plan for the Baltic coast"
IRIS_T = "Allies order more IRIS-T launchers for NATO's northern flank"
KESTREL = "NATO missile defence radar at Kestrel Point reaches initial capability"
INTERCEPTORS = "NATO to test missile defense interceptors off the northern coast"
AIR_DEFENCE = {NATO_AIR, IRIS_T}  # rule air-defence: webhook ops-hook and email analysts
MISSILE_DEFENCE = {KESTREL, INTERCEPTORS}  # rule missile-defence: email analysts
ON_TOPIC_NO_RULE = {
    "Coastguard takes delivery of two new patrol boats",
    "Military engineers rebuild flood-damaged bridge in eight days",
}
OFF_TOPIC = {
    "Harbour festival returns with tall ships and street food",
    "Council approves new cycle lanes for the town centre",
    "Rowing club takes regional title in final race of the season",
    "Grain shipments through northern ports reach five-year high",
    "Lake ferry service resumes after winter repairs",
    "City museum opens exhibition of early sea charts",
}
# source -> (status, fetched, new, seen, off-topic, errors)
COUNTS = {
    "northwind-herald": ("ok", 7, 4, 0, 3, 0),
    "meridian-wire": ("ok", 3, 2, 0, 1, 0),
    "lakeside-gazette": ("ok", 3, 1, 0, 2, 0),
}
SECRET = "demo-secret"  # the webhook channel's secret in the demo config


@dataclass(frozen=True)
class Alert:
    number: int
    rule: str
    channel: str
    type: str
    lines: list[str]

    def header(self, name: str) -> str | None:
        for line in self.lines:
            key, sep, value = line.partition(": ")
            if sep and key == name:
                return value
        return None

    def payload(self) -> Any:
        start = self.lines.index("{")
        end = len(self.lines) - self.lines[::-1].index("}")
        return json.loads("\n".join(self.lines[start:end]))


ALERT_HEAD = re.compile(r"^==== alert (\d+) of (\d+): rule (\S+) -> (\S+) \((\w+)\) =+$")


def alerts_of(stdout: str) -> list[Alert]:
    """The alert blocks of the demo's output: each runs from its heading to the next one (the
    last one to the summary table)."""
    alerts: list[Alert] = []
    current: list[str] | None = None
    for line in stdout.splitlines():
        head = ALERT_HEAD.match(line)
        if head:
            number, _, rule, channel, kind = head.groups()
            current = []
            alerts.append(Alert(int(number), rule, channel, kind, current))
        elif line.startswith("source ") and "off-topic" in line:
            current = None
        elif current is not None:
            current.append(line)
    return alerts


def table_of(stdout: str) -> dict[str, tuple[Any, ...]]:
    rows: dict[str, tuple[Any, ...]] = {}
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"source\s+status\s+fetched", line))
    for line in lines[start + 1 :]:
        cells = line.split()
        if len(cells) < 7 or cells[0] not in COUNTS:
            break
        rows[cells[0]] = (cells[1], *(int(c) for c in cells[2:7]))
    return rows


@dataclass(frozen=True)
class Runs:
    kept: subprocess.CompletedProcess[str]
    keep_dir: Path
    temporary: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """Two demos at once: one with --keep DIR, one temporary; the latter with a
    NEWSWATCH_CONFIG that does not exist (the demo needs no config)."""
    keep_dir = tmp_path_factory.mktemp("demo") / "kept"
    missing = tmp_path_factory.mktemp("nothing") / "no-such-config.toml"
    with ThreadPoolExecutor(max_workers=2) as pool:
        kept = pool.submit(newswatch, None, "demo", "--keep", str(keep_dir))
        temporary = pool.submit(newswatch, None, "demo", env={"NEWSWATCH_CONFIG": str(missing)})
        return Runs(kept.result(), keep_dir, temporary.result())


def test_every_demo_run_succeeds_quietly(runs: Runs) -> None:
    for result in (runs.kept, runs.temporary):
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert "ERROR" not in result.stderr, result.stderr


def test_demo_shows_a_signed_webhook_and_an_email_for_the_nato_air_defence_story(
    runs: Runs,
) -> None:
    alerts = alerts_of(runs.kept.stdout)
    assert alerts, runs.kept.stdout
    hooks = [
        a for a in alerts if a.type == "webhook" and a.payload()["article"]["title"] == NATO_AIR
    ]
    assert hooks, runs.kept.stdout
    hook = hooks[0]
    assert hook.rule == "air-defence" and hook.channel == "ops-hook"
    assert hook.header("X-Newswatch-Event") == "alert"
    payload = hook.payload()
    assert hook.header("X-Newswatch-Delivery") == payload["delivery"]
    assert payload["event"] == "alert" and payload["rule"] == "air-defence"
    assert {"nato", "air defence"} <= set(payload["matched"])
    assert payload["article"]["url"].startswith("http://127.0.0.1:")
    # the signature is over the body as sent: the same document on one line
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    assert verify_signature(SECRET, body, hook.header("X-Newswatch-Signature-256"))

    subject = f"Subject: [newswatch] air-defence: {NATO_AIR}"
    emails = [a for a in alerts if a.type == "email" and subject in a.lines]
    assert emails, runs.kept.stdout
    assert emails[0].channel == "analysts"
    assert emails[0].header("To") == "analyst@example.org"
    assert "Matched:   nato, air defence, patriot, iris t" in emails[0].lines


def test_demo_alerts_exactly_the_matching_articles(runs: Runs) -> None:
    alerts = alerts_of(runs.kept.stdout)
    numbers = [a.number for a in alerts]
    assert numbers == list(range(1, len(alerts) + 1))
    titles: dict[tuple[str, str], set[str]] = {}
    for alert in alerts:
        if alert.type == "webhook":
            title = alert.payload()["article"]["title"]
        else:
            subject = alert.header("Subject") or ""
            prefix = f"[newswatch] {alert.rule}: "
            assert subject.startswith(prefix), subject
            title = subject.removeprefix(prefix)
        titles.setdefault((alert.rule, alert.type), set()).add(title)
    assert titles == {
        ("air-defence", "webhook"): AIR_DEFENCE,
        ("air-defence", "email"): AIR_DEFENCE,
        ("missile-defence", "email"): MISSILE_DEFENCE,
    }
    for title in OFF_TOPIC | ON_TOPIC_NO_RULE:
        assert title not in runs.kept.stdout.split("source ", 1)[0]


def test_demo_summary_counts_match_the_archive(runs: Runs) -> None:
    stdout = runs.kept.stdout
    assert table_of(stdout) == COUNTS

    exported = newswatch(runs.keep_dir / "newswatch.toml", "export")
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    story_of: dict[str, set[str]] = {}
    for record in records:
        story_of.setdefault(record["title"], set()).add(record["story"])
    stories = {r["story"] for r in records}
    assert f"archived: {len(records)} articles in {len(stories)} stories" in stdout

    # one alert per rule, story and channel (the wire copy joins its story once copies are
    # recognised; until then it is a story of its own and alerts too)
    air = len(set().union(*(story_of[t] for t in AIR_DEFENCE)))
    missile = len(set().union(*(story_of[t] for t in MISSILE_DEFENCE)))
    webhooks, emails = air, air + missile
    total = webhooks + emails
    assert len(alerts_of(stdout)) == total
    assert (
        f"alerts: {total} shown ({webhooks} webhook, {emails} email), 0 to retry, 0 failed"
        in stdout
    )
    if len(story_of[NATO_AIR]) == 1:  # the copies form one story
        assert re.search(r"same story from \S+ and \S+: " + re.escape(NATO_AIR), stdout)


def test_demo_keep_leaves_an_archive_the_other_commands_read(runs: Runs) -> None:
    config = runs.keep_dir / "newswatch.toml"
    assert config.is_file() and (runs.keep_dir / "newswatch.db").is_file()
    assert f"-c {config} export" in runs.kept.stdout
    text = config.read_text(encoding="utf-8")
    assert str(runs.keep_dir) not in text  # the archive path is relative to the config

    exported = newswatch(config, "export")
    assert exported.returncode == 0, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert {r["title"] for r in records} == AIR_DEFENCE | MISSILE_DEFENCE | ON_TOPIC_NO_RULE
    assert sorted(r["source"] for r in records).count("northwind-herald") == 4
    nato = [r for r in records if r["title"] == NATO_AIR]
    assert {r["source"] for r in nato} == {"northwind-herald", "meridian-wire"}
    assert all(r["author"] and r["published"] and r["language"] == "en" for r in records)

    found = newswatch(config, "search", 'NATO AND "air defence"', "--json")
    assert found.returncode == 0, found.stderr
    assert {r["title"] for r in json.loads(found.stdout)} == AIR_DEFENCE

    sent = newswatch(config, "alerts", "--json")
    assert sent.returncode == 0, sent.stderr
    rows = json.loads(sent.stdout)
    assert rows and {r["status"] for r in rows} == {"sent"}
    assert len(rows) == len(alerts_of(runs.kept.stdout))


def test_demo_without_keep_removes_its_temporary_directory(runs: Runs) -> None:
    stdout = runs.temporary.stdout
    match = re.search(r"^config \(temporary\): (.+)$", stdout, re.MULTILINE)
    assert match, stdout
    assert not Path(match.group(1)).parent.exists()
    assert table_of(stdout) == COUNTS
    assert "newswatch demo --keep DIR" in stdout


def test_demo_refuses_to_reuse_a_directory_with_a_config(tmp_path: Path) -> None:
    (tmp_path / "newswatch.toml").write_text("# mine\n", encoding="utf-8")
    result = newswatch(None, "demo", "--keep", str(tmp_path))
    assert result.returncode == 2
    assert "already exists" in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "newswatch.toml").read_text(encoding="utf-8") == "# mine\n"


def test_demo_keep_writes_a_web_view_that_run_serves(runs: Runs, tmp_path: Path) -> None:
    """`newswatch demo --keep DIR` prints the address and password of the web view; `run` on
    its config (on a free port here) serves the demo's archive behind that password."""
    config = load(runs.keep_dir / "newswatch.toml", environ={})
    assert config.web is not None and config.listen == "127.0.0.1:9180"
    said = re.search(r"open (http://\S+/) and sign in with the password (\S+) ", runs.kept.stdout)
    assert said, runs.kept.stdout
    assert said[1] == "http://127.0.0.1:9180/" and said[2] == config.web.password
    assert "-c " + str(runs.keep_dir / "newswatch.toml") + " run" in runs.kept.stdout
    listen = f"127.0.0.1:{free_port()}"
    copy = runs.keep_dir / "web-test.toml"
    text = (runs.keep_dir / "newswatch.toml").read_text(encoding="utf-8")
    copy.write_text(text.replace('"127.0.0.1:9180"', f'"{listen}"'), encoding="utf-8")
    with service(copy, "web-test") as running:
        running.wait_for_output("web view on", timeout=60)
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        form = urllib.parse.urlencode({"password": config.web.password}).encode()
        request = urllib.request.Request(
            f"http://{listen}/login", data=form, headers={"Origin": f"http://{listen}"}
        )
        with opener.open(request, timeout=10) as answer:  # 303 to / is followed
            assert answer.status == 200
            assert "Newest stories" in answer.read().decode()
        query = urllib.parse.urlencode({"q": 'NATO AND "air defence"'})
        with opener.open(f"http://{listen}/search?{query}", timeout=10) as answer:
            page = answer.read().decode()
        shown = html.unescape(page)
        # one line a story: the story told by two outlets once, with the other named
        assert all(title in shown for title in AIR_DEFENCE)
        assert shown.count('class="story"') == len(AIR_DEFENCE)
        assert "+1 outlet: " in shown and "<mark>air defence</mark>" in page
        assert running.stop() == 0
    assert config.web.password not in running.err.read_text()
