"""The service's metrics (docs/operations.md): prometheus-client objects in a registry of
their own, served as GET /metrics by the web server (`scheduler.web.status`)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)


class Metrics:
    """Every metric the service exports."""

    def __init__(self, node: str = "") -> None:
        self.registry = CollectorRegistry()
        self.node = Gauge(
            "newswatch_node_info",
            "This node's name ([service] node); always 1.",
            ["node"],
            registry=self.registry,
        )
        self.node.labels(node).set(1)
        self.archive_up = Gauge(
            "newswatch_archive_up",
            "Whether the archive answers and takes writes (1) or not (0), as /healthz says.",
            registry=self.registry,
        )
        self.archive_up.set(1)
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
