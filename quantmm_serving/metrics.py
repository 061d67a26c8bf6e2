"""Prometheus metrics of the app (``/metrics``): ``quantmm_`` names, base units (seconds, ratios), ``_total`` counters.

Each app owns its :class:`~prometheus_client.CollectorRegistry` (two apps in one process, as in the tests, never
share counters). The gauges that describe state (model age, feature staleness, degraded) are set when scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServingMetrics:
    """The app's metrics on its own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "quantmm_http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "quantmm_http_request_duration_seconds",
            "Time to answer a request",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predictions = Counter(
            "quantmm_predictions", "Predictions computed", ["symbol", "horizon", "role"], registry=r
        )
        self.model_swaps = Counter("quantmm_model_swaps", "Alias moves swapped into the app", registry=r)
        self.registry_errors = Counter("quantmm_registry_errors", "Failed reads of the model registry", registry=r)
        self.prediction_log_failures = Counter(
            "quantmm_prediction_log_write_failures", "Failed writes of the prediction log", registry=r
        )
        self.prediction_log_pending = Gauge(
            "quantmm_prediction_log_pending_rows", "Prediction-log rows waiting to be written", registry=r
        )
        self.model_age = Gauge(
            "quantmm_model_age_seconds",
            "Time since the newest row the active version was trained on",
            ["symbol", "horizon"],
            registry=r,
        )
        self.feature_staleness = Gauge(
            "quantmm_feature_staleness_seconds", "Age of the newest feature row", ["symbol"], registry=r
        )
        self.degraded = Gauge("quantmm_degraded", "1 when the app serves degraded (see /health)", registry=r)
        self.ready = Gauge("quantmm_ready", "1 when the app is ready to serve (see /ready)", registry=r)
