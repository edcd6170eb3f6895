"""The secrets of a config, and text with them masked.

A channel's secrets are its SMTP password, its webhook signing key, and the tokens a URL
carries (an Apprise URL's credentials and path, a webhook URL's password and query values):
libraries and servers put them into error messages, so every text newswatch shows or keeps
from outside (log lines, delivery errors in `alerts`, config problems) goes through `redact`.
Pure functions, and the logging filter that applies them to every log record.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, unquote, urlsplit

from crawler.model import Channel

MASK = "[secret]"
# The channel options whose values are secrets or carry them: the ones `channel_secrets` reads
# (the rules cache never keeps their values, scheduler.config.kept).
SECRET_OPTIONS = ("password", "secret", "url")
_MIN_TOKEN = 6  # shorter parts of a URL ("api", "v1", a port) are no secret and too common


def _url_tokens(url: str, whole: bool) -> Iterable[str]:
    """The parts of ``url`` that carry credentials (``whole``: every path segment too)."""
    try:
        parts = urlsplit(url)
        password, user = parts.password, parts.username
    except ValueError:
        return
    if whole:
        yield url
        if user:
            yield unquote(user)
        for segment in parts.path.split("/"):
            yield unquote(segment)
    if password:
        yield unquote(password)
    for _, value in parse_qsl(parts.query):
        yield value


def channel_secrets(channels: Mapping[str, Channel]) -> tuple[str, ...]:
    """Every secret value of ``channels``, longest first."""
    found: set[str] = set()
    for channel in channels.values():
        options = channel.options
        for key in ("password", "secret"):
            value = options.get(key)
            if isinstance(value, str):
                found.add(value)
        url = options.get("url")
        if isinstance(url, str):
            found.update(_url_tokens(url, whole=channel.type == "apprise"))
    return tuple(sorted((s for s in found if len(s) >= _MIN_TOKEN), key=len, reverse=True))


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``[secret]`` (an empty one masks nothing)."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that masks the secrets in every record it passes (message and
    traceback text alike), installed on the CLI's handler once the config is loaded."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True
