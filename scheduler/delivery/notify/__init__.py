"""Channels: one module per external system, one `send()` each, registered by name.

A sender gets the channel's validated options and one `Message`; it returns on success and
raises `DeliveryError` (with `retry_after` when the receiver asked for a pause) on failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crawler.model import Channel
from scheduler import SchedulerError


class DeliveryError(SchedulerError):
    """A send failed; it will be retried. `retry_after` is seconds the receiver asked for."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Message:
    event: str  # alert | digest | source-health
    delivery: str  # stable across retries
    payload: dict[str, Any]  # the JSON document the README's quickstart shows
    body: bytes  # that document serialised once, frozen for every retry


Sender = Callable[[Channel, Message], None]


def registry() -> dict[str, Sender]:
    from scheduler.delivery.notify import apprise, email, webhook

    return {"webhook": webhook.send, "email": email.send, "apprise": apprise.send}
