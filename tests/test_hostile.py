"""The hostile servers (tests/hostile.py) are as hostile as they say, and Scrapy meets them.

Plain clients (urllib, ssl, socket) with short timeouts check each server; one subprocess runs
a real Scrapy crawl (CrawlerProcess) with FakeResolver against all of them and reports what
Scrapy 2.19 does: certificate verification, DNS failure, endless and silent responses, size
limits, a gzip bomb, a redirect loop, 410, and 429/503 with Retry-After.
"""

import gzip
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from ipaddress import ip_address
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hostile import (
    CHARSET_TITLE,
    SITEMAP_HEAD,
    FakeResolver,
    HugeServer,
    Response,
    SlowServer,
    TLSServer,
    add_binary,
    add_gone,
    add_hostile_routes,
    add_redirect_loop,
    add_retry_after,
    add_wrong_charset,
    binary_bytes,
    generated_body,
)
from servers import FixtureSite
from twisted.internet.error import DNSLookupError
from twisted.internet.interfaces import IResolverSimple

from crawler.parse.sitemaps import parse_sitemap

TESTS = Path(__file__).parent
FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>ok</title></channel></rss>'


def fetch(url, timeout=2.0, context=None):
    """(status, headers, body) without raising on 4xx/5xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


@pytest.fixture
def bare_site():
    with FixtureSite(None) as site:
        yield site


# ---- TLSServer


def test_tls_a_verifying_client_fails():
    with TLSServer({"/feed.xml": FEED}) as server:
        assert server.url.startswith("https://127.0.0.1:")
        with pytest.raises(urllib.error.URLError) as caught:
            urllib.request.urlopen(server.url + "/feed.xml", timeout=2)
        assert isinstance(caught.value.reason, ssl.SSLCertVerificationError)
        assert "self-signed certificate" in str(caught.value.reason)
        # the same with a bare ssl socket
        context = ssl.create_default_context()
        with (
            socket.create_connection((server.host, server.port), timeout=2) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            context.wrap_socket(raw, server_hostname="localhost")


def test_tls_serves_routes_to_a_client_that_trusts_it_or_does_not_verify():
    routes = {
        "/feed.xml": FEED,
        "/text": "héllo",
        "/teapot": Response(
            b"no", status=418, headers={"X-Why": "test"}, content_type="text/plain"
        ),
    }
    with TLSServer(routes) as server:
        trusting = ssl.create_default_context(cafile=server.cert_file)
        status, headers, body = fetch(server.url + "/feed.xml", context=trusting)
        assert (status, body) == (200, FEED)
        assert headers["Content-Type"] == "application/xml; charset=utf-8"
        by_name = f"https://localhost:{server.port}/text"
        assert fetch(by_name, context=trusting)[2] == "héllo".encode()
        status, headers, body = fetch(server.url + "/teapot", context=trusting)
        assert (status, headers["X-Why"], body) == (418, "test", b"no")
        assert fetch(server.url + "/missing", context=trusting)[0] == 404
        careless = ssl._create_unverified_context()
        assert fetch(server.url + "/feed.xml?x=1", context=careless)[2] == FEED
        assert [r.path for r in server.requests][-1] == "/feed.xml?x=1"
    assert not Path(server.cert_file).exists()  # cleaned up on stop


def test_tls_certificate_is_fresh_self_signed_localhost():
    with TLSServer() as first, TLSServer() as second:
        assert first.cert_pem != second.cert_pem
        cert = x509.load_pem_x509_certificate(first.cert_pem)
        assert cert.subject == cert.issuer
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
        assert "localhost" in san.get_values_for_type(x509.DNSName)


def test_tls_stop_does_not_wait_for_a_client_that_never_handshakes():
    server = TLSServer().start()
    with socket.create_connection((server.host, server.port), timeout=2):
        time.sleep(0.1)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1


# ---- SlowServer


def test_slow_trickle_defeats_a_read_timeout_but_not_a_deadline():
    with SlowServer(bytes_per_second=20) as server:
        response = urllib.request.urlopen(server.url + "/feed.xml", timeout=0.5)
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        assert "Content-Length" not in response.headers
        received = b""
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:  # every read returns data within 0.5 s
            received += response.read1(64)
        assert received.startswith(b'<?xml version="1.0"')
        assert 5 < len(received) < 60
        response.close()
        # the server counts after each write returns: give its thread a moment to catch up
        deadline = time.monotonic() + 2
        while server.bytes_sent < len(received) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.bytes_sent >= len(received)


def test_slow_with_long_pauses_a_read_with_timeout_raises():
    with SlowServer(bytes_per_second=1, interval=3) as server:
        response = urllib.request.urlopen(server.url + "/feed.xml", timeout=0.5)
        assert response.status == 200
        with pytest.raises(TimeoutError):
            response.read()
        response.close()


def test_silent_server_accepts_and_never_answers():
    with SlowServer(mode="silent") as server:
        started = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)) as caught:
            urllib.request.urlopen(server.url + "/feed.xml", timeout=0.5)
        if isinstance(caught.value, urllib.error.URLError):
            assert isinstance(caught.value.reason, TimeoutError)
        assert time.monotonic() - started < 2
        assert server.connections == 1
        with socket.create_connection((server.host, server.port), timeout=0.3) as raw:
            raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(TimeoutError):
                raw.recv(1)
        stop_started = time.monotonic()
    assert time.monotonic() - stop_started < 1  # stop() closed the held connections


def test_slow_with_a_total_ends():
    with SlowServer(bytes_per_second=2000, total=150) as server:
        status, headers, body = fetch(server.url + "/feed.xml")
        assert (status, headers["Content-Length"], len(body)) == (200, "150", 150)


# ---- HugeServer


def read_all(url, timeout=5.0):
    total = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        while chunk := response.read(1 << 20):
            total += len(chunk)
        return response.headers, total


def test_generated_body_is_exact():
    assert b"".join(generated_body(10)) == SITEMAP_HEAD[:10]
    assert sum(len(c) for c in generated_body(1_000_003)) == 1_000_003
    assert list(generated_body(0)) == []


@pytest.mark.parametrize("content_length", [True, False])
def test_huge_streams_size_bytes(content_length):
    size = 30_000_000
    with HugeServer(size, content_length=content_length) as server:
        headers, total = read_all(server.url + "/huge.xml")
        assert total == size
        assert headers.get("Content-Length") == (str(size) if content_length else None)


def test_huge_a_client_that_stops_reading_stops_the_stream():
    size = 2_000_000_000
    with HugeServer(size, content_length=False) as server:
        with urllib.request.urlopen(server.url + "/huge.xml", timeout=2) as response:
            assert len(response.read(1_000_000)) == 1_000_000
        time.sleep(0.2)
        assert server.bytes_sent < size // 10


def test_huge_gzipped_is_a_gzip_bomb():
    size = 60_000_000
    with HugeServer(size, compress="file") as server:
        status, headers, body = fetch(server.url + "/sitemap.xml.gz")
        assert status == 200
        assert headers["Content-Type"] == "application/gzip"
        assert int(headers["Content-Length"]) == len(body) < size // 100
        head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(body, 200)
        assert head.startswith(SITEMAP_HEAD)
        result = parse_sitemap(body, max_bytes=1_000_000)
        assert result.error_class == "TooLarge"
    with HugeServer(1_000_000, compress="encoding", content_length=False) as server:
        status, headers, body = fetch(server.url + "/sitemap.xml")
        assert status == 200
        assert headers["Content-Encoding"] == "gzip"
        assert "Content-Length" not in headers
        assert len(gzip.decompress(body)) == 1_000_000


# ---- FixtureSite helpers


def test_redirect_loop(bare_site):
    url = add_redirect_loop(bare_site)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(url, timeout=2)
    caught.value.close()
    assert caught.value.code == 302
    assert "infinite loop" in str(caught.value)
    assert bare_site.hits("/loop/a") >= 2 and bare_site.hits("/loop/b") >= 1


def test_binary_served_as_rss(bare_site):
    status, headers, body = fetch(add_binary(bare_site, size=2048, seed=3))
    assert status == 200
    assert headers["Content-Type"] == "application/rss+xml"
    assert body == binary_bytes(2048, 3)
    assert binary_bytes(2048, 3) != binary_bytes(2048, 4)


def test_wrong_charsets(bare_site):
    status, headers, body = fetch(add_wrong_charset(bare_site))
    assert status == 200
    assert headers.get_content_charset() == "utf-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert CHARSET_TITLE in body.decode("iso-8859-1")

    status, headers, body = fetch(add_wrong_charset(bare_site, "/rev.rss", reverse=True))
    assert status == 200
    assert headers.get_content_charset() == "iso-8859-1"
    assert "DÃ©fense" in body.decode("iso-8859-1")  # what believing the header gives
    assert CHARSET_TITLE in body.decode("utf-8")


def test_gone(bare_site):
    assert fetch(add_gone(bare_site))[0] == 410


def test_retry_after_then_success(bare_site):
    url = add_retry_after(bare_site, body=FEED, retry_after=2)
    seen = []
    for _ in range(4):
        status, headers, body = fetch(url)
        seen.append((status, headers.get("Retry-After"), body == FEED))
    assert seen == [(429, "2", False), (503, "2", False), (200, None, True), (200, None, True)]


def test_add_hostile_routes(bare_site):
    urls = add_hostile_routes(bare_site, feed=FEED)
    assert set(urls) == {
        "redirect_loop",
        "binary",
        "latin1_as_utf8",
        "utf8_as_latin1",
        "gone",
        "retry_after",
    }
    assert all(url.startswith(bare_site.url + "/hostile/") for url in urls.values())
    assert fetch(urls["gone"])[0] == 410


def test_servers_bind_loopback_only():
    for make in (lambda: TLSServer(host="10.0.0.1"), lambda: HugeServer(1, host="0.0.0.0")):
        with pytest.raises(ValueError):
            make()
    with SlowServer(host="127.0.0.3", bytes_per_second=1000, total=10) as server:
        assert server.url.startswith("http://127.0.0.3:")
        assert fetch(server.url)[2] == b"<?xml vers"


# ---- FakeResolver, alone


def test_fake_resolver_decisions():
    resolver = FakeResolver(reactor=None, hosts={"Other.Test": "127.0.0.2"})
    assert IResolverSimple.providedBy(resolver)
    assert resolver.resolve("news.test") == "127.0.0.1"
    assert resolver.resolve("NEWS.Test.") == "127.0.0.1"
    assert resolver.resolve("localhost") == "127.0.0.1"
    assert resolver.resolve("other.test") == "127.0.0.2"
    assert resolver.resolve("127.0.0.9") == "127.0.0.9"
    assert resolver.resolve("nowhere.invalid") is None
    assert resolver.resolve("example.com") is None  # never real DNS
    results = []
    resolver.getHostByName("a.test").addCallback(results.append)
    resolver.getHostByName("b.invalid").addErrback(lambda f: results.append(f.type))
    assert results == ["127.0.0.1", DNSLookupError]
    assert resolver.lookups == ["a.test", "b.invalid"]


# ---- Scrapy against all of it, in a subprocess (one reactor per process)

SCRAPY_SCRIPT = r"""
import json, sys
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess

plan = json.loads(sys.argv[1])
results = {}


class Probe(Spider):
    name = "probe"
    probes = []

    async def start(self):
        from twisted.internet import reactor
        from hostile import FakeResolver

        # Never let a name reach real DNS: refuse to run without the fake resolver.
        if not isinstance(reactor.resolver, FakeResolver):
            raise RuntimeError(f"TWISTED_DNS_RESOLVER not installed: {reactor.resolver!r}")
        for key, url, meta in self.probes:
            yield Request(url, callback=self.ok, errback=self.failed, meta=meta,
                          cb_kwargs={"key": key}, dont_filter=True)

    def ok(self, response, key):
        results[key] = {"status": response.status, "size": len(response.body)}

    def failed(self, failure):
        key = failure.request.cb_kwargs["key"]
        results[key] = {"error": failure.type.__name__, "message": str(failure.value)[:300]}


process = CrawlerProcess(plan["settings"])
for name, spec in plan["crawlers"].items():
    spider = type(name, (Probe,), {"name": name, "probes": spec["probes"],
                                   "custom_settings": spec["settings"]})
    process.crawl(spider)
process.start()
from twisted.internet import reactor
print(json.dumps({"results": results, "lookups": reactor.resolver.lookups}))
"""


def run_scrapy(plan, env_extra=None, timeout=40):
    env = {**os.environ, **(env_extra or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-c", SCRAPY_SCRIPT, json.dumps(plan)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=TESTS,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


BASE_SETTINGS = {
    "TWISTED_DNS_RESOLVER": "hostile.FakeResolver",
    "FAKE_DNS_HOSTS": {"wire.test": "127.0.0.1"},
    "LOG_LEVEL": "CRITICAL",
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    "ROBOTSTXT_OBEY": False,
    "DOWNLOAD_TIMEOUT": 10,
    "REDIRECT_MAX_TIMES": 5,
}
ONCE = {"dont_retry": True}


def test_scrapy_meets_the_hostile_servers(bare_site):
    urls = add_hostile_routes(bare_site, feed=FEED)
    busy = add_retry_after(bare_site, "/busy-30.xml", body=FEED, retry_after=30)
    port = bare_site.port
    with (
        TLSServer({"/feed.xml": FEED}) as tls,
        SlowServer() as slow,
        SlowServer(mode="silent") as silent,
        HugeServer(500_000_000, content_length=False) as huge,
        HugeServer(500_000_000) as huge_cl,
        HugeServer(60_000_000, compress="encoding") as bomb,
    ):
        tls_url = tls.url + "/feed.xml"
        plan = {
            "settings": BASE_SETTINGS,
            "crawlers": {
                "default": {
                    "settings": {},
                    "probes": [
                        ["tls", tls_url, ONCE],
                        ["tls_by_name", f"https://localhost:{tls.port}/feed.xml", ONCE],
                        ["resolved", f"http://news.test:{port}/hostile/binary.rss", ONCE],
                        ["mapped", f"http://wire.test:{port}/hostile/gone.xml", ONCE],
                        ["unresolvable", f"http://nowhere.invalid:{port}/feed.xml", ONCE],
                        ["slow", slow.url, {**ONCE, "download_timeout": 1}],
                        ["silent", silent.url, {**ONCE, "download_timeout": 1}],
                        ["huge", huge.url, {**ONCE, "download_maxsize": 1_000_000}],
                        ["huge_cl", huge_cl.url, {**ONCE, "download_maxsize": 1_000_000}],
                        ["bomb", bomb.url, {**ONCE, "download_maxsize": 1_000_000}],
                        ["loop", urls["redirect_loop"], ONCE],
                        ["retry", busy, {}],
                    ],
                },
                "verify": {
                    "settings": {"DOWNLOAD_VERIFY_CERTIFICATES": True},
                    "probes": [["tls_verify", tls_url, ONCE]],
                },
                "browserlike": {
                    "settings": {
                        "DOWNLOADER_CLIENTCONTEXTFACTORY": (
                            "scrapy.core.downloader.contextfactory.BrowserLikeContextFactory"
                        )
                    },
                    "probes": [["tls_browserlike", tls_url, ONCE]],
                },
            },
        }
        report = run_scrapy(plan)
        results = report["results"]

        # Errors are Scrapy 2.19's handler-independent scrapy.exceptions classes.
        # TLS: Scrapy does not verify by default; DOWNLOAD_VERIFY_CERTIFICATES=True (new in
        # 2.19) and the deprecated BrowserLikeContextFactory both reject the certificate.
        assert results["tls"] == {"status": 200, "size": len(FEED)}
        assert results["tls_by_name"]["status"] == 200
        for key in ("tls_verify", "tls_browserlike"):
            assert results[key]["error"] == "DownloadFailedError", results[key]
            assert "certificate verify failed" in results[key]["message"]

        # DNS: *.test resolved by FakeResolver, *.invalid fails, no other name was asked for
        # (IP literals reach the resolver too and are answered as themselves).
        assert results["resolved"] == {"status": 200, "size": 4096}
        assert results["mapped"]["error"] == "HttpError"  # the 410, reached via wire.test
        assert results["unresolvable"]["error"] == "CannotResolveHostError"
        names = {name for name in report["lookups"] if not name[0].isdigit()}
        assert names == {"localhost", "news.test", "wire.test", "nowhere.invalid"}

        # An endless trickle and a silent server end at download_timeout (a total deadline).
        assert results["slow"]["error"] == "DownloadTimeoutError"
        assert results["silent"]["error"] == "DownloadTimeoutError"
        # Size limits: cut mid-stream, refused by Content-Length, or while decompressing.
        assert results["huge"]["error"] == "DownloadCancelledError"
        assert results["huge_cl"]["error"] == "DownloadCancelledError"
        assert "larger than download max size" in results["huge_cl"]["message"]
        assert huge.bytes_sent < 100_000_000 and huge_cl.bytes_sent < 100_000_000
        assert results["bomb"]["error"] == "IgnoreRequest"
        assert "DOWNLOAD_MAXSIZE" in results["bomb"]["message"]
        # A redirect loop gives up after REDIRECT_MAX_TIMES.
        assert results["loop"] == {"error": "IgnoreRequest", "message": "max redirections reached"}

    # 429 and 503 are retried and the third answer succeeds, but Scrapy's RetryMiddleware
    # ignores Retry-After (30 s here): the retries come at once.
    assert results["retry"] == {"status": 200, "size": len(FEED)}
    times = [r.time for r in bare_site.requests if r.path == "/busy-30.xml"]
    assert len(times) == 3
    assert times[-1] - times[0] < 5


def test_scrapy_verifies_a_certificate_it_trusts():
    """The verify failure above is about trust, not a broken server: with the certificate in
    OpenSSL's trust store (SSL_CERT_FILE) the same verifying crawl succeeds."""
    with TLSServer({"/feed.xml": FEED}) as tls:
        plan = {
            "settings": BASE_SETTINGS,
            "crawlers": {
                "verify": {
                    "settings": {"DOWNLOAD_VERIFY_CERTIFICATES": True},
                    "probes": [
                        ["by_ip", tls.url + "/feed.xml", ONCE],
                        ["by_name", f"https://localhost:{tls.port}/feed.xml", ONCE],
                    ],
                }
            },
        }
        report = run_scrapy(plan, env_extra={"SSL_CERT_FILE": tls.cert_file})
    assert report["results"]["by_name"] == {"status": 200, "size": len(FEED)}
    assert report["results"]["by_ip"] == {"status": 200, "size": len(FEED)}


def test_http_client_sees_no_content_length_on_the_endless_stream():
    """http.client cannot know where an endless body ends: only the caller's limit does."""
    with SlowServer(bytes_per_second=200) as server:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=0.5)
        connection.request("GET", "/feed.xml")
        response = connection.getresponse()
        assert response.getheader("Content-Length") is None
        assert response.length is None
        connection.close()
