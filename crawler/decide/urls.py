"""Canonical article URLs (pure).

w3lib's ``canonicalize_url`` sorts the query and normalises escapes, but keeps tracking
parameters and default ports; on top of it we drop a deny-list of tracking parameters (never an
allow-list: real ids such as ``?storyid=9981`` must survive), the fragment, a default port, and
lower-case the host.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

# Exact parameter names (lower-cased) that only track a click, never identify a page.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "rb_clickid",
        "s_cid",
        "ncid",
        "cmpid",
        "ocid",
        "icid",
        "ito",
        "xtor",
        "at_medium",
        "at_campaign",
        "sr_share",
        "ref_src",
        "ref_url",
        "cmp",
        "taid",
        "spm",
        "__twitter_impression",
        "amp",
    }
)
# Parameter name prefixes that only track.
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "matomo_", "hsa_", "at_", "__s", "trk_")

_DEFAULT_PORTS = {"http": 80, "https": 443}
_AMP_PATH = re.compile(r"(?:/amp/?$|/amp(?=/)|\.amp(?=\.html?$)|\.amp$)")


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _tracks(pair: str) -> bool:
    """True for a raw query pair (`utm_source=x`) whose name is a tracking parameter."""
    return is_tracking_param(unquote_plus(pair.partition("=")[0], errors="replace"))


def canonical_url(url: str) -> str:
    """The URL an article is keyed by: tracking parameters, fragment and default port removed.

    >>> canonical_url("HTTPS://Example.org:443/a/b?utm_source=x&id=3#top")
    'https://example.org/a/b?id=3'
    """
    url = url.strip()
    parts = urlsplit(url)
    # Filter the raw `name=value` pairs: decoding and re-encoding them would turn escapes that
    # are not UTF-8 (`?q=caf%E9`) into U+FFFD, so different pages would share one key.
    kept = [pair for pair in parts.query.split("&") if pair and not _tracks(pair)]
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal keeps its brackets
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host
    if parts.username or parts.password:
        netloc = f"{parts.username or ''}{':' + parts.password if parts.password else ''}@{host}"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = parts.path or "/"
    rebuilt = urlunsplit((scheme, netloc, path, "&".join(kept), ""))
    return canonicalize_url(rebuilt, keep_fragments=False)


def amp_to_canonical_guess(url: str) -> str | None:
    """For an AMP URL, the likely non-AMP URL (``/amp/`` segment, ``.amp.html``, ``?amp``).

    Only a guess: a page's own ``rel=canonical`` wins when the page is fetched.
    Returns None when the URL does not look like an AMP page.
    """
    parts = urlsplit(url)
    pairs = [pair for pair in parts.query.split("&") if pair]
    query = [pair for pair in pairs if unquote_plus(pair.partition("=")[0]).lower() != "amp"]
    amp_path = _AMP_PATH.search(parts.path) is not None
    if not amp_path and len(query) == len(pairs):
        return None
    path = _AMP_PATH.sub("", parts.path) if amp_path else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path or "/", "&".join(query), ""))


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def non_public_address(address: str) -> bool:
    """Whether an IP address is off the public internet: loopback, private, link-local (the
    cloud metadata service's 169.254.169.254), shared, reserved, multicast or unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def ip_literal(host: str) -> str | None:
    """``host`` itself when it is an IP address (IPv6 without brackets), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None
