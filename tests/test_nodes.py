"""Several `newswatch run` processes on one archive (docs/operations.md, "Several nodes"), as
real processes against local feed hosts (127.0.0.2, .3, .4 are separate hosts) and a real
PostgreSQL server or one SQLite file. Counted at the hosts: each source polled once per due
time, whichever node polls it; a node SIGKILLed mid-pass hands its sources over when its lease
runs out (and not before: a live node renews its leases); `last_node`; /healthz and /metrics
name the node and answer 503 while the database does not answer, and the node resumes by
itself when it answers again. Leases and schedules are short (seconds) to keep this quick."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, closing
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from nw import Service, json_out, newswatch, write_config
from servers import FixtureSite, free_port
from tcpcut import TcpCut

from crawler.archive import open_archive

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
FEEDS = ("/a.xml", "/b.xml")
EVERY = 3.0


def rss(title: str, link: str) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        "<pubDate>Mon, 09 Jun 2025 10:00:00 GMT</pubDate></item></channel></rss>"
    )


@pytest.fixture
def hosts() -> Iterator[list[FixtureSite]]:
    with ExitStack() as stack:
        sites = [stack.enter_context(FixtureSite(None, host=host)) for host in HOSTS]
        for site in sites:
            for feed in FEEDS:
                site.set(feed, rss(f"{site.host} {feed}", f"{site.url}/story{feed}.html"))
        yield sites


def archive_table(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if engine == "postgres":
        return f'[archive]\nurl = "{request.getfixturevalue("postgres_url")}"\n\n'
    return f'[archive]\npath = "{tmp_path / "nw.db"}"\n\n'


def node_config(
    tmp_path: Path, archive: str, node: str, sources: str, every: str, lease: str
) -> tuple[Path, str]:
    listen = f"127.0.0.1:{free_port()}"
    body = archive + (
        f'[crawl]\ndelay = "0s"\nfetch_articles = false\nevery = "{every}"\n\n'
        f'[service]\nlisten = "{listen}"\nnode = "{node}"\nlease = "{lease}"\n\n'
    )
    return write_config(tmp_path, body + sources, name=f"{node}.toml"), listen


def sources_of(sites: list[FixtureSite], feeds: tuple[str, ...] = FEEDS) -> str:
    return "".join(
        f'[[sources]]\nname = "{source_name(site, feed)}"\nfeed = "{site.url}{feed}"\n\n'
        for site in sites
        for feed in feeds
    )


def source_name(site: FixtureSite, feed: str) -> str:
    return f"h{site.host.rsplit('.', 1)[1]}-{feed.strip('/').removesuffix('.xml')}"


def healthz(listen: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://{listen}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, {}


def wait_until(what: str, check: object, timeout: float, nodes: list[Service]) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        for node in nodes:
            assert node.process.poll() is None, f"a node exited\n{node.output()}"
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not in {timeout}s: {what}\n" + "\n".join(n.output() for n in nodes)
            )
        time.sleep(0.1)


def poll_times(site: FixtureSite, feed: str) -> list[float]:
    return [r.time for r in site.requests if r.path == feed]


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_three_nodes_poll_each_source_once_per_due_time(
    engine: str, request: pytest.FixtureRequest, tmp_path: Path, hosts: list[FixtureSite]
) -> None:
    archive = archive_table(engine, request, tmp_path)
    names = ["node-1", "node-2", "node-3"]
    configs = [
        node_config(tmp_path, archive, name, sources_of(hosts), f"{EVERY:.0f}s", "6s")
        for name in names
    ]
    nodes: list[Service] = []
    try:
        nodes = [Service(config, name) for (config, _), name in zip(configs, names, strict=True)]
        every_feed = [(site, feed) for site in hosts for feed in FEEDS]
        wait_until(
            "every feed polled", lambda: all(site.hits(f) for site, f in every_feed), 40, nodes
        )
        window = time.time()
        time.sleep(3 * EVERY + 1)
        for node in nodes:
            assert node.stop() == 0, node.output()
    finally:
        for node in nodes:
            node.kill()
    for node in nodes:
        assert "Traceback" not in node.err.read_text(), node.output()
    for site, feed in every_feed:
        times = poll_times(site, feed)
        gaps = [round(b - a, 2) for a, b in pairwise(times)]
        # due every 3 s (to the second, claimed up to 0.3 s early): two polls of one due time
        # (two nodes) would be a fraction of a second apart
        assert min(gaps) >= EVERY - 1.5, (site.host, feed, gaps)
        assert len([t for t in times if t >= window]) >= 2, (site.host, feed, times)
    config = configs[0][0]
    listed = json_out(newswatch(config, "sources", "--json"))
    assert len(listed) == len(every_feed)
    assert {s["last_node"] for s in listed} <= set(names)
    # a host's sources are leased to one node at a time: runs of one host by two nodes
    # never overlap (to the second, as runs are stored)
    with closing(open_archive(**where(engine, request, tmp_path))) as opened:
        runs = sorted(opened.runs(limit=10_000), key=lambda r: (r.started, r.id))
    assert runs and {r.node for r in runs} <= set(names)
    for site in hosts:
        mine = [r for r in runs if r.source.startswith(source_name(site, ""))]
        for earlier, later in pairwise(mine):
            if earlier.node != later.node:
                assert later.started >= earlier.finished, (earlier, later)
    by_node: dict[str, int] = {}
    for run in runs:
        by_node[str(run.node)] = by_node.get(str(run.node), 0) + 1
    polls = {f"{site.host}{feed}": site.hits(feed) for site, feed in every_feed}
    print(f"{engine}: runs per node {by_node}; polls per feed {polls}")


def where(engine: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    if engine == "postgres":
        return {"url": request.getfixturevalue("postgres_url")}
    return {"path": tmp_path / "nw.db"}


def test_a_node_killed_mid_pass_hands_its_sources_over_after_its_lease(
    tmp_path: Path, postgres_url: str
) -> None:
    lease = 4.0
    with FixtureSite(None, host=HOSTS[0]) as site:
        # the first answer takes 10 s (a pass longer than the lease: only renewals keep it),
        # later ones answer at once
        body = rss("slow", f"{site.url}/story.html")
        site.set_sequence("/slow.xml", [{"body": body, "delay": 10.0}, {"body": body}])
        archive = f'[archive]\nurl = "{postgres_url}"\n\n'
        source = f'[[sources]]\nname = "slow"\nfeed = "{site.url}/slow.xml"\n\n'
        (config_a, _), (config_b, listen_b) = (
            node_config(tmp_path, archive, name, source, "1h", f"{lease:.0f}s")
            for name in ("node-a", "node-b")
        )
        a = Service(config_a, "node-a")
        b: Service | None = None
        try:
            wait_until("node-a polls", lambda: site.hits("/slow.xml") >= 1, 30, [a])
            claimed = poll_times(site, "/slow.xml")[0]  # node-a claimed the source just before
            b = Service(config_b, "node-b")
            wait_until("node-b answers", lambda: healthz(listen_b)[0] == 200, 30, [a, b])
            # node-b runs beside node-a's pass for longer than a lease: the lease is renewed
            time.sleep(max(0.0, claimed + lease + 2.0 - time.time()))
            assert site.hits("/slow.xml") == 1, "node-b took a source node-a still holds"
            a.process.send_signal(signal.SIGKILL)
            a.process.wait()
            killed = time.time()
            wait_until("node-b takes over", lambda: site.hits("/slow.xml") >= 2, 30, [b])
            taken = poll_times(site, "/slow.xml")[1] - killed
            assert taken >= 0
            # within the lease (renewed a third of a lease before the kill at most) and the
            # node's one-second claim tick
            assert taken <= lease + 1.5, taken
            wait_until(
                "node-b records the run",
                lambda: (
                    json_out(newswatch(config_b, "sources", "--json"))[0]["last_node"] == "node-b"
                ),
                15,
                [b],
            )
            assert b.stop() == 0, b.output()
        finally:
            a.kill()
            if b is not None:
                b.kill()
        print(f"taken over {taken:.1f} s after the SIGKILL (lease {lease:.0f} s)")
        with closing(open_archive(url=postgres_url)) as opened:
            assert [r.node for r in opened.runs("slow")] == ["node-b"]  # node-a's never was


def test_healthz_is_503_while_postgresql_does_not_answer_and_the_node_resumes(
    tmp_path: Path, postgres_url: str
) -> None:
    parts = urlsplit(postgres_url)
    with (
        FixtureSite(None, host=HOSTS[1]) as site,
        TcpCut((parts.hostname or "127.0.0.1", parts.port or 5432)) as relay,
    ):
        site.set("/a.xml", rss("a", f"{site.url}/a.html"))
        netloc = f"{parts.username}@127.0.0.1:{relay.port}"
        url = urlunsplit(parts._replace(netloc=netloc)) + "?connect_timeout=2"
        archive = f'[archive]\nurl = "{url}"\n\n'
        source = f'[[sources]]\nname = "a"\nfeed = "{site.url}/a.xml"\n\n'
        config, listen = node_config(tmp_path, archive, "node-h", source, "4s", "6s")
        node = Service(config, "node-h")
        try:
            wait_until("healthy", lambda: healthz(listen)[0] == 200, 30, [node])
            status, detail = healthz(listen)
            assert status == 200
            assert detail["node"] == "node-h" and detail["archive"] == "writable"
            with urllib.request.urlopen(f"http://{listen}/metrics", timeout=5) as answer:
                metrics = answer.read().decode()
            assert 'newswatch_node_info{node="node-h"} 1.0' in metrics
            assert "newswatch_archive_up 1.0" in metrics
            wait_until("polled", lambda: site.hits("/a.xml") >= 1, 30, [node])
            # cut between two passes: the spiders' few look-ups still wait on the loop (see
            # docs/architecture.md, "Storage and the event loop"), the rest is off it
            wait_until(
                "between passes", lambda: healthz(listen)[1].get("crawling") == [], 10, [node]
            )
            relay.cut()
            cut = time.monotonic()
            wait_until("503", lambda: healthz(listen)[0] == 503, 20, [node])
            to_503 = time.monotonic() - cut
            status, detail = healthz(listen)
            assert status == 503 and detail["status"] == "unhealthy"
            assert detail["archive"] == "not writable" and detail["node"] == "node-h"
            polls = site.hits("/a.xml")
            time.sleep(5)  # due every 4 s: not polled while its archive does not answer
            assert site.hits("/a.xml") <= polls + 1
            relay.mend()
            mended = time.monotonic()
            wait_until("200 again", lambda: healthz(listen)[0] == 200, 30, [node])
            to_200 = time.monotonic() - mended
            polls = site.hits("/a.xml")
            wait_until("polled again", lambda: site.hits("/a.xml") > polls, 15, [node])
            assert node.stop() == 0, node.output()
        finally:
            node.kill()
    print(f"/healthz 503 {to_503:.1f} s after the cut, 200 {to_200:.1f} s after it mended")
    assert "Traceback" not in node.err.read_text()
