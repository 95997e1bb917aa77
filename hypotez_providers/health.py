"""Provider health: a circuit breaker per provider, behind a small store interface.

A provider's circuit is *closed* (calls go through) until it fails ``failure_threshold`` times
in a row, or its failure rate over the last ``window`` seconds passes ``failure_rate``. It is
then *open* for a cooldown (at least what the provider's Retry-After asked): calls skip it.
When the cooldown ends, one call is let through as a probe (*half-open*): success closes the
circuit, failure opens it again. The logic is pure (``now`` is passed in); the store only holds
the records, so a store shared between processes can replace :class:`MemoryHealthStore`.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class CircuitState(str, Enum):
    """Whether calls go to a provider: closed (yes), open (no), half-open (one probe)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class HealthPolicy(BaseModel):
    """When a circuit opens and for how long."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(2, ge=1, description="Consecutive failures that open it.")
    cooldown: float = Field(10.0, ge=0, description="Seconds it stays open before a probe.")
    window: float = Field(60.0, gt=0, description="Seconds of history for the failure rate.")
    failure_rate: float = Field(0.5, gt=0, le=1, description="Failure share that opens it.")
    min_calls: int = Field(10, ge=1, description="Calls in the window before the rate counts.")


class ProviderHealth(BaseModel):
    """What is known of one provider's health, as listings and metrics show it."""

    model_config = ConfigDict(frozen=True)

    provider: str
    state: CircuitState
    consecutive_failures: int
    cooled_down_until: float | None = Field(
        None, description="Unix time when an open circuit lets a probe through."
    )
    latency_average: float | None = Field(None, description="Seconds, over recent successes.")
    successes: int
    failures: int


@dataclass
class HealthRecord:
    """The mutable state a store keeps per provider (times are ``time.monotonic()`` seconds)."""

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    open_until: float = 0.0
    probing: bool = False
    latency_average: float | None = None
    successes: int = 0
    failures: int = 0
    recent: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=1000))


class HealthStore(Protocol):
    """Where health records live. ``change`` must be applied atomically per provider."""

    def update(self, provider: str, change: Callable[[HealthRecord], T]) -> T:
        """Apply ``change`` to the provider's record (created if absent); return its result."""
        ...

    def snapshot(self, provider: str) -> HealthRecord:
        """A copy of the provider's record."""
        ...


class MemoryHealthStore:
    """The default store: records in this process's memory, one lock for all."""

    def __init__(self) -> None:
        self._records: dict[str, HealthRecord] = {}
        self._lock = threading.Lock()

    def update(self, provider: str, change: Callable[[HealthRecord], T]) -> T:
        """Apply ``change`` to the provider's record under the lock."""
        with self._lock:
            record = self._records.get(provider)
            if record is None:
                record = self._records[provider] = HealthRecord()
            return change(record)

    def snapshot(self, provider: str) -> HealthRecord:
        """A deep copy of the provider's record (a fresh one if never seen)."""
        with self._lock:
            return copy.deepcopy(self._records.get(provider) or HealthRecord())


def admit(record: HealthRecord, now: float) -> bool:
    """Whether a call may go to the provider now; claims the probe slot when half-open."""
    if record.state is CircuitState.CLOSED:
        return True
    if record.state is CircuitState.OPEN:
        if now < record.open_until:
            return False
        record.state = CircuitState.HALF_OPEN
        record.probing = False
    if record.probing:
        return False
    record.probing = True
    return True


def release(record: HealthRecord) -> None:
    """Give back a probe slot claimed by :func:`admit` when the call never reached the provider."""
    record.probing = False


def record_success(record: HealthRecord, latency: float, now: float) -> None:
    """A call succeeded after ``latency`` seconds: the circuit closes."""
    record.successes += 1
    record.consecutive_failures = 0
    record.state = CircuitState.CLOSED
    record.probing = False
    record.recent.append((now, True))
    previous = record.latency_average
    record.latency_average = latency if previous is None else previous * 0.8 + latency * 0.2


def record_failure(
    record: HealthRecord,
    now: float,
    policy: HealthPolicy,
    retry_after: float | None = None,
    *,
    force_open: bool = False,
) -> None:
    """A call failed: count it, and open the circuit if the policy says so (or ``force_open``)."""
    record.failures += 1
    record.consecutive_failures += 1
    record.recent.append((now, False))
    if force_open or record.state is CircuitState.HALF_OPEN or _should_open(record, now, policy):
        record.state = CircuitState.OPEN
        record.probing = False
        record.open_until = now + max(policy.cooldown, retry_after or 0.0)


def _should_open(record: HealthRecord, now: float, policy: HealthPolicy) -> bool:
    if record.consecutive_failures >= policy.failure_threshold:
        return True
    while record.recent and record.recent[0][0] < now - policy.window:
        record.recent.popleft()
    calls = len(record.recent)
    if calls < policy.min_calls:
        return False
    failures = sum(1 for _, ok in record.recent if not ok)
    return failures / calls >= policy.failure_rate


def describe(provider: str, record: HealthRecord, now: float) -> ProviderHealth:
    """The record as a :class:`ProviderHealth`, with the reopening time as Unix time."""
    until = None
    if record.state is CircuitState.OPEN:
        until = time.time() + max(0.0, record.open_until - now)
    return ProviderHealth(
        provider=provider,
        state=record.state,
        consecutive_failures=record.consecutive_failures,
        cooled_down_until=until,
        latency_average=record.latency_average,
        successes=record.successes,
        failures=record.failures,
    )
