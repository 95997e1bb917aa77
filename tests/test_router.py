"""The router over real HTTP: several fake upstreams on 127.0.0.1, faults injected per request."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter

import pytest

from hypotez_providers import (
    AllProvidersFailed,
    BadRequest,
    CircuitState,
    InvalidInput,
    Registry,
    RetryPolicy,
    Router,
    Settings,
    StreamInterrupted,
    UnknownModel,
    hookimpl,
)
from hypotez_providers.testing import Fault, closed_port_url

from ._routing import MESSAGES, MODEL, Compatible, build, outcomes

# -- the done-when scenario ------------------------------------------------------------------


def test_a_refusing_first_provider_costs_one_attempt_and_is_skipped_until_its_cooldown_ends(fakes):
    second = fakes("second")
    router, clock = build({"first": closed_port_url(), "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert (answer.text, answer.provider) == ("answer from second", "second")
    assert outcomes(answer.attempts) == [
        ("first", "failed", "ConnectionRefused"),
        ("second", "ok", None),
    ]
    assert clock.sleeps == [], "a refused connection is not retried"

    again = router.complete(MODEL, MESSAGES)
    assert outcomes(again.attempts) == [("first", "skipped", None), ("second", "ok", None)]
    assert "circuit open" in again.attempts[0].message

    clock.now += 10.1  # the default cooldown
    probe = router.complete(MODEL, MESSAGES)
    assert outcomes(probe.attempts)[0] == ("first", "failed", "ConnectionRefused")


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=503), "Overloaded"),
        (Fault(status=500), "ServerError"),
        (Fault(status=429, headers={"Retry-After": "3"}), "RateLimited"),
    ],
)
def test_transient_failures_are_retried_then_failed_over_and_the_circuit_opens(fakes, fault, error):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = fault
    router, clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "second"
    assert outcomes(answer.attempts) == [("first", "failed", error)] * 2 + [("second", "ok", None)]
    assert len(first.requests) == 2
    assert len(clock.sleeps) == 1
    if fault.headers:
        assert clock.sleeps[0] >= 3, "the wait honours Retry-After"
    else:
        assert 0.25 <= clock.sleeps[0] <= 0.5, "backoff 0.25 s plus up to 0.25 s of jitter"
    router.complete(MODEL, MESSAGES)
    assert len(first.requests) == 2, "skipped while its circuit is open"
    [health] = [h for h in router.health() if h.provider == "first"]
    assert health.state is CircuitState.OPEN and health.failures == 2


def test_a_transient_failure_that_passes_is_answered_by_the_same_provider(fakes):
    first, second = fakes("first"), fakes("second")
    first.faults.append(Fault(status=503))
    router, _clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "first"
    assert outcomes(answer.attempts) == [("first", "failed", "Overloaded"), ("first", "ok", None)]
    assert second.requests == []


def test_a_retry_after_longer_than_the_deadline_moves_on_without_waiting(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=429, headers={"Retry-After": "30"})
    router, clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES, timeout=5)
    assert answer.provider == "second"
    assert clock.sleeps == [] and len(first.requests) == 1


@pytest.mark.parametrize(
    ("fault", "error", "requests_at_first"),
    [
        (Fault(status=401), "AuthenticationFailed", 1),
        (Fault(status=404), "NotFound", 1),
        (Fault(malformed=True), "MalformedResponse", 1),
        (Fault(html=True), "ServerError", 2),
        (Fault(drop_on_connect=True), "ConnectionFailed", 2),
        (
            Fault(
                status=400,
                body='{"error": {"message": "maximum context length is 8192 tokens", "code": "context_length_exceeded"}}',
            ),
            "ContextLengthExceeded",
            1,
        ),
    ],
)
def test_non_stream_fault_matrix(fakes, fault, error, requests_at_first):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = fault
    router, _ = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "second" and answer.text == "answer from second"
    assert outcomes(answer.attempts)[0] == ("first", "failed", error)
    assert len(first.requests) == requests_at_first


def test_a_hanging_provider_times_out_and_the_next_answers(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=2)
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings="[providers.first]\ntimeout = 0.2\nmax_attempts = 1\n",
    )
    started = time.monotonic()
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "second"
    assert outcomes(answer.attempts)[0] == ("first", "failed", "ProviderTimeout")
    assert time.monotonic() - started < 1.5


def test_a_callers_bad_request_is_raised_at_once_without_trying_others(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=400)
    router, _ = build({"first": first.url, "second": second.url})
    with pytest.raises(BadRequest) as caught:
        router.complete(MODEL, MESSAGES)
    assert caught.value.provider == "first" and caught.value.status == 400
    assert second.requests == [] and len(first.requests) == 1


def test_when_every_provider_fails_one_error_lists_every_attempt(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=503)
    second.fail_every_request = Fault(status=401)
    router, _ = build({"first": first.url, "second": second.url, "third": closed_port_url()})
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MODEL, MESSAGES)
    error = caught.value
    assert outcomes(error.attempts) == [
        ("first", "failed", "Overloaded"),
        ("first", "failed", "Overloaded"),
        ("second", "failed", "AuthenticationFailed"),
        ("third", "failed", "ConnectionRefused"),
    ]
    text = str(error)
    assert "first (gpt-4o-mini): failed, Overloaded, HTTP 503" in text
    assert "third (gpt-4o-mini): failed, ConnectionRefused" in text
    assert all(a.duration >= 0 for a in error.attempts)


# -- streaming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault(status=503),
        Fault(status=429, headers={"Retry-After": "1"}),
        Fault(html=True),
        Fault(drop_after=0),
        Fault(truncate_after=0),
        Fault(error_event_after=0),
        Fault(drop_on_connect=True),
    ],
)
def test_a_stream_whose_first_provider_dies_before_its_first_chunk_is_answered_by_the_second(
    fakes, fault
):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = fault
    router, _ = build({"first": first.url, "second": second.url})
    stream = router.stream(MODEL, MESSAGES)
    text = "".join(chunk.text for chunk in stream)
    assert text == "answer from second", "no piece of the failed provider is spliced in"
    assert stream.provider == "second"
    assert stream.attempts[0].provider == "first" and stream.attempts[0].outcome == "failed"
    assert stream.attempts[-1].provider == "second" and stream.attempts[-1].outcome == "ok"


def test_a_stream_with_one_malformed_event_is_answered_whole_by_its_first_provider(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(malformed=True)
    router, _ = build({"first": first.url, "second": second.url})
    stream = router.stream(MODEL, MESSAGES)
    assert "".join(chunk.text for chunk in stream) == "answer from first"
    assert [(a.provider, a.outcome) for a in stream.attempts] == [("first", "ok")]
    assert second.requests == []


def test_a_stream_from_a_refusing_provider_fails_over(fakes):
    second = fakes("second")
    router, _ = build({"first": closed_port_url(), "second": second.url})
    assert "".join(c.text for c in router.stream(MODEL, MESSAGES)) == "answer from second"


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        (Fault(drop_after=2), "ConnectionFailed"),
        (Fault(truncate_after=2), "MalformedResponse"),
        (Fault(error_event_after=2), "ServerError"),
    ],
)
def test_a_stream_failing_after_its_first_chunk_raises_with_the_text_received(fakes, fault, cause):
    first, second = fakes("first"), fakes("second")
    first.faults.append(fault)
    router, _ = build({"first": first.url, "second": second.url})
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in router.stream(MODEL, MESSAGES):
            received.append(chunk.text)
    error = caught.value
    assert (error.provider, type(error.cause).__name__) == ("first", cause)
    assert error.text == "".join(received) == "answer from"
    assert second.requests == [], "never spliced with another provider's answer"


def test_a_provider_that_cannot_stream_answers_a_stream_in_one_chunk(fakes):
    only = fakes("plain")
    router, _ = build({"plain": only.url}, plugins=[Compatible("plain", stream=False)])
    chunks = [c for c in router.stream(MODEL, MESSAGES) if c.text]
    assert [c.text for c in chunks] == ["answer from plain"]
    assert "stream" not in only.requests[0].json


def test_a_slow_first_chunk_falls_over_within_the_first_chunk_timeout(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=3)
    router, _ = build({"first": first.url, "second": second.url}, clock=None)
    router._clock = time.monotonic  # real time: the HTTP read timeout is real
    started = time.monotonic()
    stream = router.stream(MODEL, MESSAGES, first_chunk_timeout=0.3, max_attempts=1)
    assert "".join(c.text for c in stream) == "answer from second"
    assert time.monotonic() - started < 1.5


# -- deadlines -------------------------------------------------------------------------------


@pytest.mark.parametrize("streamed", [False, True])
def test_the_overall_timeout_covers_retries_and_fallbacks(fakes, streamed):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=5)
    second.fail_every_request = Fault(delay=5)
    registry = Registry(
        settings=Settings(),
        load_entry_points=False,
        environ={"HYPOTEZ_FIRST_BASE_URL": first.url, "HYPOTEZ_SECOND_BASE_URL": second.url},
    )
    registry.register(Compatible("first"))
    registry.register(Compatible("second"))
    router = Router(registry)
    started = time.monotonic()
    with pytest.raises(AllProvidersFailed) as caught:
        if streamed:
            list(router.stream(MODEL, MESSAGES, timeout=0.6))
        else:
            router.complete(MODEL, MESSAGES, timeout=0.6)
    elapsed = time.monotonic() - started
    assert elapsed < 0.6 + 0.3, f"overran its deadline: {elapsed:.2f}s"
    assert any(a.error == "ProviderTimeout" for a in caught.value.attempts)


# -- selection -------------------------------------------------------------------------------


def test_an_alias_maps_to_different_concrete_models_per_provider(fakes):
    small, other = fakes("small", models=["small-1"]), fakes("other", models=["mini-2"])
    plugins = [Compatible("small", models=("small-1",)), Compatible("other", models=("mini-2",))]
    settings = '[aliases]\nfast = ["small:small-1", "other:mini-2"]\n'
    router, _ = build({"small": small.url, "other": other.url}, settings=settings, plugins=plugins)
    small.fail_every_request = Fault(status=401)
    answer = router.complete("fast", MESSAGES)
    assert (answer.provider, answer.model) == ("other", "mini-2")
    assert small.requests[0].json["model"] == "small-1"
    assert other.requests[0].json["model"] == "mini-2"


def test_explicit_routes_then_priority_decide_the_order(fakes):
    a, b, c = fakes("a"), fakes("b"), fakes("c")
    urls = {"a": a.url, "b": b.url, "c": c.url}
    by_priority, _ = build(urls, settings="[providers.c]\npriority = 5\n")
    assert by_priority.complete(MODEL, MESSAGES).provider == "c"
    routed, _ = build(urls, settings=f'[routes]\n"{MODEL}" = ["b", "a"]\n')
    a_and_b = routed.complete(MODEL, MESSAGES)
    assert a_and_b.provider == "b"


def test_pinning_and_chains(fakes):
    a, b = fakes("a"), fakes("b")
    router, _ = build({"a": a.url, "b": b.url})
    assert router.complete(MODEL, MESSAGES, provider="b").provider == "b"
    a.fail_every_request = Fault(status=401)
    answer = router.complete(MODEL, MESSAGES, providers=["a", "b"])
    assert [x.provider for x in answer.attempts] == ["a", "b"]
    with pytest.raises(AllProvidersFailed):
        router.complete(MODEL, MESSAGES, provider="a")


def test_providers_needing_an_unset_key_are_skipped_and_the_attempts_say_so(fakes):
    keyed, free = fakes("keyed", api_key="sk-secret-0123456789abcdef"), fakes("free")
    plugins = [Compatible("keyed", needs_auth=True), Compatible("free")]
    router, _ = build({"keyed": keyed.url, "free": free.url}, plugins=plugins)
    answer = router.complete(MODEL, MESSAGES)
    assert outcomes(answer.attempts) == [("keyed", "skipped", None), ("free", "ok", None)]
    assert "HYPOTEZ_KEYED_API_KEY" in answer.attempts[0].message
    assert keyed.requests == []


def test_an_unknown_model_lists_the_closest_names_before_sending_anything(fakes):
    a = fakes("a")
    router, _ = build({"a": a.url}, settings='[aliases]\nfast = ["a:gpt-4o-mini"]\n')
    with pytest.raises(UnknownModel, match="closest: gpt-4o-mini") as caught:
        router.complete("gpt-4o-mni", MESSAGES)
    assert caught.value.field == "model"
    with pytest.raises(InvalidInput, match="messages"):
        router.stream(MODEL, [])
    assert a.requests == []


# -- health, observers, logs -----------------------------------------------------------------


def test_a_half_open_probe_that_succeeds_closes_the_circuit(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=503)
    router, clock = build({"first": first.url, "second": second.url})
    router.complete(MODEL, MESSAGES)
    first.fail_every_request = None
    clock.now += 11
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "first"
    [health] = [h for h in router.health() if h.provider == "first"]
    assert health.state is CircuitState.CLOSED and health.consecutive_failures == 0


class Recorder:
    def __init__(self):
        self.events = []

    @hookimpl
    def on_attempt_start(self, provider, attempt):
        self.events.append(("start", provider, attempt))

    @hookimpl
    def on_attempt_end(self, provider, outcome, error):
        self.events.append(("end", provider, outcome, type(error).__name__ if error else None))

    @hookimpl
    def on_fallback(self, from_provider, to_provider):
        self.events.append(("fallback", from_provider, to_provider))


def test_observer_plugins_see_attempts_and_fallbacks(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=401)
    router, _ = build({"first": first.url, "second": second.url})
    recorder = Recorder()
    assert router.registry.register(recorder, name="recorder") is None
    router.complete(MODEL, MESSAGES)
    assert recorder.events == [
        ("start", "first", 1),
        ("end", "first", "failed", "AuthenticationFailed"),
        ("fallback", "first", "second"),
        ("start", "second", 1),
        ("end", "second", "ok", None),
    ]


def test_logs_name_providers_and_never_the_key(fakes, caplog):
    key = "sk-secret-0123456789abcdef"
    first, second = fakes("first", api_key="another-key-entirely"), fakes("second")
    plugins = [Compatible("first", needs_auth=True), Compatible("second")]
    router, _ = build(
        {"first": first.url, "second": second.url},
        plugins=plugins,
        environ={"HYPOTEZ_FIRST_API_KEY": key},
    )
    with caplog.at_level(logging.DEBUG, logger="hypotez_providers"):
        answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "second"
    assert "falling back from first to second" in caplog.text
    assert key not in caplog.text and key not in str(answer.attempts)


def test_many_threads_share_one_router_with_random_faults(fakes):
    a, b = fakes("a"), fakes("b")
    router, _ = build({"a": a.url, "b": b.url})
    router._sleep = lambda seconds: None
    rng = random.Random(7)
    choices = [
        None,
        Fault(status=503),
        Fault(status=429),
        Fault(drop_on_connect=True),
        Fault(status=500),
    ]
    for fake in (a, b):
        fake.faults.extend(rng.choice(choices) or Fault() for _ in range(400))
    results, errors = [], []
    lock = threading.Lock()

    def worker():
        for _ in range(15):
            try:
                answer = router.complete(MODEL, MESSAGES)
                with lock:
                    results.append(answer)
            except AllProvidersFailed as error:
                with lock:
                    errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) + len(errors) == 8 * 15
    assert all(r.text == f"answer from {r.provider}" for r in results)
    tried = Counter(
        x.provider
        for call in [r.attempts for r in results] + [e.attempts for e in errors]
        for x in call
        if x.outcome != "skipped"
    )
    assert tried["a"] == len(a.requests) and tried["b"] == len(b.requests)
    for health in router.health():
        assert health.successes + health.failures == tried[health.provider]


def test_the_retry_policy_is_settable_per_provider_and_per_call(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=503)
    settings = (
        "[health]\nfailure_threshold = 5\n"
        "[providers.first.retry]\nattempts = 3\ninitial_backoff = 1\njitter = 0\n"
    )
    router, clock = build({"first": first.url, "second": second.url}, settings=settings)
    router.complete(MODEL, MESSAGES)
    assert len(first.requests) == 3 and clock.sleeps == [1.0, 2.0]
    clock.now += 11
    per_call = RetryPolicy(attempts=2, initial_backoff=0.5, jitter=0)
    router.complete(MODEL, MESSAGES, retry=per_call)
    assert len(first.requests) == 5 and clock.sleeps[2:] == [0.5]


def test_a_hanging_provider_is_skipped_on_the_following_calls(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=2)
    router, _ = build(
        {"first": first.url, "second": second.url}, settings="[providers.first]\ntimeout = 0.2\n"
    )
    answer = router.complete(MODEL, MESSAGES)
    # A silent provider is not retried in place: one timeout, then the next provider.
    assert outcomes(answer.attempts) == [
        ("first", "failed", "ProviderTimeout"),
        ("second", "ok", None),
    ]
    started = time.monotonic()
    again = router.complete(MODEL, MESSAGES)
    # Failed within its cooldown: it waits its turn behind the healthy one, for that long only.
    assert outcomes(again.attempts) == [("second", "ok", None)]
    assert time.monotonic() - started < 0.15, "the hanging provider cost nothing this time"
