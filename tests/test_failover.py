"""The failover engine over real HTTP: probes always released, circuits that recover, order
that comes back, Retry-After capped, silent providers not retried in place."""

from __future__ import annotations

import time

import pytest

from hypotez_providers import (
    BadRequest,
    CircuitState,
    InvalidInput,
    RetryPolicy,
    hookimpl,
    openai_chat,
)
from hypotez_providers.testing import Fault

from ._routing import MESSAGES, MODEL, Compatible, build, outcomes

CONTEXT_LENGTH = (
    '{"error": {"message": "This model\'s maximum context length is 8192 tokens.", '
    '"type": "invalid_request_error", "code": "context_length_exceeded"}}'
)


def open_first(router, clock, first):
    """Open ``first``'s circuit, then let its cooldown pass: the next call is its probe."""
    first.fail_every_request = Fault(status=503)
    router.complete(MODEL, MESSAGES)
    assert router.breaker.health("first").state is CircuitState.OPEN
    first.fail_every_request = None
    clock.now += 10.1


class Moody(Compatible):
    """An OpenAI-compatible plugin that raises what it is told to, once, before any request."""

    def __init__(self, name):
        super().__init__(name)
        self.raise_next: BaseException | None = None

    @hookimpl
    def create_completion(self, model, messages, stream, options, context):
        if self.raise_next is not None:
            error, self.raise_next = self.raise_next, None
            raise error
        return openai_chat.chat_completion(context, model, messages, stream, options)


EXITS = ["400", "context length", "plugin InvalidInput", "KeyboardInterrupt"]


@pytest.mark.parametrize(
    ("streamed", "outcome"),
    [(False, exit) for exit in EXITS] + [(True, exit) for exit in [*EXITS, "closed early"]],
)
def test_a_probe_is_released_on_every_exit_path(fakes, streamed, outcome):
    first, second = fakes("first"), fakes("second")
    moody = Moody("first")
    router, clock = build(
        {"first": first.url, "second": second.url}, plugins=[moody, Compatible("second")]
    )
    open_first(router, clock, first)
    call = router.stream if streamed else router.complete

    def consume():
        result = call(MODEL, MESSAGES)
        if streamed:
            for _ in result:
                pass

    if outcome == "400":
        first.faults.append(Fault(status=400))
        with pytest.raises(BadRequest):
            consume()
    elif outcome == "context length":
        first.faults.append(Fault(status=400, body=CONTEXT_LENGTH))
        consume()  # the next provider, whose window may be larger, answers
    elif outcome == "plugin InvalidInput":
        moody.raise_next = InvalidInput("the plugin cannot send this", field="messages")
        with pytest.raises(InvalidInput):
            consume()
    elif outcome == "KeyboardInterrupt":
        moody.raise_next = KeyboardInterrupt()
        with pytest.raises(KeyboardInterrupt):
            consume()
    else:
        stream = router.stream(MODEL, MESSAGES)
        next(stream)
        stream.close()
    # The probe slot came back: the next call probes the provider again, and it answers.
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "first", outcomes(answer.attempts)
    assert router.breaker.health("first").state is CircuitState.CLOSED


def test_retries_stop_as_soon_as_the_circuit_opens(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=503)
    router, _ = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES, retry=RetryPolicy(attempts=5, jitter=0))
    assert answer.provider == "second"
    # failure_threshold is 2: the third try would go to an open circuit.
    assert len(first.requests) == 2
    assert outcomes(answer.attempts)[-2] == ("first", "skipped", None)


def test_a_half_open_probe_is_one_attempt_not_a_retry_loop(fakes):
    first, second = fakes("first"), fakes("second")
    router, clock = build({"first": first.url, "second": second.url})
    open_first(router, clock, first)
    first.fail_every_request = Fault(status=503)
    before = len(first.requests)
    answer = router.complete(MODEL, MESSAGES, retry=RetryPolicy(attempts=4, jitter=0))
    assert answer.provider == "second"
    assert len(first.requests) - before == 1
    health = router.breaker.health("first")
    assert health.state is CircuitState.OPEN


def test_a_flapping_provider_is_used_again_within_one_cooldown_of_recovering(fakes):
    first, second = fakes("first"), fakes("second")
    settings = "[health]\ncooldown = 0.4\n"
    router, _ = build({"first": first.url, "second": second.url}, settings=settings)
    router._clock = time.monotonic  # real time: traffic flows while the provider is down
    router.breaker._clock = time.time
    router._sleep = time.sleep
    first.fail_every_request = Fault(status=503)
    started = time.monotonic()
    recovered_at = started + 1.0
    back_at = None
    while time.monotonic() - started < 3.0:
        if first.fail_every_request is not None and time.monotonic() >= recovered_at:
            first.fail_every_request = None
        answer = router.complete(
            MODEL, MESSAGES, retry=RetryPolicy(attempts=3, initial_backoff=0.01, jitter=0)
        )
        if answer.provider == "first" and time.monotonic() >= recovered_at:
            back_at = time.monotonic()
            break
        time.sleep(0.02)
    assert back_at is not None, "the provider never got its traffic back"
    assert back_at - recovered_at <= 0.4 + 0.15


def test_a_single_permanent_error_demotes_a_provider_only_for_a_while(fakes):
    first, second = fakes("first"), fakes("second")
    router, clock = build({"first": first.url, "second": second.url})
    first.faults.append(Fault(status=404))
    assert router.complete(MODEL, MESSAGES).provider == "second"
    # For the cooldown the healthy one goes first ...
    assert outcomes(router.complete(MODEL, MESSAGES).attempts) == [("second", "ok", None)]
    # ... then the configured order is back, and so is the provider that answers again.
    clock.now += 10.1
    for _ in range(20):
        assert router.complete(MODEL, MESSAGES).provider == "first"


@pytest.mark.parametrize(
    "retry_after",
    ["86400", "99999999999", "1e400", "Fri, 31 Dec 9999 23:59:59 GMT", "-5", "soon"],
)
def test_an_absurd_retry_after_never_sleeps_long_nor_raises_an_untyped_error(fakes, retry_after):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=429, headers={"Retry-After": retry_after})
    router, clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert answer.provider == "second"
    assert all(pause <= 30 for pause in clock.sleeps), clock.sleeps
    health = router.breaker.health("first")
    if health.state is CircuitState.OPEN:
        assert health.cooled_down_until - clock.now <= 3600


def test_a_retry_after_beyond_the_cap_moves_on_and_opens_the_circuit_for_the_time_asked(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=429, headers={"Retry-After": "120"})
    router, clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES)
    assert outcomes(answer.attempts) == [
        ("first", "failed", "RateLimited"),
        ("second", "ok", None),
    ]
    assert clock.sleeps == []
    health = router.breaker.health("first")
    assert health.state is CircuitState.OPEN
    assert health.cooled_down_until == pytest.approx(clock.now + 120)


def test_the_retry_after_cap_is_settable(fakes):
    first, second = fakes("first"), fakes("second")
    first.faults.append(Fault(status=429, headers={"Retry-After": "7"}))
    router, clock = build({"first": first.url, "second": second.url})
    answer = router.complete(MODEL, MESSAGES, retry=RetryPolicy(max_retry_after=5))
    assert answer.provider == "second" and clock.sleeps == []


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_a_connection_closed_after_a_long_silence_is_not_retried_in_place(fakes, streamed):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=0.4, drop_on_connect=True)
    router, _ = build({"first": first.url, "second": second.url})
    router._clock = time.monotonic
    policy = RetryPolicy(attempts=3, slow_failure=0.3)
    if streamed:
        stream = router.stream(MODEL, MESSAGES, retry=policy)
        text = "".join(chunk.text for chunk in stream)
        attempts = stream.attempts
    else:
        answer = router.complete(MODEL, MESSAGES, retry=policy)
        text, attempts = answer.text, answer.attempts
    assert text == "answer from second"
    assert outcomes(attempts) == [("first", "failed", "ConnectionFailed"), ("second", "ok", None)]
    assert len(first.requests) == 1


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_a_silent_provider_costs_one_first_chunk_timeout_then_the_second_answers(fakes, streamed):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(delay=30)
    router, _ = build({"first": first.url, "second": second.url})
    router._clock = time.monotonic
    started = time.monotonic()
    if streamed:
        stream = router.stream(MODEL, MESSAGES, first_chunk_timeout=0.3)
        text = "".join(chunk.text for chunk in stream)
        attempts = stream.attempts
    else:
        answer = router.complete(MODEL, MESSAGES, first_chunk_timeout=0.3)
        text, attempts = answer.text, answer.attempts
    elapsed = time.monotonic() - started
    assert text == "answer from second"
    assert outcomes(attempts) == [("first", "failed", "ProviderTimeout"), ("second", "ok", None)]
    assert elapsed < 0.3 + 0.25
