"""Prometheus metrics of a serving process, correct with several workers.

With one worker the metrics live in this process's own registry. With several,
``keel serve`` sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, each worker
writes its values to memory-mapped files there, and ``/metrics`` aggregates all of them
(``prometheus_client``'s multiprocess mode): counters and histograms add up, the
in-flight gauge sums live processes.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "ServingMetrics"]

LATENCY_BUCKETS = (
    0.0002,
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
VALUE_BUCKETS = tuple(sorted({s * 10.0**e for e in range(-3, 7) for s in (-1, 1)} | {0.0}))


class ServingMetrics:
    """The serving metrics of one deployment, with cached label children for speed."""

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        d = ["deployment"]
        self.requests = Counter(
            "keel_requests",
            "Requests by endpoint, HTTP status and model version.",
            [*d, "endpoint", "status", "model_version"],
            registry=r,
        )
        self.latency = Histogram(
            "keel_request_duration_seconds",
            "Request latency in seconds, body read to response.",
            [*d, "endpoint", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_requests = Histogram(
            "keel_batch_requests",
            "Requests grouped into one predict call.",
            [*d, "variant"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "keel_batch_rows",
            "Rows passed to one predict call.",
            [*d, "variant"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge(
            "keel_requests_in_flight",
            "Requests being handled now.",
            d,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.predicted_classes = Counter(
            "keel_predictions",
            "Predicted rows by model version and predicted class.",
            [*d, "model_version", "prediction"],
            registry=r,
        )
        self.predicted_values = Histogram(
            "keel_prediction_value",
            "Predicted values of regression models.",
            [*d, "model_version"],
            buckets=VALUE_BUCKETS,
            registry=r,
        )
        self.log_rows = Counter(
            "keel_prediction_log_rows", "Rows written to the prediction log.", d, registry=r
        )
        self.log_dropped = Counter(
            "keel_prediction_log_dropped",
            "Rows not logged: queue full or write failed.",
            d,
            registry=r,
        )
        self.log_errors = Counter(
            "keel_prediction_log_errors", "Failed prediction log writes.", d, registry=r
        )
        self.model_info = Gauge(
            "keel_model_info",
            "1 for the model version each variant serves now.",
            [*d, "variant", "model", "version"],
            registry=r,
            multiprocess_mode="max",
        )
        self.swaps = Counter(
            "keel_model_swaps",
            "Model versions swapped in while serving.",
            [*d, "variant"],
            registry=r,
        )
        self.canary_rollbacks = Counter(
            "keel_canary_rollbacks", "Canaries rolled back automatically.", d, registry=r
        )
        self.shadow_errors = Counter(
            "keel_shadow_errors",
            "Shadow predictions that failed (never seen by clients).",
            [*d, "variant"],
            registry=r,
        )
        self.in_flight_child = self.in_flight.labels(deployment)

    # hot-path helpers with cached children -------------------------------------------

    @lru_cache(maxsize=1024)  # noqa: B019 - one instance per process, bounded label sets
    def _request(self, endpoint: str, status: int, version: str) -> Any:
        return self.requests.labels(self.deployment, endpoint, str(status), version)

    @lru_cache(maxsize=256)  # noqa: B019
    def _latency(self, endpoint: str, variant: str) -> Any:
        return self.latency.labels(self.deployment, endpoint, variant)

    def observe_request(
        self, endpoint: str, status: int, version: str, variant: str, seconds: float
    ) -> None:
        self._request(endpoint, status, version).inc()
        self._latency(endpoint, variant).observe(seconds)

    def observe_batch(self, variant: str, requests: int, rows: int) -> None:
        self.batch_requests.labels(self.deployment, variant).observe(requests)
        self.batch_rows.labels(self.deployment, variant).observe(rows)

    def observe_predictions(self, version: str, labels: Any, classifier: bool) -> None:
        import numpy as np

        if classifier:
            values, counts = np.unique(labels, return_counts=True)
            for value, count in zip(values.tolist(), counts.tolist(), strict=True):
                self.predicted_classes.labels(self.deployment, version, str(value)).inc(count)
        elif labels.dtype.kind in "iuf":
            child = self.predicted_values.labels(self.deployment, version)
            for value in labels.astype(float).tolist():
                child.observe(value)

    def exposition(self) -> bytes:
        """The text format of every metric (aggregated over workers in multiprocess mode)."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
