"""Webhook channel: POST the JSON body, signed with HMAC-SHA256 when a secret is set; a
``user:password@`` in the URL is sent as HTTP Basic authentication."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request

from crawler.fetch.httputil import parse_retry_after
from crawler.model import Channel
from scheduler.config.values import (
    DURATION,
    REQUIRED,
    STRING,
    TIMEOUT_HELP,
    Key,
    duration_at_least,
    http_url,
)
from scheduler.delivery.notify.message import DeliveryError, Message

# The [channels.NAME] keys of `type = "webhook"` (docs/configuration.md)
OPTIONS: tuple[Key, ...] = (
    Key("url", STRING, REQUIRED, "http(s) URL that receives a JSON POST", http_url),
    Key("secret", STRING, None, "HMAC-SHA256 signing key", blank_is_unset=True),
    Key("timeout", DURATION, "10s", TIMEOUT_HELP, duration_at_least(1)),
)

USER_AGENT = "newswatch-webhook/0.1"


def signature(secret: str, body: bytes) -> str:
    """The `X-Newswatch-Signature-256` header value."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def headers_for(channel: Channel, message: Message) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Newswatch-Event": message.event,
        "X-Newswatch-Delivery": message.delivery,
    }
    secret = channel.options.get("secret")
    if isinstance(secret, str) and secret:
        headers["X-Newswatch-Signature-256"] = signature(secret, message.body)
    return headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is not a delivery: report it as a failure


_opener = urllib.request.build_opener(_NoRedirect)


def with_credentials(url: str, headers: dict[str, str]) -> str:
    """``url`` without its ``user:password@``, which becomes HTTP Basic authentication
    (urllib would take it for part of the host name and look that up)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    headers["Authorization"] = f"Basic {token}"
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def send(channel: Channel, message: Message) -> None:
    headers = headers_for(channel, message)
    url = with_credentials(str(channel.options["url"]), headers)
    timeout = float(channel.options.get("timeout", 10.0))  # type: ignore[arg-type]
    request = urllib.request.Request(url, data=message.body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        raise DeliveryError(f"the receiver answered HTTP {exc.code}", retry_after) from exc
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"could not reach the receiver: {reason}") from exc
    if not 200 <= status < 300:
        raise DeliveryError(f"the receiver answered HTTP {status}")
