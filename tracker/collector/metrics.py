"""Prometheus metrics of the collector and the batch writer (one registry per process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter(
    "funnel_collect_requests",
    "Collector requests by endpoint and HTTP status.",
    ["endpoint", "status"],
    registry=REGISTRY,
)
ACCEPTED = Counter(
    "funnel_events_accepted",
    "Events accepted into the spool (collect, link) or ClickHouse (import).",
    ["source"],
    registry=REGISTRY,
)
DROPPED = Counter(
    "funnel_events_dropped",
    "Events not stored, by drop reason.",
    ["reason"],
    registry=REGISTRY,
)
SPOOL_DEPTH = Gauge(
    "funnel_spool_depth_events", "Events in the spool not yet in ClickHouse.", registry=REGISTRY
)
SPOOL_BYTES = Gauge("funnel_spool_bytes", "Bytes held by the spool on disk.", registry=REGISTRY)
WRITER_FAILING = Gauge(
    "funnel_writer_failing", "1 while ClickHouse refuses the writer's inserts.", registry=REGISTRY
)
INSERT_LATENCY = Histogram(
    "funnel_insert_latency_seconds",
    "Time to insert one batch into ClickHouse.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "funnel_insert_batch_size",
    "Events per ClickHouse insert.",
    buckets=(1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000),
    registry=REGISTRY,
)


def observe_insert(seconds: float, rows: int) -> None:
    INSERT_LATENCY.observe(seconds)
    BATCH_SIZE.observe(rows)
