"""Hostile local servers for crawler tests: the web at its worst, on loopback only.

The servers use the standard library and ``cryptography``; ``FakeResolver`` uses Twisted, which
comes with Scrapy. Each server is a context manager with ``.url``; it binds ``127.0.0.1`` (or a
given ``127.x.y.z``) and a free port, answers one request per connection (``Connection:
close``), and ``stop()`` closes every open connection and joins its threads, so a test never
hangs on exit, even with a client still reading.

``TLSServer(routes)``
    HTTPS with a freshly generated self-signed certificate (CN=localhost, SAN localhost and
    the bound IP). A client that verifies certificates fails; ``cert_file`` (PEM) lets a test
    trust it on purpose.
``SlowServer(bytes_per_second=16, total=None, mode="trickle", interval=0.1)``
    ``trickle``: 200 and headers at once, then the body a few bytes at a time, forever when
    ``total`` is None (an "endlessly slow" response: no per-read timeout fires, only a
    deadline on the whole download ends it); ``silent``: accepts the connection and
    never answers at all.
``HugeServer(size, content_length=True, compress=None)``
    A generated body of ``size`` bytes (streamed, never held in memory), with or without
    Content-Length; ``compress="file"`` serves it gzipped as ``application/gzip`` (a
    ``.xml.gz``), ``compress="encoding"`` gzipped with ``Content-Encoding: gzip``: a gzip
    bomb. ``bytes_sent`` says how much went out.
``add_*`` helpers for a running ``servers.FixtureSite`` (its public ``set`` /
``set_sequence`` only): a redirect loop, binary bytes served as RSS, wrong charsets both ways,
410, 429 and 503 with Retry-After followed by success. ``add_hostile_routes`` installs them all.
``FakeResolver``
    A Scrapy ``TWISTED_DNS_RESOLVER`` for tests: never a real DNS lookup; ``*.invalid`` (and
    any other unknown name) fails with DNSLookupError, ``*.test`` and ``localhost`` resolve to
    127.0.0.1 (the ``FAKE_DNS_HOSTS`` setting maps names to other loopback addresses).
    Scrapy installs it only in ``CrawlerProcess``/``AsyncCrawlerProcess.start()``; with
    ``AsyncCrawlerRunner`` call ``FakeResolver(reactor).install_on_reactor()`` yourself.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import random
import socket
import ssl
import tempfile
import threading
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from servers import FixtureSite, content_type_for
from twisted.internet import defer
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple
from zope.interface import implementer

MAX_REQUEST_HEAD = 65536
SITEMAP_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
)
SITEMAP_FILL = b"<url><loc>http://127.0.0.1/huge/page.html</loc></url>\n"
FEED_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
    b"<title>Slow Daily</title><link>http://127.0.0.1/</link>\n"
)


def check_loopback(host: str) -> None:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"hostile servers bind loopback addresses only, not {host!r}")


@dataclass(frozen=True)
class Response:
    """A canned response for ``TLSServer`` routes."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None  # default: by the path's extension


@dataclass(frozen=True)
class Request:
    """A request as a hostile server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased


# --------------------------------------------------------------------------------------------
# plumbing: a tiny threaded socket server


class _RawServer:
    scheme = "http"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        check_loopback(host)
        self.host = host
        self.port = port
        self.requests: list[Request] = []
        self.connections = 0
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        if self._listener is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        self._stopping.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self._listener = listener
        self.port = int(listener.getsockname()[1])
        self._accepting = threading.Thread(
            target=self._accept_loop, name=f"{type(self).__name__}-{self.port}", daemon=True
        )
        self._accepting.start()
        return self

    def stop(self) -> None:
        listener = self._listener
        if listener is None:
            return
        self._stopping.set()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
        listener.close()
        with self._lock:
            connections, workers = list(self._open), list(self._workers)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for worker in workers:
            worker.join(timeout=5)
        self._listener = self._accepting = None
        self._workers = []
        self._after_stop()

    def _after_stop(self) -> None:
        pass

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            worker = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.connections += 1
                self._open.add(conn)
                self._workers.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        raw = conn
        try:
            conn = self._wrap(conn)
            with self._lock:
                self._open.add(conn)
            self._handle_connection(conn)
        except (OSError, ssl.SSLError, ValueError):
            pass  # the client went away, failed the handshake, or we are stopping
        finally:
            with self._lock:
                self._open.discard(conn)
                self._open.discard(raw)
            with contextlib.suppress(OSError):
                conn.close()
            with contextlib.suppress(OSError):
                raw.close()

    def _wrap(self, conn: socket.socket) -> socket.socket:
        return conn

    def _handle_connection(self, conn: socket.socket) -> None:
        request = self._read_request(conn)
        if request is not None:
            with self._lock:
                self.requests.append(request)
            self.handle(conn, request)

    @staticmethod
    def _read_request(conn: socket.socket) -> Request | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            data += chunk
            if len(data) > MAX_REQUEST_HEAD:
                return None
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        line, *header_lines = head.split("\r\n")
        method, path, _ = [*line.split(" ", 2), "", ""][:3]
        headers = {}
        for header in header_lines:
            name, _, value = header.partition(":")
            headers[name.strip().lower()] = value.strip()
        return Request(method, path, headers)

    @staticmethod
    def send_head(conn: socket.socket, status: int, headers: Mapping[str, str]) -> None:
        reason = {200: "OK", 404: "Not Found"}.get(status, "Status")
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["Connection: close", "", ""]
        conn.sendall("\r\n".join(lines).encode("latin-1"))

    def handle(self, conn: socket.socket, request: Request) -> None:
        raise NotImplementedError

    def sleep(self, seconds: float) -> bool:
        """Wait; False when the server is stopping meanwhile."""
        return not self._stopping.wait(seconds)


# --------------------------------------------------------------------------------------------
# TLS with a self-signed certificate


def self_signed_certificate(
    common_name: str = "localhost", ip: str = "127.0.0.1", days: int = 2
) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM): a fresh self-signed certificate for
    ``common_name`` (also a DNS SAN) and ``ip`` (an IP SAN)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(ip))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


class TLSServer(_RawServer):
    """HTTPS serving ``routes`` (path -> bytes, str or ``Response``; others 404) with a fresh
    self-signed certificate. ``cert_pem`` / ``cert_file`` are the certificate (to trust it on
    purpose: ``ssl.create_default_context(cafile=server.cert_file)``)."""

    scheme = "https"

    def __init__(
        self,
        routes: Mapping[str, bytes | str | Response] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        common_name: str = "localhost",
    ) -> None:
        super().__init__(host, port)
        self.routes = dict(routes or {})
        self.cert_pem, self._key_pem = self_signed_certificate(common_name, host)
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._context: ssl.SSLContext | None = None
        self.cert_file = ""

    def start(self) -> Self:
        self._dir = tempfile.TemporaryDirectory(prefix="newswatch-tls-")
        cert_file = Path(self._dir.name) / "cert.pem"
        key_file = Path(self._dir.name) / "key.pem"
        cert_file.write_bytes(self.cert_pem)
        key_file.write_bytes(self._key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._context = context
        self.cert_file = str(cert_file)
        return super().start()

    def _after_stop(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def _wrap(self, conn: socket.socket) -> socket.socket:
        assert self._context is not None
        # The handshake happens in _handle_connection, once stop() can see (and close) the
        # wrapped socket; 5 s for a client that never finishes it.
        conn.settimeout(5)
        return self._context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)

    def _handle_connection(self, conn: socket.socket) -> None:
        assert isinstance(conn, ssl.SSLSocket)
        conn.do_handshake()
        super()._handle_connection(conn)

    def handle(self, conn: socket.socket, request: Request) -> None:
        path = request.path.split("?", 1)[0]
        found = self.routes.get(request.path, self.routes.get(path))
        if found is None:
            response = Response(b"Not Found\n", 404, content_type="text/plain; charset=utf-8")
        elif isinstance(found, Response):
            response = found
        else:
            body = found.encode("utf-8") if isinstance(found, str) else bytes(found)
            response = Response(body)
        headers = {
            "Content-Type": response.content_type or content_type_for(path),
            "Content-Length": str(len(response.body)),
            **response.headers,
        }
        self.send_head(conn, response.status, headers)
        if request.method != "HEAD":
            conn.sendall(response.body)


# --------------------------------------------------------------------------------------------
# slow and silent


class SlowServer(_RawServer):
    """``mode="trickle"``: answers 200 with headers at once, then ``bytes_per_second`` bytes of
    body a second, one write every ``interval`` seconds, until ``total`` bytes (None: forever)
    or the client leaves. Content-Length is ``total`` when given, else absent. The body starts
    like an RSS feed (``FEED_HEAD``) and goes on with spaces.

    With the default ``interval`` (0.1 s) every socket read gets data in time: a per-read
    timeout never fires and only a deadline on the whole download ends it (Scrapy's
    DOWNLOAD_TIMEOUT is one). With ``interval`` above the client's read timeout, the read
    times out.

    ``mode="silent"``: accepts the connection, reads nothing, never answers.
    """

    def __init__(
        self,
        bytes_per_second: int = 16,
        total: int | None = None,
        mode: str = "trickle",
        interval: float = 0.1,
        content_type: str = "application/rss+xml; charset=utf-8",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in ("trickle", "silent"):
            raise ValueError(f"mode is 'trickle' or 'silent', not {mode!r}")
        super().__init__(host, port)
        self.mode = mode
        self.bytes_per_second = max(1, bytes_per_second)
        self.interval = interval
        self.total = total
        self.content_type = content_type
        self.bytes_sent = 0

    def _handle_connection(self, conn: socket.socket) -> None:
        if self.mode == "silent":
            conn.settimeout(None)
            self._stopping.wait()  # hold the connection open until stop()
            return
        super()._handle_connection(conn)

    def handle(self, conn: socket.socket, request: Request) -> None:
        headers = {"Content-Type": self.content_type}
        if self.total is not None:
            headers["Content-Length"] = str(self.total)
        self.send_head(conn, 200, headers)
        if request.method == "HEAD":
            return
        step = max(1, round(self.bytes_per_second * self.interval))
        sent = 0
        while self.total is None or sent < self.total:
            if not self.sleep(self.interval):
                return
            piece = FEED_HEAD[sent : sent + step]
            piece += b" " * (step - len(piece))
            if self.total is not None:
                piece = piece[: self.total - sent]
            conn.sendall(piece)
            sent += len(piece)
            with self._lock:
                self.bytes_sent += len(piece)


# --------------------------------------------------------------------------------------------
# huge


def generated_body(
    size: int, head: bytes = SITEMAP_HEAD, fill: bytes = SITEMAP_FILL
) -> Iterator[bytes]:
    """``size`` bytes: ``head`` then ``fill`` repeated, cut at ``size``; in chunks of ~64 KiB."""
    block = fill * max(1, 65536 // len(fill))
    first = head[:size]
    if first:
        yield first
    left = size - len(first)
    while left > 0:
        chunk = block[:left]
        yield chunk
        left -= len(chunk)


class HugeServer(_RawServer):
    """Streams a generated body of ``size`` bytes to every request (see ``generated_body``).

    ``content_length``: send Content-Length (else the end is the connection's close).
    ``compress``: None (plain), ``"file"`` (the gzipped bytes as ``application/gzip``, like a
    ``.xml.gz`` sitemap) or ``"encoding"`` (``Content-Encoding: gzip``). Compressed, the
    repetitive body shrinks about 340-fold (60 MB -> 175 KB): a gzip bomb. ``bytes_sent``
    counts bytes written to sockets (a client that stops reading early leaves it low).
    """

    def __init__(
        self,
        size: int,
        content_length: bool = True,
        compress: str | None = None,
        content_type: str = "application/xml; charset=utf-8",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if compress not in (None, "file", "encoding"):
            raise ValueError(f"compress is None, 'file' or 'encoding', not {compress!r}")
        super().__init__(host, port)
        self.size = size
        self.content_length = content_length
        self.compress = compress
        self.content_type = "application/gzip" if compress == "file" else content_type
        self.bytes_sent = 0
        self._compressed: bytes | None = None

    def compressed(self) -> bytes:
        """The gzipped body (small for this repetitive content; built once)."""
        if self._compressed is None:
            packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            parts = [packer.compress(chunk) for chunk in generated_body(self.size)]
            self._compressed = b"".join(parts) + packer.flush()
        return self._compressed

    def _chunks(self) -> Iterator[bytes]:
        if self.compress is None:
            yield from generated_body(self.size)
        else:
            data = self.compressed()
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

    def handle(self, conn: socket.socket, request: Request) -> None:
        headers = {"Content-Type": self.content_type}
        if self.compress == "encoding":
            headers["Content-Encoding"] = "gzip"
        if self.content_length:
            length = self.size if self.compress is None else len(self.compressed())
            headers["Content-Length"] = str(length)
        self.send_head(conn, 200, headers)
        if request.method == "HEAD":
            return
        for chunk in self._chunks():
            if self._stopping.is_set():
                return
            conn.sendall(chunk)
            with self._lock:
                self.bytes_sent += len(chunk)


# --------------------------------------------------------------------------------------------
# FixtureSite helpers (public FixtureSite API only)

CHARSET_FEED = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Le Quotidien de la Défense</title><link>{{SITE}}/</link>
<description>Actualités</description>
<item><title>Défense aérienne : l'OTAN renforce le flanc est à Kraków</title>
<link>{{SITE}}/news/2025/06/otan-defense.html</link><guid isPermaLink="false">urn:qd:1</guid>
<pubDate>Mon, 09 Jun 2025 10:00:00 +0000</pubDate></item>
</channel></rss>
"""
CHARSET_TITLE = "Défense aérienne : l'OTAN renforce le flanc est à Kraków"


def binary_bytes(size: int = 4096, seed: int = 0) -> bytes:
    """Reproducible random bytes (never starting like gzip or XML)."""
    data = bytearray(random.Random(seed).randbytes(size))
    if data:
        data[0] = 0x89  # as a PNG starts: not '<', not 0x1f
    return bytes(data)


def add_redirect_loop(site: FixtureSite, a: str = "/loop/a", b: str = "/loop/b") -> str:
    """``a`` -> 302 -> ``b`` -> 302 -> ``a`` ... Returns the URL of ``a``."""
    site.set(a, status=302, headers={"Location": b}, content_type="text/plain")
    site.set(b, status=302, headers={"Location": a}, content_type="text/plain")
    return site.url + a


def add_binary(
    site: FixtureSite,
    path: str = "/hostile/binary.rss",
    size: int = 4096,
    seed: int = 0,
    content_type: str = "application/rss+xml",
) -> str:
    """``binary_bytes(size, seed)`` served as a feed."""
    site.set(path, body=binary_bytes(size, seed), content_type=content_type)
    return site.url + path


def add_wrong_charset(
    site: FixtureSite, path: str = "/hostile/latin1-as-utf8.rss", reverse: bool = False
) -> str:
    """``CHARSET_FEED`` (no encoding in its XML declaration) as ISO-8859-1 bytes under a header
    claiming UTF-8; ``reverse``: UTF-8 bytes under a header claiming ISO-8859-1. The true
    item title is ``CHARSET_TITLE``."""
    if reverse:
        body, charset = CHARSET_FEED.encode("utf-8"), "iso-8859-1"
    else:
        body, charset = CHARSET_FEED.encode("iso-8859-1"), "utf-8"
    site.set(path, body=body, content_type=f"application/rss+xml; charset={charset}")
    return site.url + path


def add_gone(site: FixtureSite, path: str = "/hostile/gone.xml") -> str:
    """410 Gone."""
    site.set(path, body=b"Gone\n", status=410, content_type="text/plain; charset=utf-8")
    return site.url + path


def add_retry_after(
    site: FixtureSite,
    path: str = "/hostile/busy.xml",
    body: bytes | str = b"",
    statuses: tuple[int, ...] = (429, 503),
    retry_after: int = 1,
    content_type: str | None = None,
) -> str:
    """Each of ``statuses`` once, with ``Retry-After: <retry_after>`` (seconds), then ``body``
    with 200 for every later request (``site.set_sequence``). Compare ``site.requests``
    times to check that a client waited."""
    responses: list[dict[str, Any]] = [
        {
            "status": status,
            "body": f"{status}: try again in {retry_after} s\n",
            "headers": {"Retry-After": str(retry_after)},
            "content_type": "text/plain; charset=utf-8",
        }
        for status in statuses
    ]
    responses.append({"status": 200, "body": body, "content_type": content_type})
    site.set_sequence(path, responses)
    return site.url + path


def add_hostile_routes(site: FixtureSite, feed: bytes | str = b"") -> dict[str, str]:
    """All the helpers above on one site, under ``/hostile/``; name -> URL."""
    return {
        "redirect_loop": add_redirect_loop(site, "/hostile/loop/a", "/hostile/loop/b"),
        "binary": add_binary(site),
        "latin1_as_utf8": add_wrong_charset(site),
        "utf8_as_latin1": add_wrong_charset(site, "/hostile/utf8-as-latin1.rss", reverse=True),
        "gone": add_gone(site),
        "retry_after": add_retry_after(site, body=feed),
    }


# --------------------------------------------------------------------------------------------
# DNS for Scrapy crawls, without DNS


@implementer(IResolverSimple)
class FakeResolver:
    """Scrapy ``TWISTED_DNS_RESOLVER = "hostile.FakeResolver"`` (tests/ on sys.path).

    Never asks real DNS. ``FAKE_DNS_HOSTS`` (a dict setting) first; then IPv4 literals as
    themselves; ``localhost`` and ``*.test`` -> 127.0.0.1; everything else, every
    ``*.invalid`` name in particular, fails with ``DNSLookupError``. ``lookups`` records the
    names asked for.
    """

    def __init__(self, reactor: Any, hosts: Mapping[str, str] | None = None) -> None:
        self.reactor = reactor
        self.hosts = {name.lower().rstrip("."): address for name, address in (hosts or {}).items()}
        self.lookups: list[str] = []

    @classmethod
    def from_crawler(cls, crawler: Any, reactor: Any) -> FakeResolver:
        return cls(reactor, crawler.settings.getdict("FAKE_DNS_HOSTS"))

    def install_on_reactor(self) -> None:
        self.reactor.installResolver(self)

    def resolve(self, name: str) -> str | None:
        """The address for ``name``, or None: the pure decision."""
        host = name.lower().rstrip(".")
        if host in self.hosts:
            return self.hosts[host]
        with contextlib.suppress(ValueError):
            return str(ipaddress.IPv4Address(host))
        if host.endswith(".invalid") or host == "invalid":
            return None
        if host == "localhost" or host.endswith(".test"):
            return "127.0.0.1"
        return None

    def getHostByName(self, name: str, timeout: Any = ()) -> defer.Deferred[str]:
        self.lookups.append(name)
        address = self.resolve(name)
        if address is None:
            return defer.fail(DNSLookupError(f"{name}: no such host (FakeResolver, no real DNS)"))
        return defer.succeed(address)
