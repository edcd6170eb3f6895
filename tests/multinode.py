"""Several `newswatch run` nodes on one archive, the feed hosts they poll and the webhook they
alert, as real processes and servers, for the fault tests (tests/test_cluster_faults.py) and
bench/cluster.py (its nodes parts).

``FeedHosts``
    ``count`` RSS feeds spread over loopback hosts 127.0.0.2, 127.0.0.3, ... (one
    `servers.FixtureSite` each), every answer after ``delay`` seconds, with conditional GET.
    Feed i is ``/feeds/i.xml``; ``add_item(i)`` puts a new item at its top (an alert to come).
    Each request is recorded with the node that sent it (each node has a User-Agent of its own),
    so the polls per feed, and who made them, are counted where they arrive.
``Cluster``
    Writes one config per node (same archive, same sources and rules, its own ``listen`` port,
    User-Agent and ``[service] node``) and starts, kills (SIGKILL) or stops (SIGTERM) the nodes.
``deliveries`` / ``alerted_titles``
    What the receiver got, per delivery id and per item.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nw import Service, write_config
from servers import FixtureSite, RecordedRequest, WebhookReceiver, free_port

ALERT_WORD = "zephyrine"  # the rule's word: in every added item's title, nowhere else
AGENT = "newswatch-cluster-test ({node})"
WORDS = [
    "harbour",
    "council",
    "budget",
    "railway",
    "museum",
    "festival",
    "election",
    "parliament",
    "hospital",
    "bridge",
    "school",
    "river",
    "market",
    "energy",
    "transport",
    "culture",
    "weather",
    "research",
    "ministers",
    "orchestra",
    "glacier",
    "lighthouse",
    "vineyard",
    "observatory",
    "tramway",
    "quarry",
    "monastery",
    "canal",
    "windmill",
]


@functools.cache
def knows(key: str) -> bool:
    """Whether the newswatch the nodes run (this Python, its environment) knows the config key
    `key` (``service.node``, ``service.lease``); asked in a child, as the nodes will import it."""
    probe = (
        "import sys; from scheduler.config.schema import schema_keys; "
        "sys.exit(0 if any(p == sys.argv[1] for p, _ in schema_keys()) else 1)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, key], cwd="/", capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def node_key_known() -> bool:
    """Whether this newswatch knows ``[service] node``: the nodes share the sources by claims."""
    return knows("service.node")


def node_of(request: RecordedRequest) -> str | None:
    """The node that sent `request` (from its User-Agent), if one of ours."""
    agent = request.headers.get("User-Agent", "")
    if "(" in agent and agent.endswith(")"):
        return agent.rsplit("(", 1)[1][:-1]
    return None


@dataclass
class Item:
    feed: int
    number: int
    title: str
    added: float  # time.time() when it appeared in the feed


class FeedHosts:
    """`count` feeds on `hosts` loopback hosts (127.0.0.2 ...), each answering after `delay`."""

    def __init__(self, count: int, hosts: int = 3, delay: float = 0.0, first_host: int = 2):
        self.count, self.delay = count, delay
        self.sites = [FixtureSite(None, host=f"127.0.0.{first_host + h}") for h in range(hosts)]
        self.items: list[list[Item]] = [[] for _ in range(count)]
        self.added: list[Item] = []

    def __enter__(self) -> FeedHosts:
        for site in self.sites:
            site.start()
        for feed in range(self.count):
            self._publish(feed)
        return self

    def __exit__(self, *exc: object) -> None:
        for site in self.sites:
            site.stop()

    def site(self, feed: int) -> FixtureSite:
        return self.sites[feed % len(self.sites)]

    def path(self, feed: int) -> str:
        return f"/feeds/{feed}.xml"

    def url(self, feed: int) -> str:
        return self.site(feed).url + self.path(feed)

    def add_item(self, feed: int) -> Item:
        """A new item at the top of feed `feed`, whose title has the rule's word."""
        number = len(self.added)
        words = " ".join(WORDS[(number * 7 + k * 3) % len(WORDS)] for k in range(6))
        item = Item(feed, number, f"Bulletin {number} {ALERT_WORD} {words}", time.time())
        self.items[feed].append(item)
        self.added.append(item)
        self._publish(feed)
        item.added = time.time()  # served from now on
        return item

    def _publish(self, feed: int) -> None:
        site = self.site(feed)
        entries = []
        for item in reversed(self.items[feed][-20:]):
            link = f"{site.url}/news/{feed}/{item.number}.html"
            entries.append(
                f"<item><title>{item.title}</title><link>{link}</link>"
                f'<guid isPermaLink="false">urn:cluster:{feed}:{item.number}</guid>'
                f"<description>Item {item.number} of feed {feed}.</description></item>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Feed {feed}</title><link>{site.url}/</link>"
            f"<description>Test feed {feed}</description>{''.join(entries)}</channel></rss>\n"
        )
        site.set(self.path(feed), body, delay=self.delay)

    # -- what arrived ---------------------------------------------------------------------

    def polls(self, feed: int, since: float = 0.0) -> list[RecordedRequest]:
        """The node requests for feed `feed` that arrived after `since` (time.time())."""
        path = self.path(feed)
        return [
            r
            for r in self.site(feed).requests
            if r.path.split("?", 1)[0] == path and r.time >= since and node_of(r)
        ]

    def all_polls(self, since: float = 0.0) -> list[RecordedRequest]:
        return [r for feed in range(self.count) for r in self.polls(feed, since)]

    def in_flight(self, node: str, since: float) -> bool:
        """A request of `node` arrived within the last `delay` seconds (so it is still served)."""
        return any(
            node_of(r) == node and r.time >= max(since, time.time() - self.delay)
            for r in self.all_polls(since)
        )


def deliveries(webhook: WebhookReceiver) -> Counter[str]:
    """How many times the receiver got each delivery id (alerts only)."""
    return Counter(
        str(r.json["delivery"])
        for r in webhook.requests
        if isinstance(r.json, dict) and r.json.get("event") != "source-health"
    )


def alerted_titles(webhook: WebhookReceiver) -> Counter[str]:
    """How many alerts the receiver got per item title."""
    found: Counter[str] = Counter()
    for r in webhook.requests:
        if isinstance(r.json, dict) and isinstance(r.json.get("article"), dict):
            found[str(r.json["article"].get("title"))] += 1
    return found


@dataclass
class Cluster:
    """`nodes` configs in `folder`, all on the archive `archive` (an ``[archive]`` table's body),
    polling `feeds` every `every` and alerting `webhook` when a title has ALERT_WORD."""

    folder: Path
    archive: str
    feeds: FeedHosts
    webhook: WebhookReceiver
    nodes: int = 3
    every: str = "2s"
    extra: str = ""  # more config, appended to each node's
    node_key: bool = field(default_factory=node_key_known)  # write [service] node
    lease: str | None = None  # [service] lease, if this newswatch knows it
    per_host: int = 8
    running: dict[str, Service] = field(default_factory=dict)
    listen: dict[str, str] = field(default_factory=dict)

    def name(self, index: int) -> str:
        return f"node-{index + 1}"

    def config(self, index: int) -> Path:
        name = self.name(index)
        listen = self.listen.setdefault(name, f"127.0.0.1:{free_port()}")
        node = f'node = "{name}"\n' if self.node_key else ""
        if self.lease is not None and knows("service.lease"):
            node += f'lease = "{self.lease}"\n'
        body = f'[archive]\n{self.archive}\n\n[service]\nlisten = "{listen}"\n{node}\n'
        body += (
            f'[crawl]\ndelay = "0s"\ntimeout = "20s"\nper_host = {self.per_host}\n'
            "fetch_articles = false\n"
            f'obey_robots = false\nuser_agent = "{AGENT.format(node=name)}"\n\n'
        )
        for feed in range(self.feeds.count):
            body += (
                f'[[sources]]\nname = "feed-{feed}"\nfeed = "{self.feeds.url(feed)}"\n'
                f'every = "{self.every}"\n\n'
            )
        body += (
            f'[[rules]]\nname = "bulletins"\nquery = "{ALERT_WORD}"\nnotify = ["hook"]\n\n'
            f'[channels.hook]\ntype = "webhook"\nurl = "{self.webhook.url}"\n\n{self.extra}'
        )
        folder = self.folder / name
        folder.mkdir(parents=True, exist_ok=True)
        return write_config(folder, body)

    def start(self, index: int) -> Service:
        name = self.name(index)
        service = Service(self.config(index), name)
        self.running[name] = service
        return service

    def start_all(self) -> None:
        for index in range(self.nodes):
            self.start(index)

    def kill(self, name: str) -> None:
        """SIGKILL: the node dies at once, leases and sessions left as they were."""
        self.running[name].process.send_signal(signal.SIGKILL)
        self.running[name].process.wait()

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for service in self.running.values():
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        for name, service in self.running.items():
            try:
                codes[name] = service.process.wait(timeout=40)
            except Exception:
                service.kill()
                codes[name] = -9
        return codes

    def output(self) -> str:
        return "\n".join(f"== {name}\n{s.output()}" for name, s in self.running.items())

    def healthz(self, name: str) -> dict[str, Any] | None:
        import json
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://{self.listen[name]}/healthz", timeout=3) as r:
                return dict(json.load(r))
        except OSError:
            return None


@contextlib.contextmanager
def cluster(*args: Any, **kwargs: Any) -> Iterator[Cluster]:
    """A `Cluster` whose nodes are all killed at the end, whatever happened."""
    running = Cluster(*args, **kwargs)
    try:
        yield running
    finally:
        for service in running.running.values():
            service.kill()
