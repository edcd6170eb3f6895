"""What every sender shares: the `Message` it sends, the `DeliveryError` it raises, and the
`Sender` signature (scheduler/delivery/notify/)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crawler.model import Channel
from scheduler import SchedulerError

__all__ = ["DeliveryError", "Message", "Sender"]


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
