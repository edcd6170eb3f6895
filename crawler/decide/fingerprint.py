"""Text fingerprints (pure): the same normalised text gives the same fingerprint."""

from __future__ import annotations

import hashlib

from crawler.query import tokenize

# Below this many words a text (a one-line teaser, "Read more") says too little to identify an
# article by itself, so it gets no fingerprint.
MIN_TOKENS = 15


def text_fingerprint(text: str | None) -> str | None:
    """sha1 over the normalised words (case, accents, punctuation and spacing ignored)."""
    tokens = tokenize(text or "")
    if len(tokens) < MIN_TOKENS:
        return None
    return hashlib.sha1(" ".join(tokens).encode("utf-8")).hexdigest()
