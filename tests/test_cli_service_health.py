"""Source health in the real `newswatch run` service (docs/how-it-decides.md, "Source health
and backoff"): a feed that starts failing sends exactly one `failing` notice to
`[health] notify` (after `[health] failures` consecutive failed runs, however many more
follow), one `recovered` notice when it works again, and /metrics, /healthz and
`sources --json` tell the same story meanwhile."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from nw import Service, db_rows, json_out, newswatch, service, write_config
from servers import FixtureSite, RecordedRequest, WebhookReceiver, free_port

FEED = "/feeds/defence.xml"
SOURCE = "defence-daily"
NOTICE_KEYS = {"event", "delivery", "source", "state", "detail"}
# A Prometheus text sample: name{labels} value
SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def wait_until(
    what: str, check: Callable[[], Any], running: Service, timeout: float, every: float = 0.2
) -> Any:
    """Poll `check` until it returns something truthy; fail with the service's output."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert running.process.poll() is None, f"run exited early\n{running.output()}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s\n{running.output()}"
        time.sleep(every)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def samples(metrics: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in a Prometheus text exposition."""
    found = []
    for line in metrics.splitlines():
        match = SAMPLE.match(line)
        if line.startswith("#") or match is None:
            continue
        labels = dict(LABEL.findall(match["labels"] or ""))
        found.append((match["name"], labels, float(match["value"])))
    return found


def sample(metrics: str, name: str, **labels: str) -> float | None:
    for found, have, value in samples(metrics):
        if found == name and all(have.get(k) == v for k, v in labels.items()):
            return value
    return None


def source_row(config: Path) -> dict[str, Any]:
    [row] = [r for r in json_out(newswatch(config, "sources", "--json")) if r["name"] == SOURCE]
    return row


def notices(hook: WebhookReceiver) -> list[RecordedRequest]:
    return [r for r in hook.requests if r.headers.get("X-Newswatch-Event") == "source-health"]


def check_notice(request: RecordedRequest, state: str) -> None:
    assert request.headers.get("Content-Type", "").startswith("application/json")
    body = request.json
    assert isinstance(body, dict), request.body
    assert set(body) == NOTICE_KEYS, body  # exactly the documented fields
    assert body["event"] == "source-health"
    assert body["source"] == SOURCE
    assert body["state"] == state
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["delivery"] and request.headers.get("X-Newswatch-Delivery") == body["delivery"]


def test_failing_feed_sends_one_failing_then_one_recovered_notice(
    tmp_path: Path, site: FixtureSite, webhook: WebhookReceiver
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    config = write_config(
        tmp_path,
        f"""[crawl]
delay = "0s"
timeout = "10s"
fetch_articles = false

[service]
listen = "{listen}"

[[sources]]
name = "{SOURCE}"
feed = "{site.url}{FEED}"
every = "1s"

[health]
failures = 2
notify = ["ops"]

[channels.ops]
type = "webhook"
url = "{webhook.url}"
""",
    )
    started = time.monotonic()
    with service(config) as running:
        # 1. the feed works: the first pass archives its 4 items
        wait_until(
            "a first successful run", lambda: source_row(config)["last_success"], running, 30
        )
        row = source_row(config)
        assert row["consecutive_failures"] == 0 and row["status"] in ("ok", "not_modified"), row

        status, text = get(f"http://{listen}/healthz")
        assert status == 200, text
        assert json.loads(text)["status"] == "ok", text

        _, metrics = get(f"http://{listen}/metrics")
        assert sample(metrics, "newswatch_articles_total", source=SOURCE) == 4.0, metrics
        assert (sample(metrics, "newswatch_crawl_duration_seconds_count") or 0) >= 1, metrics
        assert sample(metrics, "newswatch_crawl_duration_seconds_sum") is not None, metrics
        last_success = sample(
            metrics, "newswatch_source_last_success_timestamp_seconds", source=SOURCE
        )
        assert last_success is not None and abs(last_success - time.time()) < 60, metrics
        assert not notices(webhook)  # a source that works says nothing

        # 2. the feed fails: after 2 failed runs in a row, one `failing` notice
        site.set(FEED, "Internal Server Error\n", status=500, content_type="text/plain")
        failed_from = len(site.requests)
        # runs back off: 1 s, then 2 s, then 4 s between attempts (plus up to 10% jitter)
        wait_until("a failing notice", lambda: notices(webhook), running, 20)
        [failing] = notices(webhook)
        check_notice(failing, "failing")
        assert failing.json["detail"].startswith("2 failed runs in a row"), failing.json

        row = source_row(config)
        assert row["status"] == "error" and row["consecutive_failures"] >= 2, row
        assert row["last_error"] and row["last_error_class"], row
        kind = row["last_error_class"]
        _, metrics = get(f"http://{listen}/metrics")
        errors = sample(metrics, "newswatch_source_errors_total", source=SOURCE, kind=kind)
        assert errors is not None and errors >= 2, (kind, metrics)
        status, text = get(f"http://{listen}/healthz")
        assert status == 200 and json.loads(text)["status"] == "ok", text  # the service is fine

        # 3. it stays failing for another (backed-off) run: no second notice
        wait_until(
            "a third failed run",
            lambda: source_row(config)["consecutive_failures"] >= 3,
            running,
            15,
            every=0.5,
        )
        time.sleep(1.5)  # that run's health check and delivery round are over by now
        assert len(notices(webhook)) == 1, [r.json for r in notices(webhook)]
        failed = [r.time for r in site.requests[failed_from:] if r.path == FEED]
        assert len(failed) >= 3, failed
        # error backoff, from the runs' recorded starts (what the next due time counts from):
        # the wait after the 2nd failure is twice that after the 1st (less the 0.1 s a pass
        # may start early to batch sources)
        starts = [
            datetime.fromisoformat(r["started"].replace("Z", "+00:00")).timestamp()
            for r in db_rows(
                tmp_path / "nw.db",
                "SELECT started FROM runs WHERE source = ? AND status = 'error' ORDER BY id",
                (SOURCE,),
            )
        ]
        assert starts[2] - starts[1] >= 3.85, starts
        assert starts[1] - starts[0] >= 1.85, starts
        row = source_row(config)
        assert row["consecutive_failures"] >= 3 and row["status"] == "error", row

        # 4. the feed works again: one `recovered` notice at its next (backed-off) run
        site.restore(FEED)
        wait_until("a recovered notice", lambda: len(notices(webhook)) >= 2, running, 25)
        time.sleep(2.5)  # a couple more good runs: nothing more to say
        row = source_row(config)
        assert row["consecutive_failures"] == 0 and row["status"] in ("ok", "not_modified"), row

        assert running.stop() == 0, running.output()

    assert "Traceback" not in running.err.read_text()
    health = notices(webhook)
    assert [r.json["state"] for r in health] == ["failing", "recovered"]
    check_notice(health[1], "recovered")
    assert health[0].json["delivery"] != health[1].json["delivery"]
    assert len(webhook.requests) == 2  # nothing else was sent, nothing twice
    assert time.monotonic() - started < 60
