"""The apprise channel (scheduler/delivery/notify/apprise.py)
through apprise's own `json://` plugin,
posting to a real local WebhookReceiver: what arrives, and what apprise says when it fails.

Apprise's json:// posts `{"version", "title", "message", "attachments", "type"}` to
http://HOST:PORT/PATH (json**s**:// for https); `message` is our Markdown as given, since the
plugin passes every format through.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import pytest
from servers import WebhookReceiver, free_port

from crawler.model import Channel
from scheduler.delivery.notify import DeliveryError, Message
from scheduler.delivery.notify.apprise import send
from scheduler.delivery.render import alert_payload

ARTICLE = {
    "url": "https://news.example/2025/06/nato-air-defence",
    "title": "NATO boosts air defence",
    "source": "wire",
    "published": "2025-06-09T09:00:00Z",
    "author": None,
    "language": "en",
    "summary": None,
    "text": "Ministers said NATO agreed on more air defence for the eastern flank.",
}


def alert(**article: Any) -> dict[str, Any]:
    return alert_payload(
        delivery=str(uuid.uuid4()),
        rule="air-defence",
        matched=["nato", "air defence"],
        article={**ARTICLE, **article},
        story_id=1,
        also_reported_by=[{"source": "other", "url": "https://other.example/a", "title": "Copy"}],
        created="2025-06-09T10:01:02Z",
    )


def as_message(payload: dict[str, Any]) -> Message:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return Message(payload["event"], payload["delivery"], payload, body)


def chat(url: str, timeout: float = 5.0) -> Channel:
    return Channel(name="team-chat", type="apprise", options={"url": url, "timeout": timeout})


def json_url(receiver: WebhookReceiver) -> str:
    return receiver.url.replace("http://", "json://", 1)


def test_an_alert_arrives_with_title_and_markdown_body(webhook: WebhookReceiver) -> None:
    send(chat(json_url(webhook)), as_message(alert()))
    [request] = webhook.wait_for(1)
    assert request.method == "POST" and request.path == "/hook"
    assert request.headers["Content-Type"] == "application/json"
    posted = request.json
    assert posted["title"] == "[newswatch] air-defence: NATO boosts air defence"
    assert posted["type"] == "info"
    body = posted["message"]
    assert body.startswith(
        "[NATO boosts air defence](https://news.example/2025/06/nato-air-defence)\n"
    )
    assert "wire · 2025-06-09 09:00 UTC" in body
    assert "Ministers said **NATO** agreed on more **air defence** for the eastern flank." in body
    assert "Also reported by [other](https://other.example/a)" in body


def test_markdown_in_a_title_is_escaped(webhook: WebhookReceiver) -> None:
    payload = alert(title="*Breaking* [NATO] <script>x</script>", url="https://e.org/a_(b)")
    send(chat(json_url(webhook)), as_message(payload))
    body = webhook.wait_for(1)[0].json["message"]
    assert body.startswith(
        r"[\*Breaking\* \[NATO\] &lt;script>x&lt;/script>](https://e.org/a_%28b%29)"
    )
    assert "<script>" not in body


def test_a_digest_is_a_list(webhook: WebhookReceiver) -> None:
    alerts = []
    for number in range(1, 4):
        one = alert(title=f"Story {number}", url=f"https://news.example/{number}")
        alerts.append({key: one[key] for key in ("rule", "matched", "article", "story")})
    digest = {
        "event": "digest",
        "delivery": str(uuid.uuid4()),
        "rule": "air-defence",
        "from": "2025-06-09T09:00:00Z",
        "to": "2025-06-09T10:00:00Z",
        "alerts": alerts,
    }
    send(chat(json_url(webhook)), as_message(digest))
    posted = webhook.wait_for(1)[0].json
    assert posted["title"] == "[newswatch] air-defence: 3 alerts (2025-06-09 09:00 – 10:00 UTC)"
    items = [line for line in posted["message"].splitlines() if line.startswith("- ")]
    assert items == [f"- [Story {n}](https://news.example/{n})  " for n in range(1, 4)]
    assert posted["message"].count("**NATO**") == 3


@pytest.mark.parametrize(("state", "kind"), [("failing", "failure"), ("recovered", "success")])
def test_a_source_health_notice(webhook: WebhookReceiver, state: str, kind: str) -> None:
    notice = {
        "event": "source-health",
        "delivery": str(uuid.uuid4()),
        "source": "nato-newsroom",
        "state": state,
        "detail": "3 consecutive failures",
    }
    send(chat(json_url(webhook)), as_message(notice))
    posted = webhook.wait_for(1)[0].json
    assert posted["title"] == f"[newswatch] source nato-newsroom is {state}"
    assert posted["type"] == kind
    assert "3 consecutive failures" in posted["message"]


def test_a_failing_receiver_gives_apprises_explanation() -> None:
    with WebhookReceiver(responses=[(500, {}, b"boom")]) as receiver:
        with pytest.raises(DeliveryError) as raised:
            send(chat(json_url(receiver)), as_message(alert()))
        assert len(receiver.requests) == 1
    why = str(raised.value)
    assert why.startswith("apprise could not deliver: ")
    assert "Failed to send JSON POST notification" in why and "500" in why


def test_a_dead_receiver() -> None:
    url = f"json://127.0.0.1:{free_port()}/hook"
    with pytest.raises(DeliveryError, match="Connection error"):
        send(chat(url), as_message(alert()))


def test_the_channel_timeout_applies() -> None:
    with WebhookReceiver(responses=[(200, {}, b"", 4.0)]) as slow:
        started = time.monotonic()
        with pytest.raises(DeliveryError):
            send(chat(json_url(slow), timeout=1.0), as_message(alert()))
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("url", ["json://", "not a url", "nosuchscheme://example", "tgram://x"])
def test_an_unusable_url(url: str) -> None:
    with pytest.raises(DeliveryError) as raised:
        send(chat(url), as_message(alert()))
    prefix = "apprise cannot use this URL: "
    assert str(raised.value).startswith(prefix)
    assert len(str(raised.value)) > len(prefix) + 5  # apprise's own reason follows


def test_captured_logs_stay_with_their_own_send() -> None:
    """Concurrent sends: each error names only its own failure, and no handler is left on the
    apprise logger."""
    handlers = list(logging.getLogger("apprise").handlers)
    errors: dict[int, str] = {}

    def attempt(status: int, receiver: WebhookReceiver) -> None:
        for _ in range(3):
            try:
                send(chat(json_url(receiver)), as_message(alert()))
            except DeliveryError as exc:
                errors.setdefault(status, "")
                errors[status] += str(exc)

    with (
        WebhookReceiver(responses=[(500, {}, b"", 0.2)]) as five_hundred,
        WebhookReceiver(responses=[(404, {}, b"", 0.2)]) as four_oh_four,
    ):
        threads = [
            threading.Thread(target=attempt, args=(500, five_hundred)),
            threading.Thread(target=attempt, args=(404, four_oh_four)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert "500" in errors[500] and "404" not in errors[500]
    assert "404" in errors[404] and "500" not in errors[404]
    assert logging.getLogger("apprise").handlers == handlers
