"""``Metrics``: the Prometheus metrics of the API's requests, and of the server's state, through
``prometheus_client`` in a registry of the application's own.

Per request: a count by endpoint, model, deployment and status; latency and time to first
token; tokens and cost by model (and by key with ``per_key``). Read when scraped, at no cost to
requests: requests in flight, each deployment's health, the built-in engine's sequences, the
ledger's rows not yet in the database.

The labelled children a request touches are looked up once per combination of labels and kept:
``labels()`` takes a lock and builds a key on every call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from llmrelay.observe.ended import Ended
from llmrelay.router.router import Router
from llmrelay.store.ledger import Ledger

# the ``_created`` series of each counter: twice the lines, which nobody here reads
disable_created_metrics()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: seconds: from a cached answer on loopback to a long generation
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_TOKEN_KINDS = ("prompt", "completion", "cached_prompt", "cache_write")


class Metrics:
    def __init__(
        self, router: Router, ledger: Ledger, in_flight: Callable[[], int], *, per_key: bool
    ) -> None:
        self.registry = registry = CollectorRegistry()
        self._requests = Counter(
            "llmrelay_requests",
            "API requests, by how they ended.",
            ["endpoint", "model", "deployment", "status"],
            registry=registry,
        )
        self._latency = Histogram(
            "llmrelay_request_duration_seconds",
            "Time from a request's arrival to its last byte.",
            ["endpoint", "model"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._ttft = Histogram(
            "llmrelay_time_to_first_token_seconds",
            "Time from a stream's request to its first generated text.",
            ["endpoint", "model"],
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self._tokens = Counter(
            "llmrelay_tokens", "Tokens used, by kind.", ["model", "kind"], registry=registry
        )
        self._cost = Counter(
            "llmrelay_cost_usd", "What requests cost, in US dollars.", ["model"], registry=registry
        )
        self._unpriced = Counter(
            "llmrelay_unpriced_requests",
            "Requests that used tokens of a model with no price.",
            ["model"],
            registry=registry,
        )
        self._per_key = per_key
        if per_key:
            self._key_tokens = Counter(
                "llmrelay_key_tokens",
                "Tokens used, by key.",
                ["key_id", "model", "kind"],
                registry=registry,
            )
            self._key_cost = Counter(
                "llmrelay_key_cost_usd",
                "What requests cost, by key, in US dollars.",
                ["key_id", "model"],
                registry=registry,
            )
        Gauge(
            "llmrelay_requests_in_flight", "Admitted requests not ended yet.", registry=registry
        ).set_function(in_flight)
        registry.register(_StateCollector(router, ledger))
        self._children: dict[tuple[Any, ...], Any] = {}

    def __call__(self, ended: Ended, request_id: str) -> None:
        outcome = ended.outcome
        model = outcome.model_requested if outcome is not None else ""
        deployment = (outcome.deployment if outcome is not None else None) or ""
        key = (ended.endpoint, model, deployment, ended.status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = self._made(ended.endpoint, model, deployment, key[3])
        count, latency, ttft, tokens, cost, unpriced = children
        count.inc()
        latency.observe(ended.latency_ms / 1000)
        if outcome is None:
            return
        if outcome.ttft_ms is not None:
            ttft.observe(outcome.ttft_ms / 1000)
        usage = outcome.usage
        if usage is not None:
            used = (
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.cache_write_tokens,
            )
            for child, n in zip(tokens, used, strict=True):
                if n:
                    child.inc(n)
            if outcome.cost is None:
                unpriced.inc()
            elif outcome.cost:
                cost.inc(outcome.cost / 1e9)
            if self._per_key:
                self._by_key(outcome.key_id or "config", model, used, outcome.cost)

    def _made(self, endpoint: str, model: str, deployment: str, status: int) -> tuple[Any, ...]:
        return (
            self._requests.labels(endpoint, model, deployment, str(status)),
            self._latency.labels(endpoint, model),
            self._ttft.labels(endpoint, model),
            [self._tokens.labels(model, kind) for kind in _TOKEN_KINDS],
            self._cost.labels(model),
            self._unpriced.labels(model),
        )

    def _by_key(self, key_id: str, model: str, used: tuple[int, ...], cost: int | None) -> None:
        for kind, n in zip(_TOKEN_KINDS, used, strict=True):
            if n:
                self._key_tokens.labels(key_id, model, kind).inc(n)
        if cost:
            self._key_cost.labels(key_id, model).inc(cost / 1e9)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` to anyone on a port of its own, from a thread (the scrape reads
        counters and the router's state, which no lock guards: a snapshot)."""
        start_http_server(port, addr=host, registry=self.registry)


class _StateCollector(Collector):
    """What is read when scraped: deployments, the engine, the ledger."""

    def __init__(self, router: Router, ledger: Ledger) -> None:
        self._router = router
        self._ledger = ledger

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["model", "deployment"]
        resting = GaugeMetricFamily(
            "llmrelay_deployment_resting",
            "1 while a deployment rests after failures.",
            labels=labels,
        )
        failures = GaugeMetricFamily(
            "llmrelay_deployment_failures_in_a_row",
            "A deployment's failures in a row.",
            labels=labels,
        )
        in_flight = GaugeMetricFamily(
            "llmrelay_deployment_in_flight", "Requests a deployment is answering.", labels=labels
        )
        running = GaugeMetricFamily(
            "llmrelay_engine_running_sequences",
            "Sequences the built-in engine decodes.",
            labels=labels,
        )
        waiting = GaugeMetricFamily(
            "llmrelay_engine_waiting_sequences",
            "Sequences waiting for the built-in engine.",
            labels=labels,
        )
        for model, deployments in self._router.health().items():
            for health in deployments:
                at = [model, health["deployment"]]
                resting.add_metric(at, 1.0 if health["state"] == "resting" else 0.0)
                failures.add_metric(at, health["failures_in_a_row"])
                in_flight.add_metric(at, health["in_flight"])
                if sequences := health.get("sequences"):
                    running.add_metric(at, sequences["running"])
                    waiting.add_metric(at, sequences["waiting"])
        yield from (resting, failures, in_flight, running, waiting)
        memory, on_disk = self._ledger.unwritten()
        yield GaugeMetricFamily(
            "llmrelay_ledger_unwritten_rows",
            "Usage rows in memory not yet written to the database.",
            value=memory,
        )
        yield GaugeMetricFamily(
            "llmrelay_ledger_spool_bytes",
            "Bytes of usage rows waiting on disk for the database.",
            value=on_disk,
        )
