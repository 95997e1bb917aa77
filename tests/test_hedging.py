"""Hedged requests over real HTTP: a slow first provider is beaten by the next one, the loser is
cancelled (connection shut, permit released, attempt listed), never more than one extra request,
none for a non-idempotent call, for whole answers and streams."""

from __future__ import annotations

import threading
import time

import pytest

from hypotez_providers import CircuitState, InvalidInput
from hypotez_providers.hedging import Hedge
from hypotez_providers.testing import Fault

from ._routing import MESSAGES, MODEL, build, outcomes

SLOW = Fault(delay=2)


def wait_for(condition, seconds=3.0):
    """Poll ``condition`` until it holds or ``seconds`` pass; whether it held."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def two(fakes, settings=""):
    first, second = fakes("first"), fakes("second")
    router, _ = build({"first": first.url, "second": second.url}, settings=settings)
    return router, first, second


def test_a_hedged_call_beats_a_slow_first_provider(fakes):
    router, first, second = two(fakes)
    first.faults.append(SLOW)
    started = time.monotonic()
    answer = router.complete(MODEL, MESSAGES, hedge=0.1)
    elapsed = time.monotonic() - started
    assert answer.text == "answer from second"
    assert answer.provider == "second"
    assert elapsed < 1.0  # the slow one would take 2 s
    assert sorted(outcomes(answer.attempts)) == [
        ("first", "failed", "HedgeCancelled"),
        ("second", "ok", None),
    ]
    cancelled = next(a for a in answer.attempts if a.provider == "first")
    assert "second answered first" in (cancelled.message or "")
    assert len(first.requests) + len(second.requests) == 2
    # The loser's socket is shut: the fake sees its connection go long before its 2 s delay,
    # and the loser's thread ends as promptly.
    assert wait_for(lambda: first.open_connections() == 0, seconds=1.5)
    assert wait_for(lambda: not any(t.name == "hypotez-hedge" for t in threading.enumerate()), 1.5)


def test_a_fast_first_provider_is_never_hedged(fakes):
    router, _first, second = two(fakes)
    answer = router.complete(MODEL, MESSAGES, hedge=0.5)
    assert answer.provider == "first"
    assert outcomes(answer.attempts) == [("first", "ok", None)]
    assert len(second.requests) == 0


def test_no_hedge_for_a_non_idempotent_call(fakes):
    router, first, second = two(fakes)
    first.faults.append(Fault(delay=0.4))
    answer = router.complete(MODEL, MESSAGES, hedge=0.05, idempotent=False)
    assert answer.provider == "first"
    assert len(second.requests) == 0


def test_never_more_than_one_extra_request(fakes):
    first, second, third = fakes("first"), fakes("second"), fakes("third")
    router, _ = build({"first": first.url, "second": second.url, "third": third.url})
    first.faults.append(Fault(delay=0.6))
    second.faults.append(Fault(delay=0.6))
    answer = router.complete(MODEL, MESSAGES, hedge=0.05)
    assert answer.provider in ("first", "second")
    assert len(third.requests) == 0
    assert len(first.requests) + len(second.requests) == 2


def test_a_first_provider_failing_fast_fails_over_as_usual(fakes):
    router, first, _second = two(fakes)
    first.fail_every_request = Fault(status=503)
    answer = router.complete(MODEL, MESSAGES, hedge=5, max_attempts=1)
    assert answer.provider == "second"
    assert outcomes(answer.attempts) == [("first", "failed", "Overloaded"), ("second", "ok", None)]


def test_one_hedged_leg_failing_leaves_the_other_running(fakes):
    router, first, second = two(fakes)
    first.faults.append(Fault(delay=0.4))
    second.fail_every_request = Fault(status=503)
    answer = router.complete(MODEL, MESSAGES, hedge=0.05, max_attempts=1)
    assert answer.provider == "first"
    assert ("second", "failed", "Overloaded") in outcomes(answer.attempts)


def test_hedging_a_stream_keeps_the_first_to_its_first_chunk(fakes):
    router, first, _second = two(fakes)
    first.faults.append(SLOW)
    started = time.monotonic()
    stream = router.stream(MODEL, MESSAGES, hedge=0.1)
    text = "".join(chunk.text for chunk in stream)
    assert time.monotonic() - started < 1.0
    assert text == "answer from second"
    assert stream.provider == "second"
    assert sorted(outcomes(stream.attempts)) == [
        ("first", "failed", "HedgeCancelled"),
        ("second", "ok", None),
    ]
    assert wait_for(lambda: first.open_connections() == 0, seconds=1.5)


def test_a_hedged_stream_continues_in_the_callers_thread(fakes):
    router, first, second = two(fakes)
    first.faults.append(SLOW)
    second.hold_before_last = threading.Event()
    stream = router.stream(MODEL, MESSAGES, hedge=0.1)
    head = next(stream)
    assert stream.provider == "second" and head.text
    second.hold_before_last.set()
    rest = "".join(chunk.text for chunk in stream)
    assert head.text + rest == "answer from second"


def test_permits_are_never_leaked_by_hedged_calls(fakes):
    router, first, _second = two(fakes)
    first.fail_every_request = Fault(delay=0.3)
    for _ in range(8):
        assert router.complete(MODEL, MESSAGES, hedge=0.02).provider == "second"
    first.fail_every_request = None
    for name in ("first", "second"):
        health = router.breaker.health(name)
        assert health.state is CircuitState.CLOSED
        assert health.failures == 0  # a cancelled leg is released, never failed
    assert router.breaker.admit("first") is not None


def test_a_hedge_from_the_settings_and_switched_off_per_call(fakes):
    first, second = fakes("first"), fakes("second")
    router, _ = build(
        {"first": first.url, "second": second.url},
        settings=f'[hedging]\n"{MODEL}" = {{delay = 0.1}}\n',
    )
    first.faults.append(SLOW)
    assert router.complete(MODEL, MESSAGES).provider == "second"
    first.faults.append(Fault(delay=0.4))
    assert router.complete(MODEL, MESSAGES, hedge=False).provider == "first"


def test_a_percentile_hedge_waits_the_fixed_delay_until_it_knows_the_latency(fakes):
    router, first, _second = two(fakes)
    policy = Hedge(delay=0.1, percentile=95, min_delay=0.05)
    first.faults.append(SLOW)
    assert router.complete(MODEL, MESSAGES, hedge=policy).provider == "second"
    for _ in range(12):
        router.complete(MODEL, MESSAGES, hedge=policy)
    known = router.stats.percentile("first", 95)
    assert known is not None and known < 1.0
    assert policy.delay_for(known) == max(known, 0.05)


@pytest.mark.parametrize("bad", [True, -1, 0, "0.5", float("inf")])
def test_a_bad_hedge_is_refused_before_anything_is_sent(fakes, bad):
    router, first, _second = two(fakes)
    with pytest.raises(InvalidInput) as raised:
        router.complete(MODEL, MESSAGES, hedge=bad)
    assert raised.value.field == "hedge"
    assert len(first.requests) == 0


def test_the_routing_page_hedging_example_runs(fakes, capsys):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "routing.md").read_text()
    example = next(b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "hedge=" in b)
    router, first, _second = two(fakes)
    first.faults.append(SLOW)
    exec(compile(example, "docs/routing.md", "exec"), {"router": router, "messages": MESSAGES})
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "second"
    assert any("HedgeCancelled" in line for line in printed[1:3])
    assert printed[3] == "answer from first"


def test_a_probe_that_loses_a_hedged_race_is_given_back(fakes):
    first, second = fakes("first"), fakes("second")
    router, clock = build({"first": first.url, "second": second.url})
    first.fail_every_request = Fault(status=503)
    router.complete(MODEL, MESSAGES)
    assert router.breaker.health("first").state is CircuitState.OPEN
    first.fail_every_request = None
    clock.now += 10.1  # cooled down: the next call to first is its half-open probe
    first.faults.append(SLOW)
    answer = router.complete(MODEL, MESSAGES, hedge=0.1)
    assert answer.provider == "second"
    assert ("first", "failed", "HedgeCancelled") in outcomes(answer.attempts)
    # The loser's thread ends promptly (its socket was shut), releasing the slot on its way out.
    assert wait_for(lambda: not any(t.name == "hypotez-hedge" for t in threading.enumerate()))
    permit = router.breaker.admit("first")  # the slot was released, not kept nor failed
    assert permit is not None and permit.probe
    router.breaker.release(permit)
    assert router.complete(MODEL, MESSAGES).provider == "first"
    assert router.breaker.health("first").state is CircuitState.CLOSED


def test_a_watch_cancelled_before_its_request_is_sent_does_not_wait_for_the_answer(fakes):
    import requests

    from hypotez_providers._deadline import Watch, WatchedAdapter, watched_request

    first = fakes("first")
    first.faults.append(SLOW)
    session = requests.Session()
    session.mount("http://", WatchedAdapter())
    watch = Watch(None)
    watch.cancel("cancelled: second answered first (hedged request)")  # before any socket
    started = time.monotonic()
    with watched_request(watch), pytest.raises(requests.ConnectionError):
        session.post(f"{first.url}/v1/chat/completions", json={"model": MODEL}, timeout=5)
    assert time.monotonic() - started < 1.0  # not the fake's 2 s
    session.close()
