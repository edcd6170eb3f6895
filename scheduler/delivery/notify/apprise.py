"""Apprise channel: one notification through any Apprise URL (slack://, ntfys://, tgram://, ...).

Apprise reports a failure as a False result and explains it only in its log (the `apprise`
logger); `send` captures those records for the duration of its own call (a context variable
tells its records from those of concurrent sends) and raises `DeliveryError` with them.

(The module shares its name with the library; absolute imports keep them apart: `import apprise`
here is the library, this module is `scheduler.delivery.notify.apprise`.)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawler.model import Channel
from scheduler.config.values import (
    DURATION,
    REQUIRED,
    STRING,
    TIMEOUT_HELP,
    Key,
    duration_at_least,
    non_empty,
)
from scheduler.delivery.notify.message import DeliveryError, Message
from scheduler.delivery.render import chat_markdown, chat_title

# The [channels.NAME] keys of `type = "apprise"` (docs/configuration.md)
OPTIONS: tuple[Key, ...] = (
    Key("url", STRING, REQUIRED, "an Apprise URL such as ntfys://host/topic", non_empty),
    Key("timeout", DURATION, "30s", TIMEOUT_HELP, duration_at_least(1)),
)

MAX_EXPLANATION = 600  # characters of apprise's own words kept in the error

# a source-health notice's state -> apprise's notify type (apprise.NotifyType's values)
_NOTIFY_TYPES = {"failing": "failure", "silent": "warning", "recovered": "success"}


class _Said(logging.Handler):
    """Collects the warnings and errors apprise logs inside one `send`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if _current.get() is not self:
            return  # another send's record (apprise may log from its worker threads)
        try:
            line = " ".join(record.getMessage().split())
        except Exception:  # a malformed log call inside apprise must not break the send
            line = str(record.msg)
        if line and line not in self.lines:
            self.lines.append(line)

    def explanation(self, fallback: str) -> str:
        text = "; ".join(self.lines) or fallback
        return text if len(text) <= MAX_EXPLANATION else text[: MAX_EXPLANATION - 1] + "…"


_current: ContextVar[_Said | None] = ContextVar("newswatch_apprise_said", default=None)


@contextmanager
def _listening() -> Iterator[_Said]:
    said = _Said()
    token = _current.set(said)
    logger = logging.getLogger("apprise")  # the logger every apprise module and plugin uses
    logger.addHandler(said)
    try:
        yield said
    finally:
        logger.removeHandler(said)
        _current.reset(token)


def _apply_timeout(service: Any, url: str, timeout: float) -> None:
    """The channel's timeout for connecting and reading, unless the URL sets `cto`/`rto`."""
    try:
        given = parse_qs(urlsplit(url).query)
    except ValueError:
        given = {}
    if "cto" not in given and hasattr(service, "socket_connect_timeout"):
        service.socket_connect_timeout = timeout
    if "rto" not in given and hasattr(service, "socket_read_timeout"):
        service.socket_read_timeout = timeout


def send(channel: Channel, message: Message) -> None:
    url = str(channel.options["url"])
    given_timeout = channel.options.get("timeout")
    timeout = float(given_timeout) if isinstance(given_timeout, int | float) else 30.0
    payload = message.payload
    import apprise  # the library: imported on the first send, not by every command (~120 ms)

    kind = _NOTIFY_TYPES.get(str(payload.get("state")), "info")

    # sequential mode: apprise sends from this call, not from a pool of its own
    asset = apprise.AppriseAsset(async_mode=False)
    with _listening() as said:
        service = apprise.Apprise.instantiate(url, asset=asset)
        if service is None:
            why = said.explanation("unknown scheme or malformed URL")
            raise DeliveryError(f"apprise cannot use this URL: {why}")
        _apply_timeout(service, url, timeout)
        notifier = apprise.Apprise(asset=asset)
        notifier.add(service)
        try:
            result = notifier.notify(
                body=chat_markdown(payload),
                title=chat_title(payload),
                body_format=apprise.NotifyFormat.MARKDOWN,
                notify_type=apprise.NotifyType(kind),
            )
        except Exception as exc:  # apprise's plugins are foreign code: report, retry later
            raise DeliveryError(f"apprise failed: {type(exc).__name__}: {exc}") from exc
    if not result:
        status = getattr(getattr(result, "status", None), "name", None)
        fallback = f"status {status}" if status else "no reason given"
        raise DeliveryError(f"apprise could not deliver: {said.explanation(fallback)}")
