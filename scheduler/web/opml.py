"""OPML (pure): the sources as OPML 2.0 (standard library), and an OPML file's feeds as
``[[sources]]`` TOML to paste into the config (read with listparser). The config file is never
rewritten; feeds already configured are left out."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.etree import ElementTree as ET

import listparser

from crawler.model import Source


class OpmlError(ValueError):
    """The file is not an OPML subscription list (the message says why)."""


@dataclass(frozen=True)
class FoundFeed:
    name: str  # a unique source name made from the title
    url: str
    title: str


def to_opml(sources: Sequence[Source], now: datetime, title: str = "newswatch sources") -> bytes:
    """OPML 2.0: one ``outline`` per source; feeds as ``type="rss"`` with ``xmlUrl``, sitemaps
    and sites as links (``type="link"``, ``url``), each with its newswatch kind."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now, usegmt=True)
    body = ET.SubElement(root, "body")
    for source in sources:
        attrs = {"text": source.name, "title": source.name}
        if source.kind == "feed":
            attrs |= {"type": "rss", "xmlUrl": source.url}
        else:
            attrs |= {"type": "link", "url": source.url}
        attrs["newswatchKind"] = source.kind
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", folded).strip("-_").lower()
    return slug[:60].rstrip("-_") or "feed"


def read_opml(
    data: bytes, known_urls: Iterable[str], known_names: Iterable[str]
) -> list[FoundFeed]:
    """The feeds of an OPML file not already configured, each with a unique source name."""
    parsed = listparser.parse(data)
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception") or "no <opml> document in it"
        raise OpmlError(f"not a readable OPML file ({reason})")
    known = {u.strip() for u in known_urls}
    names = set(known_names)
    found: list[FoundFeed] = []
    for feed in parsed.get("feeds", []):
        url = str(feed.get("url") or "").strip()
        if not url.startswith(("http://", "https://")) or url in known:
            continue
        known.add(url)
        title = str(feed.get("title") or "").strip() or url
        base = name = _slug(title)
        n = 2
        while name in names:
            name, n = f"{base}-{n}", n + 1
        names.add(name)
        found.append(FoundFeed(name, url, title))
    return found


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are valid TOML escapes for these characters)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(feeds: Sequence[FoundFeed]) -> str:
    blocks = [
        f"# {' '.join(f.title.split())}\n[[sources]]\nname = {toml_string(f.name)}\n"
        f"feed = {toml_string(f.url)}\n"
        for f in feeds
    ]
    return "\n".join(blocks)
