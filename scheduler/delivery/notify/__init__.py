"""Channels: one module per external system, each owning all of it: its option keys
(`OPTIONS`, which the config schema gathers, and `check` when keys depend on each other) and
its `send()`, registered here by channel type.

A sender gets the channel's validated options and one `Message`; it returns on success and
raises `DeliveryError` (with `retry_after` when the receiver asked for a pause) on failure.
"""

from __future__ import annotations

from types import ModuleType

from scheduler.delivery.notify import apprise, email, webhook
from scheduler.delivery.notify.message import DeliveryError, Message, Sender

__all__ = ["CHANNELS", "DeliveryError", "Message", "Sender", "registry"]

# channel type -> the module that owns it (OPTIONS, optional check, send)
CHANNELS: dict[str, ModuleType] = {"email": email, "webhook": webhook, "apprise": apprise}


def registry() -> dict[str, Sender]:
    return {kind: module.send for kind, module in CHANNELS.items()}
