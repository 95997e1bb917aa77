"""The gateway's Prometheus metrics: calls, attempts, failures, fallbacks, latency, circuits.

:class:`GatewayMetrics` hears the router through its observer hooks (attempts, failures,
fallbacks, per-provider durations) and the gateway app through :meth:`~GatewayMetrics.call_started`
/ :meth:`~GatewayMetrics.call_finished` (whole calls, in flight) and
:meth:`~GatewayMetrics.shed`; :meth:`~GatewayMetrics.render` gives ``GET /metrics``. Every
name starts with ``hypotez_``. Label values are bounded: provider names from the registry,
protocols, ``"true"``/``"false"``, outcome classes and error class names; never a model name,
a key or anything a client wrote.

Several worker processes: when ``PROMETHEUS_MULTIPROC_DIR`` is set, counters, histograms and
the in-flight gauge (summed over live workers) are kept in that directory, so any worker's
``/metrics`` reports all of them; call :func:`worker_exited` when a worker exits (gunicorn's
``child_exit``). The circuit state stays this worker's own: each worker has its own breaker
until circuits are shared.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..health import CircuitState
from ..hookspecs import hookimpl
from ..router import Router

__all__ = [
    "BUCKETS",
    "MULTIPROC_DIR_VARIABLE",
    "OUTCOMES",
    "PROTOCOLS",
    "CallToken",
    "GatewayMetrics",
    "worker_exited",
]

#: The environment variable that turns on multi-process mode (prometheus_client's own).
MULTIPROC_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
#: The protocols a call can speak (the ``protocol`` label).
PROTOCOLS = ("openai", "anthropic")
#: A finished call's ``outcome`` label: answered; failed (``error``, or finer by status class:
#: the caller's fault, ours or the providers'); a stream that failed after its first byte; a
#: client that went away. Any other value is counted as "other".
OUTCOMES = ("ok", "error", "4xx", "5xx", "interrupted", "disconnected", "other")
#: Histogram buckets in seconds, from a cached 5 ms answer to a two-minute generation.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

_STREAM = {True: "true", False: "false"}
_UNKNOWN = "unknown"  # an attempt outside a gateway call (another thread, a direct router call)


@dataclass(frozen=True, slots=True)
class _CallKind:
    """The metric children of one (protocol, stream) pair, bound once."""

    stream: bool
    in_flight: Gauge
    latency: Histogram
    outcomes: dict[str, Counter]


@dataclass(frozen=True, slots=True)
class CallToken:
    """One call in flight, from :meth:`GatewayMetrics.call_started`; give it back once."""

    kind: _CallKind
    started: float


class _Observer:
    """The router's observer plugin: attempts, failures, fallbacks and their durations."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._metrics = metrics

    @hookimpl
    def on_attempt_end(
        self, provider: str, outcome: str, duration: float, error: Exception | None
    ) -> None:
        """Count the attempt (and its failure by kind) and observe its duration."""
        self._metrics._attempt_ended(provider, outcome, duration, error)

    @hookimpl
    def on_fallback(self, from_provider: str, to_provider: str) -> None:
        """Count a move from one provider to the next."""
        self._metrics._fallback(from_provider, to_provider)


class _CircuitCollector(Collector):
    """Reads ``router.health()`` at scrape time: one sample per provider and circuit state."""

    def __init__(self, router: Router) -> None:
        self._router = router

    def describe(self) -> Iterable[Metric]:
        """Nothing up front: the providers are known only at scrape time."""
        return ()

    def collect(self) -> Iterable[Metric]:
        """``hypotez_circuit_state`` and ``hypotez_circuit_consecutive_failures`` now."""
        state = GaugeMetricFamily(
            "hypotez_circuit_state",
            "Circuit state per provider in this worker: 1 for the current state, else 0.",
            labels=("provider", "state"),
        )
        failures = GaugeMetricFamily(
            "hypotez_circuit_consecutive_failures",
            "Failures in a row per provider in this worker (the circuit opens at a threshold).",
            labels=("provider",),
        )
        for health in self._router.health():
            for each in CircuitState:
                state.add_metric((health.provider, each.value), 1.0 if each is health.state else 0)
            failures.add_metric((health.provider,), health.consecutive_failures)
        return (state, failures)


class GatewayMetrics:
    """The gateway's metrics for one router, in a registry of their own (never the global one).

    Building it registers an observer plugin on ``router.registry``; :meth:`close` removes it.
    The app brackets each call with :meth:`call_started` and :meth:`call_finished` in the
    thread that runs it (streams included: the thread that iterates the response), which is
    how an attempt is known to belong to a stream (its duration then is the time to first
    chunk). Counters and histograms (``_total``, ``_seconds``):

    - ``hypotez_calls_total{protocol,stream,outcome}``, ``hypotez_call_duration_seconds
      {protocol,stream}`` (the whole call, last byte included), ``hypotez_calls_in_flight
      {protocol}``, ``hypotez_requests_shed_total{protocol}``;
    - ``hypotez_attempts_total{provider,outcome}`` (outcome ``ok``/``failed``),
      ``hypotez_failures_total{provider,kind}`` (kind: the ProviderError class name),
      ``hypotez_fallbacks_total{from_provider,to_provider}``;
    - ``hypotez_attempt_duration_seconds{provider,stream}``: a whole answer's attempt until
      its answer or failure, a stream's until its first chunk or failure (``stream="unknown"``
      for an attempt outside a gateway call); ``hypotez_time_to_first_chunk_seconds
      {provider}``: stream attempts that got their first chunk;
    - ``hypotez_circuit_state{provider,state}`` (1 for the current state of ``closed``,
      ``open``, ``half_open``, else 0) and ``hypotez_circuit_consecutive_failures{provider}``,
      read from ``router.health()`` at scrape time.

    A failure after a stream's first chunk reaches no observer hook: it shows as the call's
    ``interrupted`` outcome only. ``registry`` is the private CollectorRegistry behind
    :meth:`render`; ``multiprocess`` is true when ``PROMETHEUS_MULTIPROC_DIR`` was set (see
    the module's notes). Cost: about 6 µs per call of one attempt (12 µs in multi-process
    mode), hooks included; :meth:`render` about 1.5 ms.
    """

    def __init__(self, router: Router) -> None:
        directory = os.environ.get(MULTIPROC_DIR_VARIABLE) or None
        self.multiprocess = directory is not None
        self._router = router
        self.registry = CollectorRegistry()
        # In multi-process mode the values live in files that MultiProcessCollector reads, so
        # the metrics themselves join no registry.
        owner: CollectorRegistry | None = self.registry
        if directory is not None:
            _use_multiprocess_values()
            multiprocess.MultiProcessCollector(self.registry, path=directory)  # type: ignore[no-untyped-call]
            owner = None
        self._calls = Counter(
            "hypotez_calls",
            "Calls the gateway answered, by protocol, streamed or not, and outcome.",
            ("protocol", "stream", "outcome"),
            registry=owner,
        )
        self._call_seconds = Histogram(
            "hypotez_call_duration_seconds",
            "Whole calls through the gateway, first byte in to last byte out.",
            ("protocol", "stream"),
            registry=owner,
            buckets=BUCKETS,
        )
        self._in_flight = Gauge(
            "hypotez_calls_in_flight",
            "Calls being answered now (summed over live workers).",
            ("protocol",),
            registry=owner,
            multiprocess_mode="livesum",
        )
        self._shed = Counter(
            "hypotez_requests_shed",
            "Requests refused with 503 over the concurrency limit.",
            ("protocol",),
            registry=owner,
        )
        self._attempts = Counter(
            "hypotez_attempts",
            "Attempts at a provider, by outcome (ok or failed).",
            ("provider", "outcome"),
            registry=owner,
        )
        self._failures = Counter(
            "hypotez_failures",
            "Failed attempts at a provider, by error kind (the ProviderError class name).",
            ("provider", "kind"),
            registry=owner,
        )
        self._fallbacks = Counter(
            "hypotez_fallbacks",
            "Calls that gave up on a provider and moved on to the next.",
            ("from_provider", "to_provider"),
            registry=owner,
        )
        self._attempt_seconds = Histogram(
            "hypotez_attempt_duration_seconds",
            "Attempts at a provider: until the answer or failure (a stream's first chunk).",
            ("provider", "stream"),
            registry=owner,
            buckets=BUCKETS,
        )
        self._first_chunk_seconds = Histogram(
            "hypotez_time_to_first_chunk_seconds",
            "Streamed attempts at a provider, until their first chunk.",
            ("provider",),
            registry=owner,
            buckets=BUCKETS,
        )
        self.registry.register(_CircuitCollector(router))
        self._kinds = {
            (protocol, stream): _CallKind(
                stream=stream,
                in_flight=self._in_flight.labels(protocol),
                latency=self._call_seconds.labels(protocol, _STREAM[stream]),
                outcomes={
                    outcome: self._calls.labels(protocol, _STREAM[stream], outcome)
                    for outcome in OUTCOMES
                },
            )
            for protocol in PROTOCOLS
            for stream in (False, True)
        }
        self._shed_by_protocol = {protocol: self._shed.labels(protocol) for protocol in PROTOCOLS}
        # Children bound on first use, so a hook costs dictionary look-ups, not labels() calls.
        self._by_attempt: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._by_failure: dict[tuple[str, str], Counter] = {}
        self._first_chunk: dict[str, Histogram] = {}
        self._by_fallback: dict[tuple[str, str], Counter] = {}
        # Whether the call running in this thread (or context) streams: set by call_started.
        self._current: ContextVar[_CallKind | None] = ContextVar("hypotez_gateway_call")
        self._observer = _Observer(self)
        router.registry.register(self._observer, name=f"hypotez-gateway-metrics-{id(self)}")

    # -- what the app calls ------------------------------------------------------------------

    def call_started(self, protocol: str, stream: bool) -> CallToken:
        """A call began: count it in flight; give the token back to :meth:`call_finished`.

        ``protocol`` is one of :data:`PROTOCOLS` (anything else is a ValueError: a bug in the
        caller, not a new label value). Call it in the thread that will run the router.
        """
        try:
            kind = self._kinds[protocol, stream]
        except KeyError:
            raise ValueError(
                f"protocol must be one of {', '.join(PROTOCOLS)} and stream a bool, "
                f"got {protocol!r}, {stream!r}"
            ) from None
        kind.in_flight.inc()
        self._current.set(kind)
        return CallToken(kind, time.perf_counter())

    def call_finished(self, token: object, outcome: str | int) -> None:
        """The call ended (its last byte sent, or abandoned): count it and its duration.

        ``token`` is :meth:`call_started`'s; ``outcome`` one of :data:`OUTCOMES`, or the HTTP
        status answered (below 400: ok, else its class, ``"4xx"`` or ``"5xx"``). Call it
        exactly once per token.
        """
        if not isinstance(token, CallToken):
            raise TypeError(f"call_finished needs call_started's token, got {token!r}")
        kind = token.kind
        kind.latency.observe(time.perf_counter() - token.started)
        kind.in_flight.dec()
        if isinstance(outcome, int):
            outcome = "ok" if outcome < 400 else ("4xx" if outcome < 500 else "5xx")
        counter = kind.outcomes.get(outcome) or kind.outcomes["other"]
        counter.inc()
        if self._current.get(None) is kind:
            self._current.set(None)

    def shed(self, protocol: str) -> None:
        """A request was refused over the concurrency limit (``protocol`` as for a call)."""
        counter = self._shed_by_protocol.get(protocol)
        if counter is None:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        counter.inc()

    def render(self) -> tuple[bytes, str]:
        """The body and content type of ``GET /metrics`` (Prometheus' text format)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """Stop hearing the router (its observer plugin is unregistered)."""
        manager = self._router.registry.plugin_manager
        if manager.is_registered(self._observer):
            manager.unregister(self._observer)

    # -- what the observer hears -------------------------------------------------------------

    def _attempt_ended(
        self, provider: str, outcome: str, duration: float, error: Exception | None
    ) -> None:
        kind = self._current.get(None)
        stream = _UNKNOWN if kind is None else _STREAM[kind.stream]
        key = (provider, outcome, stream)
        bound = self._by_attempt.get(key)
        if bound is None:
            bound = (
                self._attempts.labels(provider, outcome),
                self._attempt_seconds.labels(provider, stream),
            )
            self._by_attempt[key] = bound
        bound[0].inc()
        bound[1].observe(duration)
        if error is not None:
            failure = (provider, type(error).__name__)
            counter = self._by_failure.get(failure)
            if counter is None:
                counter = self._by_failure[failure] = self._failures.labels(*failure)
            counter.inc()
        elif kind is not None and kind.stream and outcome == "ok":
            histogram = self._first_chunk.get(provider)
            if histogram is None:
                histogram = self._first_chunk[provider] = self._first_chunk_seconds.labels(provider)
            histogram.observe(duration)

    def _fallback(self, from_provider: str, to_provider: str) -> None:
        key = (from_provider, to_provider)
        counter = self._by_fallback.get(key)
        if counter is None:
            counter = self._by_fallback[key] = self._fallbacks.labels(*key)
        counter.inc()


def worker_exited(pid: int) -> None:
    """Forget a dead worker's live gauges (call it from gunicorn's ``child_exit`` hook).

    Does nothing outside multi-process mode. Its counters and histograms are kept: they are
    part of the totals.
    """
    directory = os.environ.get(MULTIPROC_DIR_VARIABLE)
    if directory:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _use_multiprocess_values() -> None:
    """Make new metric values live in the directory's files, whatever the import order was.

    prometheus_client picks file-backed values at import if the variable is set then; the
    gateway sets it when it starts its workers, which may be after that import.
    """
    if values.ValueClass is values.MutexValue:
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
