"""Shared helpers of the benchmarks: a local web server, a webhook, the `newswatch` command.

``LocalSite`` serves a dict of paths on 127.0.0.1 from a thread (standard library only), each
after its ``delay``; ``Receiver`` keeps the JSON bodies POSTed to it (a webhook); ``newswatch``
runs the real console script in a subprocess. Benchmarks never touch the network beyond
127.0.0.0/8: the subprocess gets a dead proxy for everything else.
"""

from __future__ import annotations

import http.server
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote


@dataclass(frozen=True)
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    delay: float = 0.0  # seconds before the answer


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 drops connections under a crawler's burst, and the
    # client's retry a second later would be timed as the pipeline's
    request_queue_size = 128


class _Served:
    """A threaded HTTP server of `handler` on a free port of `host`; a context manager."""

    def _serve(self, handler: type[http.server.BaseHTTPRequestHandler], host: str) -> str:
        self._server = _Server((host, 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        return f"http://{host}:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class LocalSite(_Served):
    """``{path: Resource}`` served on ``http://127.0.0.1:<port>``; use as a context manager."""

    def __init__(self, resources: dict[str, Resource], host: str = "127.0.0.1") -> None:
        self.resources = resources
        self.requests: list[str] = []
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.requests.append(self.path)
                found = site.find(self.path)
                if found is not None and found.delay:
                    time.sleep(found.delay)
                if found is None:
                    self._send(404, Resource(b"not found\n", "text/plain"))
                else:
                    self._send(200, found)

            def do_HEAD(self) -> None:
                self.do_GET()

            def _send(self, status: int, res: Resource) -> None:
                self.send_response(status)
                self.send_header("Content-Type", res.content_type)
                self.send_header("Content-Length", str(len(res.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(res.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.base = self._serve(Handler, host)

    def find(self, path: str) -> Resource | None:
        """The resource at ``path`` (query ignored), however its escapes are written."""
        path = path.split("#", 1)[0].split("?", 1)[0]
        found = self.resources.get(path)
        if found is None:
            wanted = unquote(path)
            found = next((r for p, r in self.resources.items() if unquote(p) == wanted), None)
        return found

    def url(self, path: str) -> str:
        return self.base + path


class Receiver(_Served):
    """A webhook on ``http://127.0.0.1:<port>/hook`` answering 200 and keeping every JSON body
    it is sent (``bodies``); use as a context manager."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.bodies: list[dict[str, Any]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.bodies.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.url = self._serve(Handler, host) + "/hook"


def newswatch_command() -> list[str]:
    """The console script next to this Python, or the module from a source tree."""
    script = Path(sys.executable).parent / "newswatch"
    return [str(script)] if script.exists() else [sys.executable, "-m", "scheduler.cli.main"]


# What `newswatch crawl` says of a source whose listing had more new pages than one pass takes.
MORE_NEXT_PASS = "the rest come next pass"


def newswatch(config: Path, *args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    """Run ``newswatch -c CONFIG ARGS`` with only loopback traffic allowed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSWATCH_")}
    # Anything not on 127.0.0.0/8 goes to a proxy that does not exist, so it fails at once.
    dead = "http://127.0.0.1:9"
    env.update(http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead)
    env.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    argv = [*newswatch_command(), "-c", str(config), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
