"""The `[web]` table as a value: no table, no web view (only /healthz and /metrics)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class WebOptions:
    password: str = field(repr=False)  # the sign-in password
    secret: str = field(repr=False)  # signs sessions and derives feed tokens
    api_tokens: tuple[str, ...] = field(default=(), repr=False)  # Bearer tokens for /api/v1

    def secrets(self) -> list[str]:
        """Every value a log line must never show."""
        return [s for s in (self.password, self.secret, *self.api_tokens) if s]
