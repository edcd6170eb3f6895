"""The service's polling cycle and its idle footprint, beside a plain feedparser loop.

Usage::

    python bench/service.py [--sources 500] [--hosts 4] [--every 60] [--items 25]
                            [--changing 0.05] [--idle-seconds 10]

``--sources`` RSS feeds are served by threaded standard-library HTTP servers on 127.0.0.1,
127.0.0.2, ... (``--hosts`` of them, to mimic separate hosts). Each feed has ``--items`` items
(a typical news feed: title, link, guid, date, a paragraph of description) and answers a
conditional GET (If-None-Match / If-Modified-Since) with 304 while it is unchanged; a share of
them (``--changing``) gains a new item on every request, so every cycle brings new articles.

The real ``newswatch run`` polls them all (every source ``every = --every s``, ``[crawl] delay =
"0s"``, ``per_host = 16``, ``fetch_articles = false``). Measured in the same run:

(a) one full polling cycle after the first (the cycle of conditional GETs), from the first to the
    last feed request of the cycle as the servers see them; beside it the time the service's
    crawl passes of that cycle took (``newswatch_crawl_duration_seconds`` from /metrics) — the
    difference is the schedule's spread (each source's next run gets up to 10% of its interval
    of jitter), not work;
(b) the resident memory (RSS) and CPU use of the service (with any child processes) while no
    source is due, sampled from /proc between the cycles;
(c) the baseline: a plain sequential ``feedparser.parse(url)`` loop over the same feed URLs
    (feedparser fetching each feed itself, no conditional GET), in this process.

Targets: the cycle at least 10 times faster than the plain loop, idle RSS under 250 MB, idle CPU
under 1%. Everything is bounded in time; the service is stopped with SIGTERM at the end. All
traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

from common import newswatch_command

SPEEDUP_TARGET = 10.0
RSS_TARGET_MB = 250.0
CPU_TARGET_PERCENT = 1.0
BASE_TIME = 1_750_000_000  # Last-Modified of version 0 of every feed
WORDS = (
    "ministers",
    "council",
    "harbour",
    "budget",
    "research",
    "railway",
    "weather",
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
)


# --------------------------------------------------------------------------------------------
# The feeds


@dataclass
class Hit:
    time: float  # time.monotonic() on arrival
    feed: int
    status: int
    ours: bool  # sent by newswatch (its User-Agent), not by the baseline loop


class Feeds:
    """``count`` RSS feeds; feed i is ``/feeds/<i>.xml`` on host ``hosts[i % len(hosts)]``."""

    def __init__(self, count: int, items: int, changing: float) -> None:
        self.count, self.items = count, items
        step = max(1, round(1 / changing)) if changing > 0 else 0
        self.changing = {i for i in range(count) if step and i % step == 0}
        self.version = [0] * count
        self.polls = [0] * count
        self.hits: list[Hit] = []
        self.lock = threading.Lock()

    def body(self, feed: int, version: int, host: str) -> bytes:
        entries = []
        for k in range(version + self.items - 1, version - 1, -1):  # newest first
            words = " ".join(WORDS[(feed + k + j) % len(WORDS)] for j in range(12))
            link = f"http://{host}/news/{feed}/{k}.html"
            entries.append(
                f"<item><title>Feed {feed} story {k}: {words[:60]}</title>"
                f'<link>{link}</link><guid isPermaLink="false">urn:bench:{feed}:{k}</guid>'
                f"<pubDate>{formatdate(BASE_TIME + k * 60, usegmt=True)}</pubDate>"
                f"<description>Story {k} of feed {feed}. {words}. {words}. {words}."
                f"</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Bench feed {feed}</title><link>http://{host}/</link>"
            f"<description>Benchmark feed {feed}</description>{''.join(entries)}"
            "</channel></rss>\n"
        ).encode()

    def answer(
        self, feed: int, host: str, headers: Any, ours: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        with self.lock:
            if feed in self.changing and self.polls[feed] > 0:
                self.version[feed] += 1  # a new item on every poll after the first
            self.polls[feed] += 1
            version = self.version[feed]
            etag = f'"{feed}-{version}"'
            modified = formatdate(BASE_TIME + version * 60, usegmt=True)
            unchanged = headers.get("If-None-Match") == etag or (
                headers.get("If-None-Match") is None
                and headers.get("If-Modified-Since") == modified
            )
            status = 304 if unchanged else 200
            self.hits.append(Hit(time.monotonic(), feed, status, ours))
        validators = [("ETag", etag), ("Last-Modified", modified)]
        if unchanged:
            return 304, validators, b""
        content = [("Content-Type", "application/rss+xml; charset=utf-8")]
        return 200, content + validators, self.body(feed, version, host)

    def ours(self) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.ours]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def server_bind(self) -> None:  # no reverse DNS lookup of the address
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]


def serve(feeds: Feeds, host: str) -> _Server:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            name = path.removeprefix("/feeds/").removesuffix(".xml")
            if not (path.startswith("/feeds/") and name.isdigit() and int(name) < feeds.count):
                self._reply(404, [("Content-Type", "text/plain")], b"not found\n")
                return
            ours = "newswatch" in self.headers.get("User-Agent", "")
            status, headers, body = feeds.answer(
                int(name), self.headers["Host"], self.headers, ours
            )
            self._reply(status, headers, body)

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server((host, 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    ).start()
    return server


# --------------------------------------------------------------------------------------------
# The service and /proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, urls: list[str], every: int, listen: str) -> Path:
    sources = "\n".join(
        f'[[sources]]\nname = "feed-{i:04d}"\nfeed = "{url}"\nevery = "{every}s"\n'
        for i, url in enumerate(urls)
    )
    config = folder / "newswatch.toml"
    config.write_text(
        f"""[archive]
path = "nw.db"

[crawl]
delay = "0s"
per_host = 16
fetch_articles = false
timeout = "10s"

[service]
listen = "{listen}"

[[rules]]
name = "air-defence"
query = 'NATO AND "air defence"'
notify = []

{sources}""",
        encoding="utf-8",
    )
    return config


def loopback_env(hosts: list[str]) -> dict[str, str]:
    """The environment of the service: loopback only (anything else meets a dead proxy)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    dead = "http://127.0.0.1:9"
    env.update(http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead)
    bypass = ",".join(["localhost", *hosts])
    env.update(no_proxy=bypass, NO_PROXY=bypass)
    return env


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants, read from /proc."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime of the processes, in clock ticks."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5)
    return total


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def healthz(listen: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{listen}/healthz", timeout=5) as answer:
            return json.loads(answer.read())
    except (OSError, ValueError):
        return None


def crawl_seconds(listen: str) -> tuple[float, int]:
    """(sum, count) of newswatch_crawl_duration_seconds so far."""
    with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("newswatch_crawl_duration_seconds_"):
            name, value = line.split()
            values[name] = float(value)
    return (
        values.get("newswatch_crawl_duration_seconds_sum", 0.0),
        int(values.get("newswatch_crawl_duration_seconds_count", 0)),
    )


@dataclass
class Idle:
    seconds: float
    rss_mb: float
    cpu_percent: float
    processes: int
    quiet: bool  # no feed request and no crawl during the window


def sample_idle(pid: int, listen: str, feeds: Feeds, seconds: float) -> Idle:
    """RSS (max) and CPU (average) of the service's process tree over `seconds` of idleness."""
    before = len(feeds.ours())
    tree = process_tree(pid)
    ticks, start = cpu_ticks(tree), time.monotonic()
    peak = rss_kb(tree)
    while time.monotonic() - start < seconds:
        time.sleep(0.25)
        peak = max(peak, rss_kb(tree))
    ticks, wall = cpu_ticks(tree) - ticks, time.monotonic() - start
    state = healthz(listen) or {}
    quiet = len(feeds.ours()) == before and not state.get("crawling")
    cpu = ticks / os.sysconf("SC_CLK_TCK") / wall * 100
    return Idle(wall, peak / 1024, cpu, len(tree), quiet)


def wait_idle(listen: str, feeds: Feeds, polls: int, deadline: float, quiet: float = 2.0) -> None:
    """Until every feed was polled `polls` times, no pass runs, and `quiet` s passed since the
    last feed request."""
    while time.monotonic() < deadline:
        hits = feeds.ours()
        counts = [0] * feeds.count
        for hit in hits:
            counts[hit.feed] += 1
        state = healthz(listen) or {}
        if (
            min(counts) >= polls
            and state.get("crawling") == []
            and time.monotonic() - hits[-1].time >= quiet
        ):
            return
        time.sleep(0.25)
    raise TimeoutError(f"cycle {polls} did not end in time")


def cycle(feeds: Feeds, n: int) -> tuple[float, float, dict[int, int]]:
    """(first, last) arrival time of the n-th poll of every feed, and its statuses."""
    seen = [0] * feeds.count
    times, statuses = [], {}
    for hit in feeds.ours():
        seen[hit.feed] += 1
        if seen[hit.feed] == n:
            times.append(hit.time)
            statuses[hit.status] = statuses.get(hit.status, 0) + 1
    if len(times) < feeds.count:
        raise RuntimeError(f"only {len(times)} feeds were polled {n} times")
    return min(times), max(times), statuses


@contextlib.contextmanager
def running_service(config: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*newswatch_command(), "-c", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------------------------
# The baseline


def plain_loop(urls: list[str]) -> tuple[float, int]:
    """Seconds of ``feedparser.parse(url)`` over `urls`, one after another; entries read."""
    import feedparser

    feedparser.parse(urls[0])  # warm-up (imports, first connection)
    start = time.perf_counter()
    entries = sum(len(feedparser.parse(url).entries) for url in urls)
    return time.perf_counter() - start, entries


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=4, help="127.0.0.1, 127.0.0.2, ...")
    parser.add_argument("--every", type=int, default=60, help="seconds between polls")
    parser.add_argument("--items", type=int, default=25, help="items per feed")
    parser.add_argument("--changing", type=float, default=0.05, help="share with new items")
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    # no proxy for the baseline either: every host here is local
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        os.environ.pop(name, None)

    feeds = Feeds(args.sources, args.items, args.changing)
    hosts = [f"127.0.0.{n + 1}" for n in range(args.hosts)]
    servers = [serve(feeds, host) for host in hosts]
    urls = [
        f"http://{hosts[i % len(hosts)]}:{servers[i % len(hosts)].server_port}/feeds/{i}.xml"
        for i in range(args.sources)
    ]
    print(
        f"{args.sources} feeds of {args.items} items on {len(hosts)} local hosts, "
        f"{len(feeds.changing)} with a new item every poll; every source every {args.every}s"
    )
    try:
        # (c) the baseline first, so it shares the machine with nothing
        plain, entries = plain_loop(urls)
        print(f"plain feedparser loop: {plain:.2f} s, {entries} entries parsed")
        with tempfile.TemporaryDirectory(prefix="nw-service-bench-") as tmp:
            folder = Path(tmp)
            listen = f"127.0.0.1:{free_port()}"
            config = write_config(folder, urls, args.every, listen)
            log = folder / "run.log"
            # the whole run: two cycles of `every` (plus jitter) and generous slack
            deadline = time.monotonic() + 2.2 * args.every + 240
            started = time.monotonic()
            with running_service(config, loopback_env(hosts), log) as service:
                # cycle 1: every feed in full (a first poll), all in one pass
                wait_idle(listen, feeds, 1, deadline)
                first = cycle(feeds, 1)
                busy1 = crawl_seconds(listen)
                print(
                    f"cycle 1 (first poll, {sum(first[2].values())} feeds, full bodies): "
                    f"{first[1] - first[0]:.2f} s of requests, {busy1[0]:.2f} s in "
                    f"{busy1[1]} pass(es); service ready after {time.monotonic() - started:.1f} s"
                )
                # (b) idle between cycles (nothing is due for about `every` s)
                room = first[0] + args.every - time.monotonic() - 2
                idle = sample_idle(service.pid, listen, feeds, min(args.idle_seconds, room))
                # (a) cycle 2: conditional GETs
                wait_idle(listen, feeds, 2, deadline)
                second = cycle(feeds, 2)
                busy2 = crawl_seconds(listen)
                idle2 = sample_idle(service.pid, listen, feeds, args.idle_seconds)
                code = None
                service.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    code = service.wait(timeout=40)
            output = log.read_text(errors="replace")
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()

    spread = second[1] - second[0]
    busy = busy2[0] - busy1[0]
    passes = busy2[1] - busy1[1]
    speedup = plain / spread if spread > 0 else float("inf")
    rss = max(idle.rss_mb, idle2.rss_mb)
    cpu = max(idle.cpu_percent, idle2.cpu_percent)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print()
    print(f"cycle 2 statuses: {dict(sorted(second[2].items()))}")
    print(
        f"cycle time (first to last request, cycle 2): {spread:8.2f} s  "
        f"({passes} crawl pass(es), {busy:.2f} s of crawling)"
    )
    print(f"plain feedparser loop:                       {plain:8.2f} s")
    print(
        f"speed-up:                                    {speedup:8.1f} x   "
        f"target >= {SPEEDUP_TARGET:.0f} x  {verdict(speedup >= SPEEDUP_TARGET)}"
    )
    if busy > 0:
        print(f"  (plain loop / crawl-pass time:             {plain / busy:8.1f} x)")
    print(
        f"idle RSS:                                    {rss:8.1f} MB  "
        f"target < {RSS_TARGET_MB:.0f} MB  {verdict(rss < RSS_TARGET_MB)}"
    )
    print(
        f"idle CPU:                                    {cpu:8.2f} %   "
        f"target < {CPU_TARGET_PERCENT:.0f} %    {verdict(cpu < CPU_TARGET_PERCENT)}"
    )
    for label, window in (("after cycle 1", idle), ("after cycle 2", idle2)):
        print(
            f"  idle {label}: {window.seconds:.1f} s, {window.processes} process(es), "
            f"RSS {window.rss_mb:.1f} MB, CPU {window.cpu_percent:.2f} %"
            + ("" if window.quiet else "  (NOT quiet: a poll or pass ran meanwhile)")
        )
    print(f"service stopped by SIGTERM: exit {code}")
    if code != 0 or "Traceback" in output:
        print(output[-3000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
