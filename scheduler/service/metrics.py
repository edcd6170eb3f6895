"""Health and metrics while `run` is up (docs/operations.md): GET /healthz and GET /metrics.

A tiny HTTP/1.1 responder on the service's own asyncio loop (no thread, no framework); the
metrics are prometheus-client objects in a registry of their own.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)


class Metrics:
    """Every metric the service exports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.articles = Counter(
            "newswatch_articles",
            "New articles archived, per source.",
            ["source"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "newswatch_duplicates",
            "Incoming copies recognised as an archived article, per kind of match "
            "(alias, guid, fingerprint).",
            ["kind"],
            registry=self.registry,
        )
        self.alerts = Counter(
            "newswatch_alerts",
            "Delivery attempts, per rule, channel and outcome (sent, retrying, failed).",
            ["rule", "channel", "status"],
            registry=self.registry,
        )
        self.source_errors = Counter(
            "newswatch_source_errors",
            "Failed runs of a source, per kind of error.",
            ["source", "kind"],
            registry=self.registry,
        )
        self.crawl_duration = Histogram(
            "newswatch_crawl_duration_seconds",
            "Duration of one crawl pass (all the sources due together).",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.last_success = Gauge(
            "newswatch_source_last_success_timestamp_seconds",
            "When the source last ran without error (Unix time).",
            ["source"],
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StatusServer:
    """Serves /healthz (200 or 503, JSON) and /metrics on `host:port`."""

    def __init__(
        self, listen: str, metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]
    ) -> None:
        host, _, port = listen.rpartition(":")
        self.host, self.port = host.strip("[]") or "127.0.0.1", int(port)
        self.metrics = metrics
        self.health = health
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), timeout=10)
            while (await asyncio.wait_for(reader.readline(), timeout=10)).strip():
                pass  # headers: not needed
            parts = request.decode("latin-1").split()
            method, path = (parts[0], parts[1].split("?")[0]) if len(parts) >= 2 else ("", "")
            status, content_type, body = self._answer(method, path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            log.exception("the status server failed to answer")
        finally:
            writer.close()

    def _answer(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/healthz":
            ok, detail = self.health()
            body = json.dumps({"status": "ok" if ok else "unhealthy", **detail}).encode()
            return ("200 OK" if ok else "503 Service Unavailable"), "application/json", body
        if path == "/metrics":
            return "200 OK", CONTENT_TYPE_LATEST, self.metrics.exposition()
        return "404 Not Found", "text/plain", b"try /healthz or /metrics\n"
