"""Who may see what (pure): the password, signed sessions, the sign-in rate limit, `Origin`,
feed tokens and API tokens. Every secret is compared in constant time (`hmac.compare_digest`
over digests, so neither content nor length leaks through timing).

- A session is the word ``web`` signed with itsdangerous under a key made of ``[web] secret``
  and a digest of the password: changing either revokes every session.
- A rule's feed token is an HMAC of the rule's name under ``[web] secret``: stable while the
  secret is, different per rule, revoked by changing the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import deque
from urllib.parse import urlsplit

from itsdangerous import BadSignature, TimestampSigner

from scheduler.web.options import WebOptions

SESSION_COOKIE = "newswatch_session"
SESSION_SECONDS = 7 * 24 * 3600
SIGN_IN_FAILURES = 5  # failed sign-ins from one client within the window before 429
SIGN_IN_WINDOW = 15 * 60.0  # seconds


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def same_secret(given: str | None, expected: str) -> bool:
    """`given == expected` in constant time; an empty expected value never matches."""
    if not expected or given is None:
        return False
    return hmac.compare_digest(_digest(given), _digest(expected))


def password_ok(options: WebOptions, given: str | None) -> bool:
    return same_secret(given, options.password)


def _signer(options: WebOptions) -> TimestampSigner:
    salt = "newswatch-session:" + hashlib.sha256(options.password.encode()).hexdigest()
    return TimestampSigner(options.secret, salt=salt)


def new_session(options: WebOptions) -> str:
    return _signer(options).sign(b"web").decode("ascii")


def session_ok(options: WebOptions, cookie: str | None) -> bool:
    if not cookie:
        return False
    try:
        value = _signer(options).unsign(cookie, max_age=SESSION_SECONDS)
    except (BadSignature, UnicodeError):
        return False
    return hmac.compare_digest(value, b"web")


def feed_token(secret: str, rule: str) -> str:
    mac = hmac.new(secret.encode(), b"newswatch-feed\0" + rule.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:18]).decode("ascii")


def feed_token_ok(secret: str, rule: str, given: str | None) -> bool:
    return same_secret(given, feed_token(secret, rule))


def api_token_ok(tokens: tuple[str, ...], authorization: str | None) -> bool:
    """An ``Authorization: Bearer TOKEN`` header naming one of `tokens` (each compared, so
    the time does not tell which one nearly matched)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        given = ""
    ok = False
    for token in tokens:
        ok |= same_secret(given.strip(), token)
    return ok


def same_origin(origin: str | None, host: str | None) -> bool:
    """A POST's `Origin` names this site (the `Host` it was sent to). A missing or opaque
    (``null``) Origin is refused: browsers send it with every POST."""
    if not origin or not host or origin == "null":
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return hmac.compare_digest(parts.netloc.lower().encode(), host.lower().encode())


class SignInLimiter:
    """At most `failures` failed sign-ins per client within `window` seconds; then the client
    waits until the oldest failure leaves the window. Times are `time.monotonic()` values."""

    def __init__(self, failures: int = SIGN_IN_FAILURES, window: float = SIGN_IN_WINDOW) -> None:
        self.failures, self.window = failures, window
        self._seen: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._seen.setdefault(client, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._seen[client]
        return times

    def wait(self, client: str, now: float) -> float | None:
        """Seconds the client must wait before trying again, or None."""
        times = self._recent(client, now)
        if len(times) < self.failures:
            return None
        return max(1.0, times[0] + self.window - now)

    def failed(self, client: str, now: float) -> None:
        self._recent(client, now)
        self._seen.setdefault(client, deque()).append(now)
        if len(self._seen) > 10_000:  # a flood of clients: forget the quietest
            del self._seen[next(iter(self._seen))]

    def succeeded(self, client: str) -> None:
        self._seen.pop(client, None)
