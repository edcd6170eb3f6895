"""`newswatch demo`: an offline end-to-end demonstration (docs/commands.md).

A bundled sample news site (`scheduler/demo_site/`, package data: three fictional outlets with
an RSS feed, a Google News sitemap and a section page) is served on 127.0.0.1 from a thread.
A config for it is written to a temporary directory (or to `--keep DIR`); the real pipeline
crawls it (`crawl_sources` on the reactor) and the real `deliver_due` delivers the alerts, with
senders that print each message (webhook headers and JSON body, email subject and text) instead
of sending it. Nothing leaves the machine.
"""

from __future__ import annotations

import http.server
import json
import secrets
import shlex
import shutil
import socketserver
import sys
import tempfile
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from email.utils import formatdate
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from crawler.clock import utcnow
from crawler.model import Channel
from crawler.records import Article, RunRecord
from scheduler import SchedulerError, UsageError
from scheduler.cli.tables import summary_line, table
from scheduler.config import Config, ConfigError, load
from scheduler.delivery.notify import Message
from scheduler.delivery.notify.webhook import headers_for
from scheduler.delivery.outbox import DeliveryReport, deliver_due
from scheduler.delivery.render import email_subject, email_text
from scheduler.service.jobs import crawl_sources


class DemoError(SchedulerError):
    """The demonstration could not run to the end (exit status 1)."""


SITE_PLACEHOLDER = "{{SITE}}"
CONFIG_NAME = "newswatch.toml"
DEMO_LISTEN = "127.0.0.1:9180"  # where `newswatch -c DIR/newswatch.toml run` serves the web view
ARCHIVE_NAME = "newswatch.db"
CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
SKIPPED = {"README.md"}  # documentation of the site, not part of it

# The config of the demo; {SITE} is the sample site's base URL.
CONFIG_TEMPLATE = """\
# newswatch demo: three fictional outlets, served on {SITE} only while
# `newswatch demo` ran. search, rules test, alerts and export work on the archive below; a
# crawl with this config finds the site gone.

[archive]
path = "{ARCHIVE}"

[crawl]
user_agent = "newswatch-demo/0.1 (+https://example.org/newswatch-demo)"
delay = "0s"
timeout = "10s"

[service]
listen = "{LISTEN}"

[web]                              # the web view of `newswatch -c THIS_FILE run`
password = "{PASSWORD}"
secret = "{SECRET}"
api_tokens = ["{TOKEN}"]

[topic]                            # what is worth keeping at all
query = 'NATO OR OTAN OR defen* OR military'

[[sources]]
name = "northwind-herald"          # a regional paper with a defence desk: RSS
feed = "{SITE}/northwind/rss.xml"

[[sources]]
name = "meridian-wire"             # a news agency: Google News sitemap
sitemap = "{SITE}/meridian/sitemap-news.xml"

[[sources]]
name = "lakeside-gazette"          # a paper's world section page
site = "{SITE}/lakeside/world/"
follow = ['/lakeside/world/\\d{{4}}/']

[[rules]]
name = "air-defence"
query = '(NATO OR OTAN) AND ("air defence" OR "air defense" OR Patriot OR "IRIS-T")'
notify = ["ops-hook", "analysts"]

[[rules]]
name = "missile-defence"
query = '"missile defence" OR "missile defense"'
notify = ["analysts"]

[channels.ops-hook]
type = "webhook"
url = "{SITE}/hooks/newswatch"
secret = "demo-secret"             # signs every delivery (X-Newswatch-Signature-256)

[channels.analysts]
type = "email"
host = "127.0.0.1"
port = 2525
security = "none"
from = "newswatch@example.org"
to = ["analyst@example.org"]
"""


# ---------------------------------------------------------------------------------------------
# the sample site


def site_files() -> dict[str, bytes]:
    """The files of the bundled site by URL path (without the leading '/')."""
    files: dict[str, bytes] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
            elif child.is_file() and child.name not in SKIPPED:
                files[prefix + child.name] = child.read_bytes()

    walk(resources.files("scheduler") / "demo_site", "")
    if not files:
        raise DemoError("the bundled demo site is missing; reinstall newswatch")
    return files


def _content_type(path: str) -> str:
    return CONTENT_TYPES.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (reverse DNS): not needed, not offline
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "newswatch-demo-site/0.1"
    last_modified = formatdate(1749546000, usegmt=True)  # 2025-06-10 09:00 UTC

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        key = path.lstrip("/")
        if key.endswith("/") or not key:
            key += "index.html"
        files = self.server.files
        if key in files:
            self._reply(200, files[key], _content_type(key))
        elif f"{key}/index.html" in files:
            self._reply(301, b"", "text/plain; charset=utf-8", location=path + "/")
        else:
            self._reply(404, b"Not Found\n", "text/plain; charset=utf-8")

    do_HEAD = do_GET

    def _reply(self, status: int, body: bytes, content_type: str, location: str = "") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 200:
            self.send_header("Last-Modified", self.last_modified)
        if location:
            self.send_header("Location", location)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class DemoSite:
    """The sample site on 127.0.0.1 and a free port, served from a daemon thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        marker, url = SITE_PLACEHOLDER.encode(), self.url.encode("ascii")
        self._server.files = {
            # every text file names the site by {{SITE}}; it becomes this server's URL
            path: body.replace(marker, url) if PurePosixPath(path).suffix in CONTENT_TYPES else body
            for path, body in site_files().items()
        }
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="demo-site",
            daemon=True,
        )

    def __enter__(self) -> DemoSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# senders that show instead of sending


@dataclass(frozen=True)
class Shown:
    channel: Channel
    message: Message


class ShowSenders:
    """Senders for `deliver_due` that keep each message to be printed; they never fail.

    They run on deliver_due's worker threads (one per channel); the messages are printed
    afterwards, in a stable order, so the output does not depend on thread timing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.shown: list[Shown] = []

    def _keep(self, channel: Channel, message: Message) -> None:
        with self._lock:
            self.shown.append(Shown(channel, message))

    def senders(self) -> dict[str, Callable[[Channel, Message], None]]:
        return {"webhook": self._keep, "email": self._keep}


def show_webhook(channel: Channel, message: Message) -> list[str]:
    """The request a webhook receiver would get: method, URL, headers, the body pretty."""
    lines = [f"POST {channel.options['url']}"]
    lines += [f"{name}: {value}" for name, value in headers_for(channel, message).items()]
    lines += ["", json.dumps(message.payload, indent=2, ensure_ascii=False)]
    return lines


def show_email(channel: Channel, message: Message) -> list[str]:
    """The email an analyst would get: sender, recipients, subject and the plain-text body."""
    to = channel.options.get("to") or []
    recipients = ", ".join(str(a) for a in to) if isinstance(to, list | tuple) else str(to)
    return [
        f"From: {channel.options.get('from')}",
        f"To: {recipients}",
        f"Subject: {email_subject(message.payload)}",
        "",
        email_text(message.payload).rstrip("\n"),
    ]


def _ordered(config: Config, shown: list[Shown]) -> list[Shown]:
    """By rule (config order), article (published), then channel (the rule's notify order)."""
    rules = {rule.name: rule for rule in config.rules}
    names = list(rules)

    def key(item: Shown) -> tuple[Any, ...]:
        payload = item.message.payload
        rule = rules.get(str(payload.get("rule")))
        article = payload.get("article") or {}
        notify = list(rule.notify) if rule else []
        return (
            names.index(rule.name) if rule else len(names),
            article.get("published") or "",
            article.get("url") or "",
            notify.index(item.channel.name) if item.channel.name in notify else len(notify),
        )

    return sorted(shown, key=key)


def print_alerts(config: Config, shown: list[Shown]) -> None:
    items = _ordered(config, shown)
    for number, item in enumerate(items, 1):
        payload = item.message.payload
        channel = item.channel
        title = f" alert {number} of {len(items)}: rule {payload.get('rule')} -> "
        title += f"{channel.name} ({channel.type}) "
        print("=" * 4 + title + "=" * max(4, 96 - len(title)))
        show = show_webhook if channel.type == "webhook" else show_email
        print("\n".join(show(channel, item.message)))
        print()


# ---------------------------------------------------------------------------------------------
# the demonstration


def _say(text: str = "") -> None:
    print(text, flush=True)


def _prepare(keep: str | None) -> Path:
    """The directory for config and archive; refuses to reuse one that has them."""
    if keep is None:
        return Path(tempfile.mkdtemp(prefix="newswatch-demo-"))
    directory = Path(keep)
    for name in (CONFIG_NAME, ARCHIVE_NAME):
        if (directory / name).exists():
            raise UsageError(
                f"{directory / name} already exists; give --keep an empty or new directory"
            )
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _hints(directory: Path, kept: bool) -> list[str]:
    config = shlex.quote(str(directory / CONFIG_NAME)) if kept else "DIR/newswatch.toml"
    commands = [
        f"newswatch -c {config} search 'NATO AND \"air defence\"'",
        f"newswatch -c {config} rules test missile-defence",
        f"newswatch -c {config} alerts",
        f"newswatch -c {config} export --format csv",
    ]
    if kept:
        head = [f"the config and archive are kept in {directory}; explore them:"]
        commands.append(f"newswatch -c {config} run   # the web view, below")
    else:
        head = [
            "the temporary archive was removed; keep it to explore it:",
            "  newswatch demo --keep DIR",
        ]
    return head + [f"  {command}" for command in commands]


def run(keep: str | None = None) -> int:
    """Serve, crawl, deliver (shown), summarise. Returns the exit status."""
    from scheduler.service.runtime import run_on_reactor

    directory = _prepare(keep)
    try:
        with DemoSite() as site:
            config_path = directory / CONFIG_NAME
            password = secrets.token_urlsafe(9)
            config_path.write_text(
                CONFIG_TEMPLATE.format(
                    SITE=site.url,
                    ARCHIVE=ARCHIVE_NAME,
                    LISTEN=DEMO_LISTEN,
                    PASSWORD=password,
                    SECRET=secrets.token_urlsafe(32),
                    TOKEN=secrets.token_urlsafe(24),
                ),
                encoding="utf-8",
            )
            try:
                config = load(config_path, environ={})
            except ConfigError as exc:  # a bug in this module, not the user's doing
                raise DemoError(f"the demo config is invalid: {exc}") from exc
            where = "kept" if keep is not None else "temporary"
            _say(f"newswatch demo: a sample news site (3 fictional outlets) is up on {site.url}")
            _say(f"config ({where}): {config_path}")
            _say(
                f"crawling {len(config.sources)} sources, matching {len(config.rules)} rules; "
                "the alerts below are shown here instead of being sent"
            )
            _say()
            shower = ShowSenders()
            with closing(config.open_archive()) as archive:
                sources = list(config.sources)
                results: dict[str, RunRecord] = run_on_reactor(
                    lambda: crawl_sources(config, archive, sources)
                )
                report = deliver_due(archive, config.channels, utcnow, senders=shower.senders())
                articles = list(archive.iter_articles())
        print_alerts(config, shower.shown)
        _summarise(results, articles, shower.shown, report)
        failed = [r for r in results.values() if r.status == "error"]
        if failed:
            first = failed[0]
            raise DemoError(f"the demo crawl failed: {first.source}: {first.error}")
        if not shower.shown:
            raise DemoError("the demo crawl produced no alert; run it with --debug to see why")
        if report.failed or report.retrying:
            raise DemoError(f"{report.failed + report.retrying} demo alerts could not be shown")
        _say()
        _say("\n".join(_hints(directory, keep is not None)))
        if keep is not None:
            _say(
                f"web view: while `run` is up, open http://{DEMO_LISTEN}/ and sign in with the "
                f"password {password} (it is [web] password in {config_path.name})"
            )
        return 0
    finally:
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


def _summarise(
    results: dict[str, RunRecord],
    articles: list[Article],
    shown: list[Shown],
    report: DeliveryReport,
) -> None:

    table(
        [summary_line(r) for r in results.values()],
        ["source", "status", "fetched", "new", "seen", "off-topic", "errors", "detail"],
    )
    stories = {article.story_id for article in articles}
    print(f"archived: {len(articles)} articles in {len(stories)} stories")
    reported: set[int | None] = set()
    for article in articles:
        if article.also_reported_by and article.story_id not in reported:
            reported.add(article.story_id)
            others = ", ".join(sorted({a.source for a in article.also_reported_by}))
            print(f"  same story from {article.source} and {others}: {article.title}")
    kinds: dict[str, int] = {}
    for item in shown:
        kinds[item.channel.type] = kinds.get(item.channel.type, 0) + 1
    by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items(), reverse=True))
    print(
        f"alerts: {len(shown)} shown ({by_kind or 'none'}), {report.retrying} to retry, "
        f"{report.failed} failed"
    )
    sys.stdout.flush()
