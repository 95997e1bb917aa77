"""The circuit breaker's rules, on injected time (no sockets, no sleeping)."""

from hypotez_providers.health import (
    CircuitState,
    HealthPolicy,
    HealthRecord,
    MemoryHealthStore,
    admit,
    describe,
    record_failure,
    record_success,
    release,
)

POLICY = HealthPolicy(failure_threshold=3, cooldown=10, window=60, failure_rate=0.5, min_calls=10)


def fail(record, now, times=1, retry_after=None):
    for _ in range(times):
        record_failure(record, now, POLICY, retry_after)


def test_circuit_opens_after_consecutive_failures_and_skips_until_the_cooldown_ends():
    record = HealthRecord()
    fail(record, now=0, times=2)
    assert record.state is CircuitState.CLOSED and admit(record, 0)
    fail(record, now=1)
    assert record.state is CircuitState.OPEN
    assert not admit(record, 5)
    assert not admit(record, 10.9)


def test_after_cooldown_a_single_probe_goes_through_and_success_closes():
    record = HealthRecord()
    fail(record, now=0, times=3)
    assert admit(record, 10)
    assert record.state is CircuitState.HALF_OPEN
    assert not admit(record, 10), "only one probe at a time"
    record_success(record, latency=0.2, now=10.5)
    assert record.state is CircuitState.CLOSED and record.consecutive_failures == 0
    assert admit(record, 10.6)


def test_a_failed_probe_opens_the_circuit_again():
    record = HealthRecord()
    fail(record, now=0, times=3)
    assert admit(record, 10)
    fail(record, now=10)
    assert record.state is CircuitState.OPEN
    assert not admit(record, 19)
    assert admit(record, 20)


def test_a_released_probe_slot_can_be_claimed_again():
    record = HealthRecord()
    fail(record, now=0, times=3)
    assert admit(record, 10)
    release(record)
    assert admit(record, 10)


def test_cooldown_honours_a_longer_retry_after():
    record = HealthRecord()
    fail(record, now=0, times=2)
    fail(record, now=0, retry_after=45)
    assert not admit(record, 44)
    assert admit(record, 45)


def test_failure_rate_over_the_window_opens_the_circuit():
    record = HealthRecord()
    for second in range(10):
        if second % 2:
            fail(record, now=second)
        else:
            record_success(record, 0.1, now=second)
        if second < 9:
            assert record.state is CircuitState.CLOSED
    assert record.state is CircuitState.OPEN


def test_old_calls_leave_the_window():
    record = HealthRecord()
    for second in range(9):
        fail(record, now=second) if second % 3 == 0 else record_success(record, 0.1, now=second)
    for second in range(200, 210):
        record_success(record, 0.1, now=second)
    fail(record, now=211)
    assert record.state is CircuitState.CLOSED


def test_health_is_observable_with_counts_latency_and_reopening_time():
    store = MemoryHealthStore()
    store.update("a", lambda r: record_success(r, 0.5, now=1))
    store.update("a", lambda r: record_success(r, 1.0, now=2))
    store.update("a", lambda r: fail(r, now=3, times=3))
    health = describe("a", store.snapshot("a"), now=3)
    assert (health.state, health.successes, health.failures) == (CircuitState.OPEN, 2, 3)
    assert health.consecutive_failures == 3
    assert health.latency_average == 0.5 * 0.8 + 1.0 * 0.2
    assert health.cooled_down_until is not None
    assert describe("b", store.snapshot("b"), now=3).state is CircuitState.CLOSED
