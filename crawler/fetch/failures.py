"""What a failed fetch means, in words an operator can act on (pure).

`describe_failure` and `describe_status` turn a request's failure (Twisted's and Scrapy's
exception classes, an HTTP status) into the error class and message recorded on the source
and shown by `newswatch sources`. `SEEN` and `PRIVATE` are the reasons the downloader
middlewares give when they drop a request, which the spider reads back.
"""

from __future__ import annotations

SEEN = "already in the archive"  # SeenFilterMiddleware: the page is known, not fetched again
PRIVATE = "resolves to a private address"  # PrivateAddressMiddleware: refused (SSRF)

_HTTP_HINTS = {
    404: "not found (404); check the URL",
    410: "gone (410); remove or replace the source",
    403: "the server refuses us (403)",
    401: "the server wants a login (401)",
}

# Failure classes (Twisted's and Scrapy's) as users read them in `newswatch sources`.
_FRIENDLY = (
    ("CannotResolveHost", "the host name does not resolve; check the URL"),
    ("DNS", "the host name does not resolve; check the URL"),
    ("Timeout", "the server did not answer in time ([crawl] timeout)"),
    ("TimedOut", "the connection timed out"),
    ("Refused", "the server refused the connection"),
    ("SSL", "the TLS handshake failed (bad or untrusted certificate?)"),
    ("TLS", "the TLS handshake failed (bad or untrusted certificate?)"),
    ("certificate", "the TLS handshake failed (bad or untrusted certificate?)"),
    ("ConnectionLost", "the server closed the connection"),
    ("DataLoss", "the server closed the connection mid-answer"),
    ("NeverReceived", "the server closed the connection before answering"),
)


def describe_failure(cls: str, detail: str) -> tuple[str, str]:
    """(error class, message an operator can act on) for a failed request."""
    lowered = detail.lower()
    if "robots.txt" in lowered:
        return "RobotsDisallowed", "robots.txt forbids this URL; ask the site or remove the source"
    if PRIVATE in lowered:
        return "PrivateAddress", detail
    if "redirect" in lowered:
        return "RedirectLoop", f"too many redirects (a redirect loop?): {detail}"
    if "maxsize" in lowered or "max size" in lowered or "exceeds" in lowered:
        return "TooLarge", f"the response is larger than [crawl] max_page_bytes: {detail}"
    if "cancelled" in cls.lower() and not detail:
        # Scrapy cancels a body that grows past DOWNLOAD_MAXSIZE without saying so
        return "TooLarge", "the response grew larger than [crawl] max_page_bytes and was cut off"
    for needle, text in _FRIENDLY:
        if needle.lower() in cls.lower() or needle.lower() in lowered:
            return cls, f"{text}: {detail}"
    return cls, f"the fetch failed: {detail}"


def describe_status(status: int, retry_after: float | None) -> tuple[str, str]:
    if status in (429, 503):
        wait = f"; it asked us to wait {retry_after:.0f} s" if retry_after else ""
        return f"HTTP{status}", f"the server is overloaded or rate-limiting us ({status}){wait}"
    return f"HTTP{status}", _HTTP_HINTS.get(status, f"the server answered HTTP {status}")
