"""The circuit breaker's rules, on injected time (no sockets, no sleeping).

The behavioural tests marked ``@both`` run against the in-memory breaker and against
:class:`RedisCircuitBreaker` on a real ``redis-server`` (skipped when it is not installed),
which must keep exactly the same rules; Redis-only behaviour is in ``test_state_redis.py``.
"""

from __future__ import annotations

import copy
import itertools
import random
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hypotez_providers.health import (
    CircuitBreaker,
    CircuitRecord,
    CircuitState,
    HealthPolicy,
    MemoryCircuitBreaker,
    Permit,
    ProviderHealth,
    Standing,
    admit_record,
    describe,
    fail_record,
    release_record,
    standing_of,
    succeed_record,
)
from tests._redis import running_redis

PROVIDER = "alpha"
START = 1_700_000_000.0  # wall-clock seconds, as the breaker keeps them
POLICY = {
    "failure_threshold": 3,
    "cooldown": 10.0,
    "max_cooldown": 300.0,
    "window": 60.0,
    "failure_rate": 0.5,
    "min_calls": 10,
    "probe_lease": 30.0,
}


class Clock:
    """Injected wall-clock time: the test moves it."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _memory(policy: HealthPolicy, clock: Clock) -> CircuitBreaker:
    return MemoryCircuitBreaker(policy, clock=clock)


#: How the tests marked ``@both`` build a breaker: set by the ``backend`` fixture.
_new_breaker: Callable[[HealthPolicy, Clock], CircuitBreaker] = _memory


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(params=["memory", "redis"])
def backend(request) -> Iterator[str]:
    """Point ``make_breaker`` at one implementation for the test."""
    global _new_breaker
    if request.param == "memory":
        _new_breaker = _memory
        yield "memory"
        return
    from hypotez_providers.state import RedisConnection
    from hypotez_providers.state.redis_breaker import RedisCircuitBreaker

    url = request.getfixturevalue("redis_url")
    connection = RedisConnection(url, namespace=f"health-{next(_namespaces)}", timeout=1.0)
    _new_breaker = lambda policy, clock: RedisCircuitBreaker(connection, policy, clock=clock)  # noqa: E731
    try:
        yield "redis"
    finally:
        _new_breaker = _memory
        connection.close()


_namespaces = itertools.count()
both = pytest.mark.usefixtures("backend")


def make_breaker(**overrides) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    return _new_breaker(HealthPolicy(**{**POLICY, **overrides}), clock), clock


def admitted(breaker: CircuitBreaker) -> Permit:
    permit = breaker.admit(PROVIDER)
    assert permit is not None, "expected the provider to be admitted"
    return permit


def fail(breaker: CircuitBreaker, times: int = 1, **kwargs) -> None:
    for _ in range(times):
        breaker.failed(admitted(breaker), **kwargs)


def succeed(breaker: CircuitBreaker, times: int = 1, latency: float = 0.1) -> None:
    for _ in range(times):
        breaker.succeeded(admitted(breaker), latency)


def opened(**overrides) -> tuple[CircuitBreaker, Clock]:
    """A breaker whose circuit just opened (at ``START``) on consecutive failures."""
    breaker, clock = make_breaker(**overrides)
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.health(PROVIDER).state is CircuitState.OPEN
    return breaker, clock


def state(breaker: CircuitBreaker) -> CircuitState:
    return breaker.health(PROVIDER).state


def test_the_in_memory_breaker_speaks_the_circuit_breaker_interface():
    breaker: CircuitBreaker = MemoryCircuitBreaker()
    assert breaker.admit(PROVIDER) == Permit(PROVIDER)
    assert "MemoryCircuitBreaker" in repr(breaker)


# Opening ------------------------------------------------------------------------------------


@both
def test_opens_after_failure_threshold_consecutive_failures_and_skips_until_the_cooldown_ends():
    breaker, clock = make_breaker()
    fail(breaker, times=2)
    assert state(breaker) is CircuitState.CLOSED
    assert breaker.admit(PROVIDER) == Permit(PROVIDER)
    fail(breaker)
    assert state(breaker) is CircuitState.OPEN
    for later in (0.0, 5.0, 9.999):
        clock.now = START + later
        assert breaker.admit(PROVIDER) is None, f"skipped {later} s into a 10 s cooldown"
    clock.now = START + 10.0
    assert breaker.admit(PROVIDER) is not None


@both
def test_a_success_between_failures_restarts_the_consecutive_count():
    breaker, _ = make_breaker()
    fail(breaker, times=2)
    succeed(breaker)
    fail(breaker, times=2)
    health = breaker.health(PROVIDER)
    assert (health.state, health.consecutive_failures) == (CircuitState.CLOSED, 2)


@both
def test_failure_threshold_of_one_opens_on_the_first_failure():
    breaker, _ = make_breaker(failure_threshold=1)
    fail(breaker)
    assert state(breaker) is CircuitState.OPEN


@both
def test_failure_rate_over_the_window_opens_once_min_calls_are_seen():
    breaker, clock = make_breaker(failure_threshold=100, min_calls=6, failure_rate=0.5)
    for second in range(5):
        clock.now = START + second
        fail(breaker) if second % 2 else succeed(breaker)
        assert state(breaker) is CircuitState.CLOSED, "fewer than min_calls: the rate waits"
    clock.now = START + 5
    fail(breaker)  # 3 failures in 6 calls: 0.5
    assert state(breaker) is CircuitState.OPEN
    assert breaker.health(PROVIDER).consecutive_failures == 1


@both
def test_failure_rate_below_the_threshold_keeps_the_circuit_closed():
    breaker, clock = make_breaker(failure_threshold=100, min_calls=4, failure_rate=0.5)
    for second in range(20):
        clock.now = START + second
        fail(breaker) if second % 4 == 0 else succeed(breaker)
    assert state(breaker) is CircuitState.CLOSED


@both
def test_calls_older_than_the_window_leave_the_failure_rate():
    breaker, clock = make_breaker(failure_threshold=100, min_calls=4, window=60)
    fail(breaker, times=3)
    clock.now = START + 61
    succeed(breaker)
    fail(breaker)  # 1 of 2 calls in the window: below min_calls
    assert state(breaker) is CircuitState.CLOSED
    fail(breaker, times=2)  # 3 of 4 calls in the window
    assert state(breaker) is CircuitState.OPEN


# Half-open: the probe --------------------------------------------------------------------


@both
def test_after_the_cooldown_exactly_one_probe_goes_through():
    breaker, clock = opened()
    clock.now = START + 10
    probe = admitted(breaker)
    assert probe.probe and probe.provider == PROVIDER
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.admit(PROVIDER) is None, "only one probe at a time"
    clock.now = START + 39.9  # still inside the probe's lease
    assert breaker.admit(PROVIDER) is None


@both
def test_a_successful_probe_closes_the_circuit():
    breaker, clock = opened()
    clock.now = START + 10
    breaker.succeeded(admitted(breaker), 0.2)
    health = breaker.health(PROVIDER)
    assert (health.state, health.consecutive_failures) == (CircuitState.CLOSED, 0)
    assert breaker.admit(PROVIDER) == Permit(PROVIDER), "closed again: ordinary permits"


@both
def test_a_failed_probe_reopens_the_circuit_for_a_fresh_cooldown():
    breaker, clock = opened()
    clock.now = START + 15
    breaker.failed(admitted(breaker))
    health = breaker.health(PROVIDER)
    assert health.state is CircuitState.OPEN
    assert health.cooled_down_until == START + 25
    clock.now = START + 24.9
    assert breaker.admit(PROVIDER) is None
    clock.now = START + 25
    assert admitted(breaker).probe


@both
def test_a_failed_probe_reopens_for_its_retry_after():
    breaker, clock = opened()
    clock.now = START + 10
    breaker.failed(admitted(breaker), retry_after=120)
    assert breaker.health(PROVIDER).cooled_down_until == START + 130


@both
def test_releasing_a_probe_gives_the_slot_back():
    breaker, clock = opened()
    clock.now = START + 10
    first = admitted(breaker)
    breaker.release(first)
    assert state(breaker) is CircuitState.HALF_OPEN, "a release is no verdict"
    second = admitted(breaker)
    assert second.probe and second.token != first.token
    assert breaker.admit(PROVIDER) is None


@both
def test_releasing_a_stale_probe_does_not_free_the_newer_one():
    breaker, clock = opened()
    clock.now = START + 10
    stale = admitted(breaker)
    clock.now += breaker.policy.probe_lease
    current = admitted(breaker)
    assert current.probe and current.token > stale.token
    breaker.release(stale)
    assert breaker.admit(PROVIDER) is None, "the newer probe still holds the slot"
    breaker.release(current)
    assert admitted(breaker).probe


@both
def test_a_stale_probe_failing_does_not_reopen_the_circuit():
    breaker, clock = opened()
    clock.now = START + 10
    stale = admitted(breaker)
    clock.now += breaker.policy.probe_lease
    current = admitted(breaker)
    breaker.failed(stale, open_now=True, retry_after=100)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.admit(PROVIDER) is None
    breaker.succeeded(current, 0.1)
    assert state(breaker) is CircuitState.CLOSED


@both
def test_a_probe_whose_holder_never_reports_is_reclaimable_after_the_lease():
    breaker, clock = opened(probe_lease=30)
    clock.now = START + 10
    assert admitted(breaker).probe
    clock.now = START + 39.999
    assert breaker.admit(PROVIDER) is None
    clock.now = START + 40
    assert admitted(breaker).probe


@both
def test_releasing_an_ordinary_permit_changes_nothing():
    breaker, _ = make_breaker()
    fail(breaker)
    before = breaker.health(PROVIDER)
    breaker.release(admitted(breaker))
    assert breaker.health(PROVIDER) == before


# Failures while open, Retry-After --------------------------------------------------------


@both
def test_failures_reported_while_open_are_counted_but_never_extend_the_cooldown():
    breaker, clock = make_breaker()
    early = [admitted(breaker) for _ in range(5)]  # admitted before the circuit opened
    fail(breaker, times=3)
    opened_until = breaker.health(PROVIDER).cooled_down_until
    assert opened_until == START + 10
    clock.now = START + 5
    breaker.failed(early[0])
    breaker.failed(early[1], retry_after=1000)
    breaker.failed(early[2], retry_after=1000, open_now=True)
    clock.now = START + 10  # the cooldown has run out, no probe claimed yet
    breaker.failed(early[3], open_now=True, retry_after=60)
    health = breaker.health(PROVIDER)
    assert health.state is CircuitState.OPEN
    assert health.cooled_down_until == opened_until
    assert health.failures == 7
    assert admitted(breaker).probe


@both
def test_ordinary_failures_while_half_open_leave_the_probe_in_charge():
    breaker, clock = make_breaker()
    early = admitted(breaker)
    fail(breaker, times=3)
    clock.now = START + 10
    probe = admitted(breaker)
    breaker.failed(early, open_now=True, retry_after=100)
    assert state(breaker) is CircuitState.HALF_OPEN
    assert breaker.admit(PROVIDER) is None
    breaker.succeeded(probe, 0.1)
    assert state(breaker) is CircuitState.CLOSED


@both
@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [
        (None, 10.0),
        (0.0, 10.0),
        (4.0, 10.0),
        (45.0, 45.0),
        (300.0, 300.0),
        (301.0, 300.0),
        (1e11, 300.0),
        (float("inf"), 300.0),
    ],
)
def test_open_now_opens_for_the_cooldown_or_the_capped_retry_after(retry_after, seconds):
    breaker, clock = make_breaker()
    fail(breaker, open_now=True, retry_after=retry_after)
    health = breaker.health(PROVIDER)
    assert (health.state, health.consecutive_failures) == (CircuitState.OPEN, 1)
    assert health.cooled_down_until == START + seconds
    clock.now = START + seconds - 0.001
    assert breaker.admit(PROVIDER) is None
    clock.now = START + seconds
    assert admitted(breaker).probe


@both
def test_the_opening_failure_honours_its_retry_after():
    breaker, _ = make_breaker()
    fail(breaker, times=2)
    fail(breaker, retry_after=45)
    assert breaker.health(PROVIDER).cooled_down_until == START + 45


@both
def test_retry_after_without_open_now_does_not_open_a_healthy_circuit():
    breaker, _ = make_breaker()
    fail(breaker, retry_after=45)
    assert state(breaker) is CircuitState.CLOSED


@both
def test_a_huge_retry_after_is_capped_at_the_default_max_cooldown():
    clock = Clock()
    breaker = _new_breaker(HealthPolicy(), clock)
    fail(breaker, open_now=True, retry_after=1e11)
    assert breaker.health(PROVIDER).cooled_down_until == START + 3600
    clock.now = START + 3600
    assert admitted(breaker).probe


@pytest.mark.parametrize(
    ("cooldown", "max_cooldown", "retry_after", "seconds"),
    [
        (10, 300, None, 10),
        (10, 300, 0, 10),
        (10, 300, -5, 10),
        (10, 300, 9.5, 10),
        (10, 300, 10.5, 10.5),
        (10, 300, 300, 300),
        (10, 300, 1e11, 300),
        (10, 5, 60, 10),  # a max_cooldown below the cooldown never shortens the cooldown
        (0, 0, 60, 0),
    ],
)
def test_open_for_is_the_cooldown_or_the_asked_wait_capped(
    cooldown, max_cooldown, retry_after, seconds
):
    policy = HealthPolicy(cooldown=cooldown, max_cooldown=max_cooldown)
    assert policy.open_for(retry_after) == seconds


# Standing ----------------------------------------------------------------------------------


@both
def test_an_unknown_or_healthy_provider_is_ready():
    breaker, _ = make_breaker()
    assert breaker.standing("never-seen") is Standing.READY
    succeed(breaker)
    assert breaker.standing(PROVIDER) is Standing.READY


@both
def test_one_failure_demotes_for_the_cooldown_then_the_provider_is_ready_again():
    breaker, clock = make_breaker()
    fail(breaker)
    assert breaker.standing(PROVIDER) is Standing.DEMOTED
    clock.now = START + 9.999
    assert breaker.standing(PROVIDER) is Standing.DEMOTED
    clock.now = START + 10
    assert breaker.standing(PROVIDER) is Standing.READY, "a single failure never demotes for good"
    clock.now = START + 10_000
    assert breaker.standing(PROVIDER) is Standing.READY


@both
def test_each_failure_restarts_the_demotion():
    breaker, clock = make_breaker()
    fail(breaker)
    clock.now = START + 8
    fail(breaker)
    clock.now = START + 17
    assert breaker.standing(PROVIDER) is Standing.DEMOTED
    clock.now = START + 18
    assert breaker.standing(PROVIDER) is Standing.READY


@both
def test_a_success_clears_the_demotion_at_once():
    breaker, _ = make_breaker()
    fail(breaker, times=2)
    succeed(breaker)
    assert breaker.standing(PROVIDER) is Standing.READY


@both
def test_standing_follows_the_circuit_through_open_probe_and_close():
    breaker, clock = opened()
    assert breaker.standing(PROVIDER) is Standing.OPEN, "cooling down"
    clock.now = START + 10
    assert breaker.standing(PROVIDER) is Standing.READY, "a probe is due"
    probe = admitted(breaker)
    assert breaker.standing(PROVIDER) is Standing.OPEN, "the probe is out"
    clock.now = START + 10 + breaker.policy.probe_lease
    assert breaker.standing(PROVIDER) is Standing.READY, "the probe's lease ran out"
    breaker.succeeded(probe, 0.1)
    assert breaker.standing(PROVIDER) is Standing.READY


@both
def test_standing_claims_nothing():
    breaker, clock = opened()
    clock.now = START + 10
    for _ in range(3):
        assert breaker.standing(PROVIDER) is Standing.READY
    assert admitted(breaker).probe


# Health ------------------------------------------------------------------------------------


@both
def test_health_of_an_unknown_provider_is_closed_and_empty():
    breaker, _ = make_breaker()
    assert breaker.health("never-seen") == ProviderHealth(
        provider="never-seen",
        state=CircuitState.CLOSED,
        consecutive_failures=0,
        cooled_down_until=None,
        latency_average=None,
        successes=0,
        failures=0,
    )


@both
def test_health_shows_counts_latency_and_when_an_open_circuit_cools_down():
    breaker, clock = make_breaker()
    breaker.succeeded(admitted(breaker), 0.5)
    breaker.succeeded(admitted(breaker), 1.0)
    clock.now = START + 3
    fail(breaker, times=3)
    health = breaker.health(PROVIDER)
    assert health.provider == PROVIDER
    assert (health.state, health.successes, health.failures) == (CircuitState.OPEN, 2, 3)
    assert health.consecutive_failures == 3
    assert health.latency_average == pytest.approx(0.5 * 0.8 + 1.0 * 0.2)
    assert health.cooled_down_until == START + 13, "wall-clock time the cooldown ends"


@both
def test_health_has_no_cool_down_time_unless_the_circuit_is_open():
    breaker, clock = opened()
    clock.now = START + 10
    probe = admitted(breaker)
    health = breaker.health(PROVIDER)
    assert (health.state, health.cooled_down_until) == (CircuitState.HALF_OPEN, None)
    breaker.succeeded(probe, 2.0)
    health = breaker.health(PROVIDER)
    assert (health.state, health.cooled_down_until) == (CircuitState.CLOSED, None)
    assert (health.consecutive_failures, health.successes, health.latency_average) == (0, 1, 2.0)


# The pure state machine ----------------------------------------------------------------


def test_the_pure_functions_run_the_whole_cycle_on_a_plain_record():
    policy = HealthPolicy(**POLICY)
    record = CircuitRecord()
    for _ in range(3):
        permit = admit_record(record, PROVIDER, 100.0, policy)
        assert permit == Permit(PROVIDER)
        fail_record(record, permit, 100.0, policy)
    assert (record.state, record.open_until) == (CircuitState.OPEN, 110.0)
    assert standing_of(record, 105.0) is Standing.OPEN
    assert admit_record(record, PROVIDER, 105.0, policy) is None
    probe = admit_record(record, PROVIDER, 110.0, policy)
    assert probe is not None and probe.probe and record.state is CircuitState.HALF_OPEN
    release_record(record, probe)
    probe = admit_record(record, PROVIDER, 111.0, policy)
    assert probe is not None and probe.probe
    succeed_record(record, probe, 0.3, 112.0)
    assert describe(PROVIDER, record) == ProviderHealth(
        provider=PROVIDER,
        state=CircuitState.CLOSED,
        consecutive_failures=0,
        latency_average=0.3,
        successes=1,
        failures=3,
    )


# Threads -----------------------------------------------------------------------------------


def test_concurrent_calls_on_one_breaker_are_all_counted():
    # cooldown 0 on a frozen clock: the circuit cycles open, probe, closed as fast as it can
    clock = Clock()
    breaker = MemoryCircuitBreaker(
        HealthPolicy(failure_threshold=2, cooldown=0, min_calls=5, probe_lease=60), clock=clock
    )
    threads_count, calls = 8, 500
    start = threading.Barrier(threads_count)
    tallies: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        tally = {"succeeded": 0, "failed": 0, "released": 0, "skipped": 0, "probes": 0}
        choose = random.Random(seed)
        start.wait()
        try:
            for _ in range(calls):
                permit = breaker.admit(PROVIDER)
                if permit is None:
                    tally["skipped"] += 1
                    continue
                tally["probes"] += permit.probe
                outcome = choose.choice(("succeeded", "failed", "failed", "released"))
                if outcome == "succeeded":
                    breaker.succeeded(permit, 0.01)
                elif outcome == "failed":
                    breaker.failed(permit, retry_after=choose.choice((None, 0.0)))
                else:
                    breaker.release(permit)
                breaker.standing(PROVIDER)
                tally[outcome] += 1
        except BaseException as error:  # noqa: BLE001 - handed to the main thread
            errors.append(error)
        tallies.append(tally)

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(threads_count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    total = {key: sum(tally[key] for tally in tallies) for key in tallies[0]}
    assert sum(total[key] for key in ("succeeded", "failed", "released", "skipped")) == 4000
    health = breaker.health(PROVIDER)
    assert health.successes == total["succeeded"]
    assert health.failures == total["failed"]
    assert total["probes"] > 0, "the circuit opened and probed along the way"
    # every permit was answered, so the provider is admitted again
    assert breaker.admit(PROVIDER) is not None


# Properties ----------------------------------------------------------------------------


policies = st.builds(
    HealthPolicy,
    failure_threshold=st.integers(1, 4),
    cooldown=st.sampled_from([0.0, 0.5, 1.0, 5.0, 10.0, 30.0]),
    max_cooldown=st.sampled_from([0.0, 1.0, 10.0, 60.0, 120.0]),
    window=st.sampled_from([1.0, 10.0, 60.0]),
    failure_rate=st.sampled_from([0.25, 0.5, 1.0]),
    min_calls=st.integers(1, 6),
    probe_lease=st.sampled_from([0.5, 1.0, 5.0, 60.0]),
)
choices = st.sampled_from(["any", "live probe", "stale probe"])
retry_afters = st.none() | st.sampled_from([0.0, 1.0, 45.0, 1e11]) | st.floats(-10, 1e11)


class BreakerMachine(RuleBasedStateMachine):
    """Any sequence of calls, reports and clock moves, on a breaker and on a plain record.

    The breaker and a :class:`CircuitRecord` driven by the pure functions hear the same
    operations and must agree; the record can be copied to ask "what if" without disturbing
    the run. The machine keeps its own account of the probe it handed out last, to hold the
    breaker to "one probe at a time" without reading the breaker's answer back.
    """

    @initialize(policy=policies)
    def start(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self.clock = Clock()
        self.latest = self.clock.now  # the clock never steps back more than 1 s from here
        self.breaker = MemoryCircuitBreaker(policy, clock=self.clock)
        self.record = CircuitRecord()
        self.held: list[tuple[Permit, float]] = []  # unanswered permits, with when admitted
        self.newest_token = 0
        # the newest probe's token and claim time, while it is unanswered and no success
        # has closed the circuit since: the probe that holds the half-open circuit's slot
        self.probe_out: tuple[int, float] | None = None

    # helpers --------------------------------------------------------------------------

    def move_to(self, now: float) -> None:
        self.clock.now = now
        self.latest = max(self.latest, now)

    def recovered(self) -> float:
        """The longest wait any state can ask for, counted from the latest time seen.

        Deadlines are wall-clock times: a clock that stepped back first makes up the step.
        """
        policy = self.policy
        return (
            max(self.clock.now, self.latest)
            + policy.max_cooldown
            + policy.probe_lease
            + policy.cooldown
        )

    def probe_holds_the_slot(self) -> bool:
        if self.probe_out is None:
            return False
        _, claimed_at = self.probe_out
        return self.clock.now < claimed_at + self.policy.probe_lease

    def is_live_probe(self, permit: Permit) -> bool:
        return permit.probe and permit.token == self.newest_token

    def admit(self) -> Permit | None:
        before = self.breaker.standing(PROVIDER)
        slot_taken = self.probe_holds_the_slot()
        permit = self.breaker.admit(PROVIDER)
        assert permit == admit_record(self.record, PROVIDER, self.clock.now, self.policy)
        assert (permit is None) == (before is Standing.OPEN), "standing agrees with admit"
        if permit is not None and permit.probe:
            assert not slot_taken, "(b) a second probe while the first is out"
            assert permit.token > self.newest_token, "each probe has a fresh token"
            self.newest_token = permit.token
            self.probe_out = (permit.token, self.clock.now)
        if permit is not None:
            self.held.append((permit, self.clock.now))
        return permit

    def take(self, index: int, which: str = "any") -> Permit:
        """Answer one held permit: ``which`` prefers the live probe or a stale one, if held."""
        wanted = {
            "any": lambda permit: True,
            "live probe": self.is_live_probe,
            "stale probe": lambda permit: permit.probe and not self.is_live_probe(permit),
        }[which]
        places = [place for place, (permit, _) in enumerate(self.held) if wanted(permit)]
        places = places or list(range(len(self.held)))
        permit, _ = self.held.pop(places[index % len(places)])
        if self.probe_out is not None and permit.probe and permit.token == self.probe_out[0]:
            self.probe_out = None
        return permit

    # rules ----------------------------------------------------------------------------

    @rule()
    def call(self) -> None:
        self.admit()

    @rule(retry_after=retry_afters, open_now=st.booleans())
    def call_and_fail(self, retry_after: float | None, open_now: bool) -> None:
        if self.admit() is not None:
            self.fail(len(self.held) - 1, retry_after, open_now)

    @rule(latency=st.floats(0, 30))
    def call_and_succeed(self, latency: float) -> None:
        if self.admit() is not None:
            self.succeed(len(self.held) - 1, latency)

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 1000), which=choices, latency=st.floats(0, 30))
    def succeed(self, index: int, latency: float, which: str = "any") -> None:
        permit = self.take(index, which)
        before = self.record.state
        live_probe = permit.probe and permit.token == self.record.probe_token
        self.breaker.succeeded(permit, latency)
        succeed_record(self.record, permit, latency, self.clock.now)
        state = self.breaker.health(PROVIDER).state
        if before is CircuitState.CLOSED or live_probe:
            self.probe_out = None
            assert state is CircuitState.CLOSED, "the probe's answer (or any, when closed) closes"
        else:
            assert state is before, "while open only the probe decides"

    @precondition(lambda self: self.held)
    @rule(
        index=st.integers(0, 1000),
        which=choices,
        retry_after=retry_afters,
        open_now=st.booleans(),
    )
    def fail(
        self, index: int, retry_after: float | None, open_now: bool, which: str = "any"
    ) -> None:
        permit = self.take(index, which)
        before = self.breaker.health(PROVIDER)
        self.breaker.failed(permit, retry_after=retry_after, open_now=open_now)
        fail_record(self.record, permit, self.clock.now, self.policy, retry_after, open_now)
        after = self.breaker.health(PROVIDER)
        assert after.failures == before.failures + 1, "every failure is counted"
        if before.state is CircuitState.OPEN:
            assert after.state is CircuitState.OPEN
            assert before.cooled_down_until is not None and after.cooled_down_until is not None
            assert after.cooled_down_until <= before.cooled_down_until, "(c) cooldown extended"
        elif before.state is CircuitState.HALF_OPEN and self.is_live_probe(permit):
            assert after.state is CircuitState.OPEN, "a failed probe reopens"
            expected = self.clock.now + self.policy.open_for(retry_after)
            assert after.cooled_down_until == expected, "for a fresh cooldown"
        elif before.state is CircuitState.HALF_OPEN:
            assert after.state is CircuitState.HALF_OPEN, "only the probe decides"

    @precondition(lambda self: self.held)
    @rule(index=st.integers(0, 1000), which=choices)
    def release(self, index: int, which: str) -> None:
        permit = self.take(index, which)
        before = self.breaker.health(PROVIDER)
        self.breaker.release(permit)
        release_record(self.record, permit)
        assert self.breaker.health(PROVIDER) == before, "a release is no verdict"

    @rule(share=st.floats(0, 0.05) | st.floats(0, 1))  # small steps keep leases alive
    def forward(self, share: float) -> None:
        self.move_to(self.clock.now + share * (self.policy.max_cooldown + self.policy.probe_lease))

    @rule(seconds=st.floats(0, 1))
    def backward(self, seconds: float) -> None:
        self.clock.now = max(self.clock.now - seconds, self.latest - 1.0)

    @rule()
    def to_a_deadline(self) -> None:
        """Land exactly on the end of a cooldown or of a probe's lease."""
        lease = self.policy.probe_lease
        deadlines = [when + lease for permit, when in self.held if permit.probe]
        if self.record.state is CircuitState.OPEN:
            deadlines.append(self.record.open_until)
        later = [deadline for deadline in deadlines if deadline > self.clock.now]
        if later:
            self.move_to(min(later))

    @precondition(lambda self: self.record.state is CircuitState.OPEN)
    @rule()
    def outwait_the_cooldown(self) -> None:
        """Wait exactly until the open circuit is due a probe, and take it."""
        self.move_to(max(self.clock.now, self.record.open_until))
        permit = self.admit()
        assert permit is not None and permit.probe, "a probe is due when the cooldown ends"

    @precondition(lambda self: self.probe_out is not None)
    @rule()
    def outwait_a_silent_probe(self) -> None:
        """The probe's holder stays silent past its lease; the next call claims the slot."""
        assert self.probe_out is not None
        _, claimed_at = self.probe_out
        self.move_to(max(self.clock.now, claimed_at + self.policy.probe_lease))
        permit = self.admit()
        if self.record.state is CircuitState.HALF_OPEN:
            assert permit is not None and permit.probe, "a silent probe's lease runs out"

    @rule()
    def keeps_answering(self) -> None:
        """(a) on the breaker itself: wait out everything, call, answer, call again."""
        self.move_to(self.recovered())
        permit = self.admit()
        assert permit is not None, "(a) a provider that keeps answering is admitted again"
        self.succeed(len(self.held) - 1, 0.1)
        following = self.admit()
        assert following is not None and not following.probe, "(a) closed for good"

    # invariants -----------------------------------------------------------------------

    @invariant()
    def breaker_and_record_agree(self) -> None:
        assert self.breaker.health(PROVIDER) == describe(PROVIDER, self.record)
        assert self.breaker.standing(PROVIDER) is standing_of(self.record, self.clock.now)

    @invariant()
    def recovers_from_here(self) -> None:
        """(a) from this state, on a copy: the provider is admitted and a success closes it."""
        record = copy.deepcopy(self.record)
        later = self.recovered()
        permit = admit_record(record, PROVIDER, later, self.policy)
        assert permit is not None, "(a) still skipped after the longest possible wait"
        succeed_record(record, permit, 0.1, later)
        assert record.state is CircuitState.CLOSED
        following = admit_record(record, PROVIDER, later, self.policy)
        assert following is not None and not following.probe

    @invariant()
    def one_probe_at_a_time(self) -> None:
        """(b) one live token, and while its probe is out nobody else is let through."""
        live = [permit for permit, _ in self.held if self.is_live_probe(permit)]
        assert len(live) <= 1, "(b) two unanswered probes with the live token"
        if self.probe_holds_the_slot():
            assert self.breaker.health(PROVIDER).state is CircuitState.HALF_OPEN
            assert self.breaker.standing(PROVIDER) is Standing.OPEN, "(b) slot freed early"


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerProperties = BreakerMachine.TestCase


class RedisBreakerMachine(BreakerMachine):
    """The same machine on a :class:`RedisCircuitBreaker`: its Lua must agree with the record."""

    url = ""

    @initialize(policy=policies)
    def start(self, policy: HealthPolicy) -> None:
        from hypotez_providers.state import RedisConnection
        from hypotez_providers.state.redis_breaker import RedisCircuitBreaker

        super().start(policy)
        self.connection = RedisConnection(
            self.url, namespace=f"machine-{next(_namespaces)}", timeout=1.0
        )
        self.breaker = RedisCircuitBreaker(self.connection, policy, clock=self.clock)

    def teardown(self) -> None:
        if hasattr(self, "connection"):
            self.connection.close()


def test_the_redis_breaker_agrees_with_the_record_under_any_sequence(redis_url):
    RedisBreakerMachine.url = redis_url
    run_state_machine_as_test(
        RedisBreakerMachine,
        settings=settings(max_examples=60, stateful_step_count=30, deadline=None),
    )


@both
def test_a_late_success_does_not_cut_short_a_cooldown_a_retry_after_set():
    breaker, clock = make_breaker()
    early = admitted(breaker)  # admitted before the circuit opens, answering late
    fail(breaker, open_now=True, retry_after=120)
    clock.now += 1
    breaker.succeeded(early, 0.2)
    assert state(breaker) is CircuitState.OPEN
    assert breaker.admit(PROVIDER) is None, "only the probe decides while open"
    assert breaker.health(PROVIDER).successes == 1


@both
def test_a_probes_success_starts_the_failure_history_afresh():
    breaker, clock = opened(failure_threshold=3, min_calls=4, failure_rate=0.5)
    clock.now += 10
    breaker.succeeded(admitted(breaker), 0.1)
    clock.now += 1
    fail(breaker)  # one failure after recovering: not a 3-in-4 failure rate
    assert state(breaker) is CircuitState.CLOSED
