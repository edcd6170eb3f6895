"""Real local HTTP servers for the test suite (standard library only).

``FixtureSite``
    Serves a directory of files (plus programmable per-path overrides) like a real web server:
    Content-Type by extension, ``{{SITE}}`` replaced by the site's own base URL in text files,
    strong ETag and Last-Modified, conditional GET (304), response sequences, delays.
``WebhookReceiver``
    Records every POST and answers with a programmable sequence of responses.
``verify_signature`` / ``signature``
    Check / build an ``X-Newswatch-Signature-256`` value (the README's quickstart).
``free_port``
    A free TCP port on a loopback host.

Servers bind loopback addresses only (127.0.0.0/8; 127.0.0.2, 127.0.0.3, ... act as separate
hosts on Linux). Every response carries Content-Length (HTTP/1.1 keep-alive works), nothing is
logged, and ``stop()`` also closes idle keep-alive connections, so a test never hangs on exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.server
import ipaddress
import json
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote

SITE_PLACEHOLDER = "{{SITE}}"

CONTENT_TYPES = {
    ".xml": "application/xml; charset=utf-8",
    ".rss": "application/xml; charset=utf-8",
    ".atom": "application/atom+xml",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
    ".gz": "application/gzip",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Files whose {{SITE}} placeholders are substituted.
TEXT_SUFFIXES = frozenset({".xml", ".rss", ".atom", ".html", ".htm", ".txt", ".json"})


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (bind to port 0, read it, close)."""
    _check_loopback(host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def signature(secret: str, body: bytes) -> str:
    """The ``X-Newswatch-Signature-256`` value for ``body``: ``sha256=<hex HMAC-SHA256>``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is ``sha256=<hex HMAC-SHA256(body, key=secret)>``."""
    if not header:
        return False
    given = header.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(signature(secret, body).encode("ascii"), given)


def content_type_for(path: str) -> str:
    """Content-Type for a file name or URL path, by its extension."""
    suffix = Path(path.split("?", 1)[0]).suffix.lower()
    return CONTENT_TYPES.get(suffix, DEFAULT_CONTENT_TYPE)


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return ct.startswith("text/") or "xml" in ct or "json" in ct


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"test servers bind loopback addresses only, not {host!r}")


def _bare_path(target: str) -> str:
    """The path of a request target, without query or fragment."""
    return target.split("?", 1)[0].split("#", 1)[0]


def _http_date(epoch: float) -> str:
    return formatdate(int(epoch), usegmt=True)


def _etag_of(body: bytes) -> str:
    return '"' + hashlib.sha1(body).hexdigest() + '"'


class Headers(Mapping[str, str]):
    """Read-only header mapping with case-insensitive access; repeated fields joined by ', '."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in self._items:
                first, old = self._items[key]
                self._items[key] = (first, f"{old}, {value}")
            else:
                self._items[key] = (name, value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self)!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it. ``path`` includes the query string."""

    method: str
    path: str
    headers: Headers
    body: bytes
    json: Any  # the body parsed as JSON, or None
    time: float  # time.time() on arrival


def _parse_json(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# Server plumbing shared by both servers


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "newswatch-test-server"
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _dispatch(self) -> None:
        try:
            self.server.owner._handle(self)
        except OSError:
            self.close_connection = True
            raise
        except Exception as exc:  # a bug in a test server: answer 500, then let it be printed
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.reply(500, [("Content-Type", "text/plain")], repr(exc).encode())
            raise

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        """Send a complete response; Content-Length is added unless given (none on 1xx/204/304)."""
        headers = list(headers)
        no_body = status < 200 or status in (204, 304)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if not no_body and not any(name.lower() == "content-length" for name, _ in headers):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and not no_body and body:
            self.wfile.write(body)


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], owner: _ServerBase) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # client went away, or we closed the connection on stop
        super().handle_error(request, client_address)


class _ServerBase:
    """Start/stop, context manager and thread-safe request recording."""

    def __init__(self, host: str, port: int) -> None:
        _check_loopback(host)
        self.host = host
        self.port = port  # the real port once started; a restart reuses it
        self._server: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._requests: list[RecordedRequest] = []
        self._cond = threading.Condition()

    # life cycle
    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        self._server = _HTTPServer((self.host, self.port), self)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.host}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # recording
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the recorded requests, oldest first."""
        with self._cond:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the recorded requests."""
        with self._cond:
            self._requests.clear()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least ``n`` requests were recorded; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    got = [(r.method, r.path, r.body[:200]) for r in self._requests]
                    raise AssertionError(
                        f"expected at least {n} requests within {timeout}s, got {len(got)}: {got!r}"
                    )
                self._cond.wait(remaining)
            return list(self._requests)

    def _record(self, handler: _Handler, body: bytes) -> RecordedRequest:
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers=Headers(handler.headers.items()),
            body=body,
            json=_parse_json(body),
            time=time.time(),
        )
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
        return request

    def _sleep(self, seconds: float) -> bool:
        """Sleep; False when the server is stopping meanwhile."""
        return seconds <= 0 or not self._stopping.wait(seconds)

    def _handle(self, handler: _Handler) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------
# FixtureSite


@dataclass(frozen=True)
class _Override:
    status: int
    body: bytes
    headers: Mapping[str, str | None]
    content_type: str | None
    delay: float
    last_modified: int


_OVERRIDE_KEYS = frozenset({"status", "body", "headers", "content_type", "delay"})


def _to_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


class FixtureSite(_ServerBase):
    """A directory served over HTTP on ``host`` (loopback) and a free port.

    ``with FixtureSite(root, host="127.0.0.1") as site:`` ... ``site.url`` is
    ``http://HOST:PORT`` (no trailing slash). ``root`` may be None: overrides only.

    Files: Content-Type by extension (``CONTENT_TYPES``); in text files ``{{SITE}}`` becomes
    ``site.url`` before the ETag is computed; ETag is the quoted sha1 of the body served;
    Last-Modified is the file's mtime. A directory serves its ``index.html`` (``/news`` is
    redirected to ``/news/``). Anything else, ``/robots.txt`` included, is a 404.

    Overrides (``set``, ``set_sequence``, ``remove``) take precedence over files and may be
    changed while the site runs. They are looked up by the exact request target (with its
    query) first, then by its path. Conditional GET applies to 200 answers of overrides too.
    """

    def __init__(
        self, root: str | Path | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host, port)
        self.root = Path(root).resolve() if root is not None else None
        self._lock = threading.Lock()
        self._overrides: dict[str, list[_Override]] = {}
        self._position: dict[str, int] = {}
        self._gone: set[str] = set()

    @property
    def url(self) -> str:
        """``http://HOST:PORT``: what ``{{SITE}}`` is replaced with."""
        return self.base_url

    # ---- programming the site
    def set(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str | None] | None = None,
        content_type: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Serve this response at ``path`` from now on (in place of any file).

        ``content_type`` defaults to the one for the path's extension. ``{{SITE}}`` is
        substituted in text bodies. ``headers`` are added to / replace the defaults; a value of
        None drops a default header (e.g. ``{"ETag": None}``), and a fixed ``ETag`` or
        ``Last-Modified`` given here is the one conditional GET compares with. ``delay``
        seconds pass before the response is sent.
        """
        self.set_sequence(
            path,
            [
                {
                    "status": status,
                    "body": body,
                    "headers": headers or {},
                    "content_type": content_type,
                    "delay": delay,
                }
            ],
        )

    def set_sequence(self, path: str, responses: Sequence[Mapping[str, Any]]) -> None:
        """Serve ``responses`` at ``path`` in order, one per request; the last one repeats.

        Each is a dict with the keywords of ``set``: status, body, headers, content_type,
        delay (all optional). Last-Modified advances whenever the body changes.
        """
        if not responses:
            raise ValueError("set_sequence needs at least one response")
        for spec in responses:
            unknown = set(spec) - _OVERRIDE_KEYS
            if unknown:
                raise TypeError(f"unknown response keys {sorted(unknown)}")
        with self._lock:
            now = int(time.time())
            previous = self._overrides.get(path)
            last_body = previous[-1].body if previous else None
            last_modified = previous[-1].last_modified if previous else now - 1
            sequence = []
            for spec in responses:
                body = _to_bytes(spec.get("body", b""))
                if body != last_body:
                    last_modified = max(now, last_modified + 1)
                    last_body = body
                sequence.append(
                    _Override(
                        status=int(spec.get("status", 200)),
                        body=body,
                        headers=dict(spec.get("headers") or {}),
                        content_type=spec.get("content_type"),
                        delay=float(spec.get("delay", 0.0)),
                        last_modified=last_modified,
                    )
                )
            self._overrides[path] = sequence
            self._position[path] = 0
            self._gone.discard(path)

    def remove(self, path: str) -> None:
        """Drop any override at ``path`` and answer 404 there, even if a file exists."""
        with self._lock:
            self._overrides.pop(path, None)
            self._position.pop(path, None)
            self._gone.add(path)

    def restore(self, path: str) -> None:
        """Undo ``set``/``set_sequence``/``remove`` at ``path``: serve the file again."""
        with self._lock:
            self._overrides.pop(path, None)
            self._position.pop(path, None)
            self._gone.discard(path)

    # ---- what happened
    def hits(self, path: str) -> int:
        """Requests whose target is exactly ``path`` (query string included)."""
        return sum(1 for r in self.requests if r.path == path)

    def hits_prefix(self, path: str) -> int:
        """Requests for ``path`` with any (or no) query string; ``path`` ending in '/'
        counts every request under it."""
        if path.endswith("/"):
            return sum(1 for r in self.requests if _bare_path(r.path).startswith(path))
        return sum(1 for r in self.requests if _bare_path(r.path) == path)

    # ---- serving
    def substitute(self, body: bytes) -> bytes:
        """``body`` with ``{{SITE}}`` replaced by this site's URL."""
        return body.replace(SITE_PLACEHOLDER.encode(), self.url.encode("ascii"))

    def _next_override(self, *keys: str) -> _Override | None:
        with self._lock:
            for key in keys:
                sequence = self._overrides.get(key)
                if sequence is not None:
                    position = self._position.get(key, 0)
                    self._position[key] = position + 1
                    return sequence[min(position, len(sequence) - 1)]
            return None

    def _is_gone(self, *keys: str) -> bool:
        with self._lock:
            return any(key in self._gone for key in keys)

    def _handle(self, handler: _Handler) -> None:
        body_in = handler.read_body()
        self._record(handler, body_in)
        target = handler.path
        path = _bare_path(target)
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]

        override = self._next_override(target, path)
        if override is not None:
            if not self._sleep(override.delay):
                handler.close_connection = True
                return
            content_type = override.content_type or content_type_for(path)
            body = self.substitute(override.body) if _is_text(content_type) else override.body
            headers: dict[str, tuple[str, str]] = {"content-type": ("Content-Type", content_type)}
            if override.status == 200:
                headers["etag"] = ("ETag", _etag_of(body))
                headers["last-modified"] = ("Last-Modified", _http_date(override.last_modified))
            for name, value in override.headers.items():
                if value is None:
                    headers.pop(name.lower(), None)
                else:
                    headers[name.lower()] = (name, value)
            self._send(handler, override.status, list(headers.values()), body)
            return

        if self._is_gone(target, path) or self.root is None:
            self._not_found(handler)
            return
        file = self._file_for(path)
        if file is None:
            self._not_found(handler)
            return
        if file.is_dir():
            query = target[len(_bare_path(target)) :]
            handler.reply(301, [("Location", path + "/" + query)], b"")
            return
        if handler.command not in ("GET", "HEAD"):
            handler.reply(405, [("Allow", "GET, HEAD"), ("Content-Type", "text/plain")], b"")
            return
        body = file.read_bytes()
        if file.suffix.lower() in TEXT_SUFFIXES:
            body = self.substitute(body)
        headers_out = [
            ("Content-Type", content_type_for(file.name)),
            ("ETag", _etag_of(body)),
            ("Last-Modified", _http_date(file.stat().st_mtime)),
        ]
        self._send(handler, 200, headers_out, body)

    def _file_for(self, path: str) -> Path | None:
        """The file (or directory to redirect) for a URL path, or None for a 404."""
        assert self.root is not None
        parts = [p for p in unquote(path).split("/") if p not in ("", ".")]
        if any(p == ".." or "\\" in p or "\x00" in p for p in parts):
            return None
        file = self.root.joinpath(*parts)
        try:
            file.resolve().relative_to(self.root)
        except ValueError:
            return None
        if file.is_dir():
            if not path.endswith("/"):
                return file  # redirect to the slash form
            file = file / "index.html"
        return file if file.is_file() else None

    @staticmethod
    def _not_found(handler: _Handler) -> None:
        handler.reply(404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found\n")

    @staticmethod
    def _send(handler: _Handler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """Reply, answering 304 instead of 200 when the request's validators match."""
        if status == 200 and handler.command in ("GET", "HEAD"):
            values = Headers(headers)
            if _not_modified(handler.headers, values.get("ETag"), values.get("Last-Modified")):
                keep = {"etag", "last-modified", "cache-control", "expires", "vary"}
                handler.reply(304, [(n, v) for n, v in headers if n.lower() in keep])
                return
        handler.reply(status, headers, body)


def _not_modified(request_headers: Any, etag: str | None, last_modified: str | None) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match (weak comparison) takes precedence over
    If-Modified-Since."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        if etag is None:
            return False
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
        modified = parsedate_to_datetime(last_modified)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None or modified.tzinfo is None:
        since, modified = since.replace(tzinfo=None), modified.replace(tzinfo=None)
    return modified <= since


# --------------------------------------------------------------------------------------------
# WebhookReceiver

# A response: a status, or (status,), (status, headers), (status, headers, body) or
# (status, headers, body, delay_seconds).
ResponseSpec = int | tuple[Any, ...]


def _normalise_responses(
    responses: Sequence[ResponseSpec] | None,
) -> list[tuple[int, dict[str, str], bytes, float]]:
    if responses is None:
        return [(200, {}, b"", 0.0)]
    if not responses:
        raise ValueError("need at least one response")
    normalised = []
    for spec in responses:
        parts = (spec,) if isinstance(spec, int) else tuple(spec)
        if not 1 <= len(parts) <= 4:
            raise ValueError(f"bad response {spec!r}: (status, headers, body, delay)")
        status, headers, body, delay = parts + (200, {}, b"", 0.0)[len(parts) :]
        normalised.append((int(status), dict(headers or {}), _to_bytes(body), float(delay)))
    return normalised


class WebhookReceiver(_ServerBase):
    """Records every POST; answers with ``responses`` in order, the last one repeating.

    ``WebhookReceiver(responses=[(500, {}, b""), (429, {"Retry-After": "1"}, b""), 200])``;
    the default always answers 200. ``url`` is ``http://127.0.0.1:PORT/hook``. Other
    methods get 405 and are not recorded.
    """

    def __init__(
        self,
        responses: Sequence[ResponseSpec] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/hook",
    ) -> None:
        super().__init__(host, port)
        self.path = path
        self._lock = threading.Lock()
        self._responses = _normalise_responses(responses)
        self._position = 0

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def set_responses(self, responses: Sequence[ResponseSpec]) -> None:
        """Answer the next POSTs with ``responses`` (from the first), the last one repeating."""
        normalised = _normalise_responses(responses)
        with self._lock:
            self._responses = normalised
            self._position = 0

    def _handle(self, handler: _Handler) -> None:
        body = handler.read_body()
        if handler.command != "POST":
            handler.reply(405, [("Allow", "POST"), ("Content-Type", "text/plain")], b"")
            return
        with self._lock:
            status, headers, body_out, delay = self._responses[
                min(self._position, len(self._responses) - 1)
            ]
            self._position += 1
        self._record(handler, body)
        if not self._sleep(delay):
            handler.close_connection = True
            return
        if not any(name.lower() == "content-type" for name in headers):
            headers = {**headers, "Content-Type": "text/plain; charset=utf-8"}
        handler.reply(status, headers.items(), body_out)
