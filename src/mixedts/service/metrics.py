"""Prometheus metrics (prometheus-client), in a registry of the service's own.

``GET /metrics`` serves, in the Prometheus text format: requests and their latency per
endpoint, decisions, rewards joined (by outcome), the batch sizes and commit times of the group
commit, pending events and the model version.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401  (re-export)
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: the endpoints requests are labelled with (anything else is "other")
ENDPOINTS = ("/rank", "/reward", "/actions", "/health", "/metrics", "/policy", "/events", "/",
             "/docs", "/openapi.json")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def endpoint_of(path: str) -> str:
    """The label of a request path (``/actions/7`` → ``/actions``).

    >>> endpoint_of("/actions/7"), endpoint_of("/rank"), endpoint_of("/wp-admin")
    ('/actions', '/rank', 'other')
    """
    if path in ENDPOINTS:
        return path
    if path.startswith("/actions/"):
        return "/actions"
    return "other"


class ServiceMetrics:
    """The service's counters, gauges and histograms."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("mixedts_requests", "HTTP requests", ["endpoint", "status"],
                                registry=r)
        self.latency = Histogram("mixedts_request_seconds", "Request latency",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("mixedts_decisions", "Decisions stored", registry=r)
        self.rewards = Counter("mixedts_rewards_joined", "Rewards joined to their decision",
                               ["outcome"], registry=r)
        self.batch = Histogram("mixedts_batch_size", "Requests per group commit",
                               buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512), registry=r)
        self.commit = Histogram("mixedts_commit_seconds", "Time of one group commit",
                                buckets=LATENCY_BUCKETS, registry=r)
        self.pending = Gauge("mixedts_pending_events",
                             "Decisions of this process awaiting a reward within the TTL",
                             registry=r)
        self.version = Gauge("mixedts_model_version",
                             "Changes (rewards, catalogue) in the posterior", registry=r)
        self.snapshots = Counter("mixedts_snapshots", "Snapshots written", registry=r)
        self._cache: dict[tuple[str, int], tuple] = {}

    def observe(self, path: str, status: int, seconds: float) -> None:
        key = (path, status)
        pair = self._cache.get(key)
        if pair is None:  # label lookups are the slow part: once per (endpoint, status)
            ep = endpoint_of(path)
            pair = self._cache[key] = (self.requests.labels(ep, str(status)),
                                       self.latency.labels(ep))
            if len(self._cache) > 1024:
                self._cache.clear()
        pair[0].inc()
        pair[1].observe(seconds)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class Timed:
    """ASGI middleware: count every request and time it, by endpoint and status."""

    def __init__(self, app, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500

        async def watched(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.observe(scope["path"], status, time.perf_counter() - start)
