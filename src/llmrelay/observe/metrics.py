"""``Metrics``: the Prometheus metrics of the API's requests, and of the server's state.

A request adds to plain counts kept here, by label values: a list of numbers looked up once per
request (no lock: only the event loop writes them). ``prometheus_client`` turns them into its
metric families when scraped (a custom collector, in a registry of the application's own) and
writes the exposition; its own ``Counter.inc`` and ``Histogram.observe`` take a lock and check
their state on every call, which a request need not pay for. Read at scrape time, at no cost to
requests: requests in flight, each deployment's health, the built-in engine's sequences, the
ledger's rows not yet in the database.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from llmrelay.observe.ended import Ended
from llmrelay.router.router import Router
from llmrelay.store.ledger import Ledger

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: seconds: from a cached answer on loopback to a long generation
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TOKEN_KINDS = ("prompt", "completion", "cached_prompt", "cache_write")


class _Histogram:
    """A histogram's counts: one per bucket (and one past the last), and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value

    def buckets(self) -> list[tuple[str, float]]:
        """Cumulative, as Prometheus has them, ``+Inf`` last."""
        edges = [*map(floatToGoString, self.bounds), "+Inf"]
        return list(zip(edges, accumulate(self.counts), strict=True))


class _Model:
    """What one model's requests used: tokens of each kind, nano-dollars, unpriced requests."""

    __slots__ = ("cost", "tokens", "unpriced")

    def __init__(self) -> None:
        self.tokens = [0, 0, 0, 0]  # in the order of TOKEN_KINDS
        self.cost = 0
        self.unpriced = 0


class Metrics:
    def __init__(
        self, router: Router, ledger: Ledger, in_flight: Callable[[], int], *, per_key: bool
    ) -> None:
        self._per_key = per_key
        #: by (endpoint, model, deployment, status): [requests]
        self.requests: dict[tuple[str, str, str, int], list[int]] = {}
        #: by (endpoint, model)
        self.latency: dict[tuple[str, str], _Histogram] = {}
        self.ttft: dict[tuple[str, str], _Histogram] = {}
        self.models: dict[str, _Model] = {}
        self.keys: dict[tuple[str, str], _Model] = {}  # by (key id, model), with per_key
        self.registry = CollectorRegistry()
        self.registry.register(_RequestCollector(self))
        self.registry.register(_StateCollector(router, ledger, in_flight))

    def __call__(self, ended: Ended, request_id: str) -> None:
        outcome = ended.outcome
        model = outcome.model_requested if outcome is not None else ""
        deployment = (outcome.deployment if outcome is not None else None) or ""
        key = (ended.endpoint, model, deployment, ended.status)
        if (count := self.requests.get(key)) is None:
            count = self.requests[key] = [0]
        count[0] += 1
        where = (ended.endpoint, model)
        if (latency := self.latency.get(where)) is None:
            latency = self.latency[where] = _Histogram(LATENCY_BUCKETS)
        latency.observe(ended.latency_ms / 1000)
        if outcome is None:
            return
        if outcome.ttft_ms is not None:
            if (ttft := self.ttft.get(where)) is None:
                ttft = self.ttft[where] = _Histogram(TTFT_BUCKETS)
            ttft.observe(outcome.ttft_ms / 1000)
        usage = outcome.usage
        if usage is None:
            return
        used = self.models.get(model) or self.models.setdefault(model, _Model())
        mine = None
        if self._per_key:
            by = (outcome.key_id or "config", model)
            mine = self.keys.get(by) or self.keys.setdefault(by, _Model())
        for into in (used, mine) if mine is not None else (used,):
            tokens = into.tokens
            tokens[0] += usage.prompt_tokens
            tokens[1] += usage.completion_tokens
            tokens[2] += usage.cached_tokens
            tokens[3] += usage.cache_write_tokens
            if outcome.cost is None:
                into.unpriced += 1
            else:
                into.cost += outcome.cost

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int) -> None:
        """Serve ``/metrics`` to anyone on a port of its own, from a thread (a scrape reads
        counts that the event loop writes meanwhile: a snapshot, each number whole)."""
        start_http_server(port, addr=host, registry=self.registry)


class _RequestCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        metrics = self._metrics
        requests = CounterMetricFamily(
            "llmrelay_requests",
            "API requests, by how they ended.",
            labels=["endpoint", "model", "deployment", "status"],
        )
        for (endpoint, model, deployment, status), (count,) in list(metrics.requests.items()):
            requests.add_metric([endpoint, model, deployment, str(status)], count)
        yield requests
        yield _histograms(
            "llmrelay_request_duration_seconds",
            "Time from a request's arrival to its last byte.",
            metrics.latency,
        )
        yield _histograms(
            "llmrelay_time_to_first_token_seconds",
            "Time from a stream's request to its first generated text.",
            metrics.ttft,
        )
        yield from _usage("llmrelay", "", [], [((m,), u) for m, u in list(metrics.models.items())])
        if metrics.keys:
            yield from _usage("llmrelay_key", ", by key", ["key_id"], list(metrics.keys.items()))


def _histograms(name: str, documentation: str, kept: dict[tuple[str, str], _Histogram]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["endpoint", "model"])
    for (endpoint, model), histogram in list(kept.items()):
        family.add_metric([endpoint, model], histogram.buckets(), histogram.sum)
    return family


def _usage(
    prefix: str, by: str, labels: list[str], kept: Iterable[tuple[tuple[str, ...], _Model]]
) -> Iterator[Metric]:
    """Tokens, cost and unpriced requests of each model (and key)."""
    tokens = CounterMetricFamily(
        f"{prefix}_tokens", f"Tokens used{by}, by kind.", labels=[*labels, "model", "kind"]
    )
    cost = CounterMetricFamily(
        f"{prefix}_cost_usd", f"What requests cost{by}, in US dollars.", labels=[*labels, "model"]
    )
    unpriced = CounterMetricFamily(
        f"{prefix}_unpriced_requests",
        f"Requests that used tokens of a model with no price{by}.",
        labels=[*labels, "model"],
    )
    for at, used in kept:
        for kind, count in zip(TOKEN_KINDS, used.tokens, strict=True):
            tokens.add_metric([*at, kind], count)
        cost.add_metric(list(at), used.cost / 1e9)
        unpriced.add_metric(list(at), used.unpriced)
    yield from (tokens, cost, unpriced)


class _StateCollector(Collector):
    """What is read when scraped: requests in flight, deployments, the engine, the ledger."""

    def __init__(self, router: Router, ledger: Ledger, in_flight: Callable[[], int]) -> None:
        self._router = router
        self._ledger = ledger
        self._in_flight = in_flight

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "llmrelay_requests_in_flight", "Admitted requests not ended yet.", self._in_flight()
        )
        labels = ["model", "deployment"]
        gauges: dict[str, Any] = {
            name: GaugeMetricFamily(f"llmrelay_{name}", documentation, labels=labels)
            for name, documentation in (
                ("deployment_resting", "1 while a deployment rests after failures."),
                ("deployment_failures_in_a_row", "A deployment's failures in a row."),
                ("deployment_in_flight", "Requests a deployment is answering."),
                ("engine_running_sequences", "Sequences the built-in engine decodes."),
                ("engine_waiting_sequences", "Sequences waiting for the built-in engine."),
            )
        }
        for model, deployments in self._router.health().items():
            for health in deployments:
                at = [model, health["deployment"]]
                resting = 1.0 if health["state"] == "resting" else 0.0
                gauges["deployment_resting"].add_metric(at, resting)
                gauges["deployment_failures_in_a_row"].add_metric(at, health["failures_in_a_row"])
                gauges["deployment_in_flight"].add_metric(at, health["in_flight"])
                if sequences := health.get("sequences"):
                    gauges["engine_running_sequences"].add_metric(at, sequences["running"])
                    gauges["engine_waiting_sequences"].add_metric(at, sequences["waiting"])
        yield from gauges.values()
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
