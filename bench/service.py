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
"0s"``, ``per_host = 16``, ``fetch_articles = false``), from a fresh archive. Measured in the
same run:

(a) one full cycle of polls after the first (conditional GETs: mostly 304), from the first to the
    last feed request of the cycle as the servers see them, twice:
    - with all sources due together: the service is stopped after its second cycle and started
      again on the same archive once every source is due, so its first pass polls them all;
    - cycle 2 of the running service, where each source is due `every` after its own previous
      run (plus up to 10% jitter), so the cycle is spread like the first one was, in many small
      passes; beside it, the time those passes took (``newswatch_crawl_duration_seconds``);
(b) the resident memory (RSS) and CPU use of the service (with any child processes) while no
    source is due, sampled from /proc after cycles 1 and 2;
(c) the baseline: a plain sequential ``feedparser.parse(url)`` loop over the same feed URLs
    (feedparser fetching each feed itself, no conditional GET), in this process, before the
    service starts and again while it is stopped; the faster of the two counts.

Targets: the cycle at least 10 times faster than the plain loop, idle RSS under 250 MB, idle CPU
under 1%. The target is checked on the cycle with all sources due together; the running
service's cycle 2 is printed too, but its length is set by the schedule (the sources of cycle 1
finished over its whole length, and each one is due again `every` plus up to 10% jitter after
its own run), so it is no measure of speed: the time its passes took is printed beside it.
Everything is bounded in time; the service is stopped with SIGTERM at the end. All
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
from dataclasses import dataclass
from datetime import datetime
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

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing keep-alive
            super().handle_error(request, client_address)


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


class Service:
    """A ``newswatch run`` process with its output in a file."""

    def __init__(self, config: Path, env: dict[str, str], log: Path, listen: str) -> None:
        self.log, self.listen = log, listen
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*newswatch_command(), "-c", str(config), "run"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def stop(self) -> int | None:
        """SIGTERM; the exit status (None: it had to be killed)."""
        if self.process.poll() is not None:
            return self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return None

    def problems(self, code: int | None) -> str:
        output = self.log.read_text(errors="replace")
        if code == 0 and "Traceback" not in output:
            return ""
        return f"{self.log.name}: exit {code}\n{output[-3000:]}"


def all_due_at(config: Path, env: dict[str, str]) -> float:
    """time.time() when every source is due (from ``newswatch sources --json``)."""
    answer = subprocess.run(
        [*newswatch_command(), "-c", str(config), "sources", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    latest = 0.0
    for row in json.loads(answer.stdout):
        for key in ("next_due", "not_before"):
            if row.get(key):
                when = row[key].replace("Z", "+00:00")
                latest = max(latest, datetime.fromisoformat(when).timestamp())
    return latest


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
    env = loopback_env(hosts)
    print(
        f"{args.sources} feeds of {args.items} items on {len(hosts)} local hosts, "
        f"{len(feeds.changing)} with a new item every poll; every source every {args.every}s",
        flush=True,
    )
    services: list[Service] = []
    problems = []
    try:
        # (c) the baseline first, so it shares the machine with nothing
        plain, entries = plain_loop(urls)
        print(f"plain feedparser loop: {plain:.2f} s, {entries} entries parsed", flush=True)
        with tempfile.TemporaryDirectory(prefix="nw-service-bench-") as tmp:
            folder = Path(tmp)
            listen = f"127.0.0.1:{free_port()}"
            config = write_config(folder, urls, args.every, listen)

            # the running service: cycle 1 (every feed in full), idle, cycle 2, idle
            service = Service(config, env, folder / "run-1.log", listen)
            services.append(service)
            pid = service.process.pid
            wait_idle(listen, feeds, 1, time.monotonic() + 300 + args.every)
            first = cycle(feeds, 1)
            busy1 = crawl_seconds(listen)
            print(
                f"cycle 1 (first poll, full bodies): {first[1] - first[0]:.2f} s of requests, "
                f"{busy1[0]:.2f} s in {busy1[1]} pass(es)",
                flush=True,
            )
            room = first[0] + args.every - time.monotonic() - 2
            idle1 = sample_idle(pid, listen, feeds, max(1.0, min(args.idle_seconds, room)))
            wait_idle(listen, feeds, 2, time.monotonic() + 2.2 * args.every + 120)
            second = cycle(feeds, 2)
            busy2 = crawl_seconds(listen)
            print(
                f"cycle 2 of the running service: {second[1] - second[0]:.2f} s of requests",
                flush=True,
            )
            room = second[0] + args.every - time.monotonic() - 2
            idle2 = sample_idle(pid, listen, feeds, max(1.0, min(args.idle_seconds, room)))
            problems.append(service.problems(service.stop()))

            # the same archive once every source is due: one pass polls them all
            wait = all_due_at(config, env) + 1 - time.time()
            print(f"waiting {max(0.0, wait):.0f} s until every source is due", flush=True)
            # the baseline again meanwhile (the machine is as quiet as for the service)
            again, _ = plain_loop(urls)
            print(f"plain feedparser loop again: {again:.2f} s", flush=True)
            plain = min(plain, again)  # the faster one: the harder target
            time.sleep(max(0.0, all_due_at(config, env) + 1 - time.time()))
            service = Service(config, env, folder / "run-2.log", listen)
            services.append(service)
            start = time.monotonic()
            polled = len(feeds.ours())
            while len(feeds.ours()) == polled and time.monotonic() - start < 120:
                time.sleep(0.01)
            ticks = cpu_ticks(process_tree(service.process.pid))
            wait_idle(listen, feeds, 3, time.monotonic() + 120 + args.every)
            pass_cpu = (cpu_ticks(process_tree(service.process.pid)) - ticks) / os.sysconf(
                "SC_CLK_TCK"
            )
            together = cycle(feeds, 3)
            busy3 = crawl_seconds(listen)
            problems.append(service.problems(service.stop()))
    finally:
        for service in services:
            service.stop()
        for server in servers:
            server.shutdown()
            server.server_close()

    spread_all = together[1] - together[0]
    spread2 = second[1] - second[0]
    speedup_all = plain / spread_all if spread_all > 0 else float("inf")
    speedup2 = plain / spread2 if spread2 > 0 else float("inf")
    busy = busy2[0] - busy1[0]
    passes = busy2[1] - busy1[1]
    rss = max(idle1.rss_mb, idle2.rss_mb)
    cpu = max(idle1.cpu_percent, idle2.cpu_percent)

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    def statuses(polls: tuple[float, float, dict[int, int]]) -> str:
        return ", ".join(f"{n} x {status}" for status, n in sorted(polls[2].items()))

    print()
    print(f"{f'plain feedparser loop, {args.sources} feeds:':<44}{plain:8.2f} s")
    print(
        f"cycle, all sources due together:            {spread_all:8.2f} s   "
        f"speed-up {speedup_all:5.1f} x  target >= {SPEEDUP_TARGET:.0f} x  "
        f"{verdict(speedup_all >= SPEEDUP_TARGET)}"
    )
    print(
        f"  ({statuses(together)}; {busy3[1]} pass(es) of {busy3[0]:.2f} s in all: "
        f"{plain / busy3[0]:.1f} x; {pass_cpu:.2f} s of CPU from its first request on)"
    )
    print(
        f"cycle 2 of the running service:             {spread2:8.2f} s   "
        f"(spread by the schedule, not a speed: {speedup2:.1f} x)"
    )
    print(
        f"  ({statuses(second)}; {passes} pass(es) of {busy:.2f} s in all: "
        f"{plain / busy:.1f} x; cycle 1 took {first[1] - first[0]:.2f} s; each source is due "
        f"`every` after its own last run plus up to {args.every * 0.1:.0f} s of jitter)"
    )
    print(
        f"idle RSS:                                   {rss:8.1f} MB  "
        f"target < {RSS_TARGET_MB:.0f} MB  {verdict(rss < RSS_TARGET_MB)}"
    )
    print(
        f"idle CPU:                                   {cpu:8.2f} %   "
        f"target < {CPU_TARGET_PERCENT:.0f} %    {verdict(cpu < CPU_TARGET_PERCENT)}"
    )
    for label, window in (("after cycle 1", idle1), ("after cycle 2", idle2)):
        print(
            f"  idle {label}: {window.seconds:.1f} s, {window.processes} process(es), "
            f"RSS {window.rss_mb:.1f} MB, CPU {window.cpu_percent:.2f} %"
            + ("" if window.quiet else "  (NOT quiet: a poll or pass ran meanwhile)")
        )
    failed = [p for p in problems if p]
    print(f"services stopped by SIGTERM: {'exit 0' if not failed else 'PROBLEMS'}")
    for problem in failed:
        print(problem, file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
