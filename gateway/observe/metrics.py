"""Prometheus metrics of one gateway, served as `/metrics` on the admin listener.

Labels are bounded: a route is its configured template, never a concrete
path, and a reason is one of the gateway's reason ids.

With `gateway serve --workers N`, PROMETHEUS_MULTIPROC_DIR is set for every
worker: prometheus_client then keeps the values in files there, and the one
worker with the admin listener exports the sum over all of them.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess

from gateway.observe.decision_log import DecisionRecord

# Decision and upstream times, in seconds, from 50 microseconds to 30 seconds.
_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gateway_requests", "Requests by route, decision and status.",
            ("route", "decision", "status"), registry=self.registry,
        )
        self.decision_seconds = Histogram(
            "gateway_decision_seconds",
            "Time from a request's arrival to its decision.",
            buckets=_BUCKETS, registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_seconds",
            "Time from the decision to the end of the upstream's response.",
            buckets=_BUCKETS, registry=self.registry,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors", "Upstream failures by reason id.",
            ("reason",), registry=self.registry,
        )
        self.reloads = Counter(
            "gateway_reloads", "Reloads of the config and policy files by result.",
            ("result",), registry=self.registry,
        )
        self.open_streams = Gauge(
            "gateway_open_streams", "WebSockets and event streams open now.",
            registry=self.registry, multiprocess_mode="livesum",
        )
        # labels() takes a lock and checks every value; the labelled counters
        # of the few (route, decision, status) triples in use are kept here.
        self._request_counters: dict[tuple[str, str, int], Counter] = {}

    def export_registry(self) -> CollectorRegistry:
        """Return the registry to export: this process's, or every worker's."""
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            return self.registry
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry

    def observe(self, record: DecisionRecord) -> None:
        """Count one finished request from its decision record."""
        key = (record.route or "none", record.decision, record.status)
        counter = self._request_counters.get(key)
        if counter is None:
            counter = self.requests.labels(key[0], key[1], str(key[2]))
            self._request_counters[key] = counter
        counter.inc()
        if record.decision_ms is not None:
            self.decision_seconds.observe(record.decision_ms / 1000)
            self.upstream_seconds.observe(
                max(0.0, record.duration_ms - record.decision_ms) / 1000
            )
        if record.reason.startswith(("upstream_", "resolver_")):
            self.upstream_errors.labels(record.reason).inc()
