"""The test servers behave like real ones, and the fixture site says what its README says."""

import hashlib
import http.client
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
from email.utils import formatdate

import feedparser
import pytest
from servers import FixtureSite, WebhookReceiver, free_port, signature, verify_signature

NATO_PATH = "/news/2025/06/nato-air-defence.html"
FORBIDDEN = re.compile(r"nato|otan|defen[cs]e|defen|air|missile|patriot|iris-t", re.IGNORECASE)


def fetch(url, headers=None, method="GET", data=None):
    """(status, headers, body) without raising on 4xx/5xx/304."""
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def parse_feed(site, path):
    status, _, body = fetch(site.url + path)
    assert status == 200
    return feedparser.parse(io.BytesIO(body))


# ---- FixtureSite


def test_serves_files_with_content_type_and_site_substitution(site):
    status, headers, body = fetch(site.url + "/feeds/defence.xml")
    assert status == 200
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body)
    assert b"{{SITE}}" not in body
    assert f"<link>{site.url}{NATO_PATH}</link>".encode() in body
    assert headers["ETag"] == '"' + hashlib.sha1(body).hexdigest() + '"'

    status, headers, body = fetch(site.url + NATO_PATH)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert f'<link rel="canonical" href="{site.url}{NATO_PATH}">'.encode() in body


def test_if_none_match_gives_304(site):
    url = site.url + "/feeds/defence.xml"
    _, headers, _ = fetch(url)
    etag = headers["ETag"]
    status, headers304, body = fetch(url, {"If-None-Match": etag})
    assert (status, body, headers304["ETag"]) == (304, b"", etag)
    assert fetch(url, {"If-None-Match": f'"other", W/{etag}'})[0] == 304
    assert fetch(url, {"If-None-Match": '"other"'})[0] == 200


def test_if_modified_since_gives_304_and_if_none_match_takes_precedence(site):
    url = site.url + "/feeds/defence.xml"
    _, headers, _ = fetch(url)
    last_modified = headers["Last-Modified"]
    assert fetch(url, {"If-Modified-Since": last_modified})[0] == 304
    assert fetch(url, {"If-Modified-Since": formatdate(time.time() + 60, usegmt=True)})[0] == 304
    assert fetch(url, {"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})[0] == 200
    # A non-matching If-None-Match wins over a matching If-Modified-Since.
    stale = {"If-None-Match": '"stale"', "If-Modified-Since": last_modified}
    assert fetch(url, stale)[0] == 200


def test_overrides_sequences_and_remove(site):
    url = site.url + "/feeds/defence.xml"
    site.set("/feeds/defence.xml", "<rss>{{SITE}}</rss>", headers={"X-Test": "1"})
    status, headers, body = fetch(url)
    assert (status, body, headers["X-Test"]) == (200, f"<rss>{site.url}</rss>".encode(), "1")
    assert headers["Content-Type"] == "application/xml; charset=utf-8"
    assert fetch(url, {"If-None-Match": headers["ETag"]})[0] == 304

    site.set_sequence(
        "/flaky",
        [
            {"status": 503, "headers": {"Retry-After": "1"}},
            {"body": b"one", "content_type": "text/plain"},
            {"body": b"two", "content_type": "text/plain"},
        ],
    )
    got = [fetch(site.url + "/flaky")[::2] for _ in range(4)]
    assert got == [(503, b""), (200, b"one"), (200, b"two"), (200, b"two")]

    site.remove("/feeds/defence.xml")
    assert fetch(url)[0] == 404
    site.restore("/feeds/defence.xml")
    assert b"Defence Daily" in fetch(url)[2]


def test_changed_override_gets_a_newer_last_modified(site):
    site.set("/feed", b"a")
    first = fetch(site.url + "/feed")[1]["Last-Modified"]
    site.set("/feed", b"b")
    assert fetch(site.url + "/feed", {"If-Modified-Since": first})[0] == 200


def test_records_requests_and_counts_hits(site):
    fetch(site.url + "/feeds/defence.xml?x=1", {"User-Agent": "newswatch-test"})
    fetch(site.url + "/feeds/defence.xml")
    assert fetch(site.url + "/nowhere")[0] == 404
    first = site.requests[0]
    assert (first.method, first.path) == ("GET", "/feeds/defence.xml?x=1")
    assert first.headers["user-agent"] == first.headers["USER-AGENT"] == "newswatch-test"
    assert site.hits("/feeds/defence.xml") == 1
    assert site.hits_prefix("/feeds/defence.xml") == 2
    assert site.hits_prefix("/feeds/") == 2
    site.clear()
    assert site.requests == []


def test_robots_directories_and_methods(site, site_factory, tmp_path):
    assert b"Disallow: /private/" in fetch(site.url + "/robots.txt")[2]
    empty = site_factory(tmp_path)
    assert fetch(empty.url + "/robots.txt")[0] == 404
    status, _, body = fetch(site.url + "/news")  # redirected to /news/
    assert status == 200
    assert b'href="/news/2025/06/radar.html"' in body
    assert fetch(site.url + "/../conftest.py")[0] == 404
    assert fetch(site.url + "/feeds/defence.xml", method="POST", data=b"x")[0] == 405
    status, headers, body = fetch(site.url + "/feeds/defence.xml", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 0


def test_keep_alive_and_other_loopback_hosts(site_factory):
    other = site_factory(host="127.0.0.2")
    assert other.url.startswith("http://127.0.0.2:")
    connection = http.client.HTTPConnection(other.host, other.port, timeout=10)
    try:
        for _ in range(3):  # three requests over one connection
            connection.request("GET", "/feeds/defence.xml")
            response = connection.getresponse()
            assert response.status == 200
            assert other.url.encode() in response.read()
        assert len({r.headers.get("Host") for r in other.requests}) == 1
    finally:
        connection.close()


def fetch_dropped(url):
    with pytest.raises(http.client.RemoteDisconnected):
        fetch(url)


def test_stop_does_not_hang_on_idle_or_slow_connections(tmp_path):
    with FixtureSite(tmp_path) as site:
        site.set("/slow", b"late", delay=30)
        idle = http.client.HTTPConnection(site.host, site.port, timeout=10)
        idle.request("GET", "/nowhere")
        idle.getresponse().read()  # the connection stays open (keep-alive)
        slow = threading.Thread(target=fetch_dropped, args=(site.url + "/slow",), daemon=True)
        slow.start()
        site.wait_for(2)
        started = time.monotonic()
    assert time.monotonic() - started < 3
    idle.close()
    slow.join(5)
    assert not slow.is_alive()


def test_free_port_and_loopback_only():
    port = free_port("127.0.0.3")
    with FixtureSite(None, host="127.0.0.3", port=port) as site:
        assert site.url == f"http://127.0.0.3:{port}"
    with pytest.raises(ValueError):
        FixtureSite(None, host="0.0.0.0")


# ---- WebhookReceiver


def post_json(url, payload, headers=None):
    body = json.dumps(payload).encode()
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return fetch(url, all_headers, method="POST", data=body)


def test_webhook_records_posts_and_answers_in_sequence():
    responses = [(500, {}, b""), (429, {"Retry-After": "2"}, b"slow down"), (200, {}, b"ok")]
    with WebhookReceiver(responses=responses) as hook:
        assert hook.url == f"http://127.0.0.1:{hook.port}/hook"
        got = [post_json(hook.url, {"n": n}, {"X-Newswatch-Event": "alert"}) for n in range(4)]
        assert [status for status, _, _ in got] == [500, 429, 200, 200]
        assert got[1][1]["Retry-After"] == "2"
        assert got[1][2] == b"slow down"
        requests = hook.wait_for(4, timeout=1)
        assert [r.json for r in requests] == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]
        assert requests[0].headers["x-newswatch-event"] == "alert"
        assert requests[0].path == "/hook"
        assert requests[0].body == b'{"n": 0}'

        hook.set_responses([204])
        assert post_json(hook.url, {})[0] == 204
        assert fetch(hook.url)[0] == 405  # GET: not recorded
        assert len(hook.requests) == 5


def test_webhook_default_and_wait_for_timeout(webhook):
    assert post_json(webhook.url, {"event": "alert"})[0] == 200
    assert webhook.wait_for(1)[0].json == {"event": "alert"}
    with pytest.raises(AssertionError, match="expected at least 2"):
        webhook.wait_for(2, timeout=0.2)


def test_verify_signature():
    body = b'{"event": "alert"}'
    header = signature("s3cret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature("s3cret", body, header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("s3cret", body + b" ", header)
    assert not verify_signature("s3cret", body, header.removeprefix("sha256="))
    assert not verify_signature("s3cret", body, None)


# ---- the fixture site's files carry their expectations (see fixtures/site/README.md)


def unrelated_text(entry):
    return " ".join(entry.get(key, "") for key in ("title", "summary", "link"))


def test_defence_feed(site):
    feed = parse_feed(site, "/feeds/defence.xml")
    assert (feed.bozo, feed.version, feed.feed.title, len(feed.entries)) == (
        False,
        "rss20",
        "Defence Daily",
        4,
    )
    nato = [e for e in feed.entries if FORBIDDEN.search(unrelated_text(e))]
    assert len(nato) == 1
    assert nato[0].title == "NATO allies agree to boost air defence on eastern flank"
    assert nato[0].link == site.url + NATO_PATH
    assert nato[0].id == "urn:defence-daily:1001"
    assert nato[0].guidislink is False
    assert nato[0].published == "Mon, 09 Jun 2025 10:00:00 +0000"
    assert "NATO" in nato[0].summary and "air defence" in nato[0].summary


def test_defence_utm_feed(site):
    feed = parse_feed(site, "/feeds/defence-utm.xml")
    assert len(feed.entries) == 5
    nato = [e for e in feed.entries if FORBIDDEN.search(unrelated_text(e))]
    assert [e.id for e in nato] == ["urn:defence-daily:1001-b"]
    assert nato[0].link == site.url + NATO_PATH + "?utm_source=x&utm_medium=rss"
    original = parse_feed(site, "/feeds/defence.xml").entries[0]
    assert (nato[0].title, nato[0].summary) == (original.title, original.summary)


def test_other_outlet_feed(site):
    feed = parse_feed(site, "/feeds/other-outlet.xml")
    assert (feed.bozo, feed.version, len(feed.entries)) == (False, "atom10", 2)
    nato, other = feed.entries
    assert nato.link == site.url + NATO_PATH + "#comments"
    assert nato.title == "NATO allies agree to boost air defence on eastern flank"
    assert not FORBIDDEN.search(unrelated_text(other))


def test_malformed_feed_is_bozo_but_keeps_both_entries(site):
    feed = parse_feed(site, "/feeds/malformed.xml")
    assert feed.bozo
    assert [e.title for e in feed.entries] == [
        "NATO tests new air defense radar",
        "Fish & chips shop wins national award",
    ]
    assert feed.entries[0].link == site.url + "/news/2025/06/radar.html"
    assert not FORBIDDEN.search(unrelated_text(feed.entries[1]))


def test_not_a_feed_and_private_feed(site):
    _, headers, body = fetch(site.url + "/feeds/not-a-feed.xml")
    assert headers["Content-Type"].startswith("application/xml")
    feed = feedparser.parse(io.BytesIO(body))
    assert (bool(feed.bozo), feed.version, len(feed.entries)) == (True, "", 0)
    secret = parse_feed(site, "/private/secret.xml")
    assert [e.id for e in secret.entries] == ["urn:defence-daily:private-1"]


def test_every_linked_page_exists_and_unrelated_pages_are_clean(site):
    links = set()
    for path in ("/feeds/defence.xml", "/feeds/defence-utm.xml", "/feeds/other-outlet.xml"):
        links |= {e.link for e in parse_feed(site, path).entries}
    links |= {e.link for e in parse_feed(site, "/feeds/malformed.xml").entries}
    links |= {e.link for e in parse_feed(site, "/private/secret.xml").entries}
    nato_pages = {NATO_PATH, "/news/2025/06/radar.html", "/private/2025/06/nato-briefing.html"}
    for link in links:
        path = link.removeprefix(site.url).split("?")[0].split("#")[0]
        status, _, body = fetch(site.url + path)
        assert status == 200, path
        assert f'rel="canonical" href="{site.url}{path}"'.encode() in body
        if path not in nato_pages:
            assert not FORBIDDEN.search(body.decode()), path
