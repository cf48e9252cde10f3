"""The scoring service's Prometheus metrics (``GET /metrics``, text format), in a registry of its own.

=====================================  ==========  =========================================================
metric                                 type        labels / meaning
=====================================  ==========  =========================================================
mlops_requests_total                   counter     model, version, arm: records answered
mlops_request_errors_total             counter     model, status, reason: requests refused or failed
mlops_request_latency_seconds          histogram   model, version, arm: from receipt to answer, per record
mlops_shadow_predictions_total         counter     model, version: shadow scores logged, not returned
mlops_batch_rows                       histogram   model: records scored together (micro-batches)
mlops_spool_rows_total                 counter     model: rows written to the spool
mlops_log_rows_loaded_total            counter     model, kind: rows the loader moved into the log
mlops_loader_backlog_rows              gauge       model: rows sealed, not loaded yet
mlops_serving_version                  gauge       model, arm: the version serving each arm (1 = serving)
mlops_challenger_share                 gauge       model: share of requests the challenger answers now
mlops_registry_switches_total          counter     model: switches of version or deployment
mlops_registry_errors_total            counter     model: failed reads of the registry or version loads
=====================================  ==========  =========================================================
"""
from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # the *_created series of every counter double the text for no use here

#: Latency buckets (seconds): fine below 50 ms, where a scoring service's targets lie.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServiceMetrics:
    """The metrics of one service (one registry, so several services in a process never collide)."""

    def __init__(self, model: str):
        self.model = model
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("mlops_requests", "Records answered", ["model", "version", "arm"], registry=r)
        self.errors = Counter("mlops_request_errors", "Requests refused or failed", ["model", "status", "reason"],
                              registry=r)
        self.latency = Histogram("mlops_request_latency_seconds", "Seconds from receipt to answer, per record",
                                 ["model", "version", "arm"], buckets=LATENCY_BUCKETS, registry=r)
        self.shadow = Counter("mlops_shadow_predictions", "Shadow scores logged, not returned", ["model", "version"],
                              registry=r)
        self.batch_rows = Histogram("mlops_batch_rows", "Records scored together", ["model"], buckets=BATCH_BUCKETS,
                                    registry=r)
        self.spooled = Counter("mlops_spool_rows", "Rows written to the spool", ["model"], registry=r)
        self.loaded = Counter("mlops_log_rows_loaded", "Rows moved into the log", ["model", "kind"], registry=r)
        self.backlog = Gauge("mlops_loader_backlog_rows", "Rows sealed, not loaded yet", ["model"], registry=r)
        self.serving = Gauge("mlops_serving_version", "Version serving each arm (value 1)", ["model", "arm", "version"],
                             registry=r)
        self.share = Gauge("mlops_challenger_share", "Share of requests the challenger answers now", ["model"],
                           registry=r)
        self.switches = Counter("mlops_registry_switches", "Switches of version or deployment", ["model"], registry=r)
        self.registry_errors = Counter("mlops_registry_errors", "Failed reads of the registry or version loads",
                                       ["model"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
