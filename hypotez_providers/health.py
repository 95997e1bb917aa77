"""Provider health: a circuit breaker per provider, behind a domain interface.

A provider's circuit is *closed* (calls go through) until it fails ``failure_threshold`` times
in a row, or its failure rate over the last ``window`` seconds passes ``failure_rate``. It is
then *open* for a cooldown (longer if the provider's Retry-After asked, up to ``max_cooldown``):
calls skip it. When the cooldown ends, one call is let through as a probe (*half-open*):
success closes the circuit, failure opens it again for a fresh cooldown.

The router speaks to a :class:`CircuitBreaker`: :meth:`~CircuitBreaker.admit` a call (a
:class:`Permit`, or ``None`` to skip the provider), then exactly one of
:meth:`~CircuitBreaker.succeeded`, :meth:`~CircuitBreaker.failed` or
:meth:`~CircuitBreaker.release` (the call never got an answer either way: the caller's error,
the deadline, an interrupt). The state machine is pure (:func:`admit_record` and friends, with
``now`` passed in) and times are wall-clock seconds, so a breaker shared between processes
only has to keep the records somewhere else.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class CircuitState(str, Enum):
    """Whether calls go to a provider: closed (yes), open (no), half-open (one probe)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class HealthPolicy(BaseModel):
    """When a circuit opens, for how long, and how long a failing provider waits its turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    failure_threshold: int = Field(2, ge=1, description="Consecutive failures that open it.")
    cooldown: float = Field(
        10.0, ge=0, allow_inf_nan=False, description="Seconds it stays open before a probe."
    )
    max_cooldown: float = Field(
        3600.0,
        ge=0,
        allow_inf_nan=False,
        description="Longest a Retry-After may keep it open, in seconds.",
    )
    window: float = Field(
        60.0, gt=0, allow_inf_nan=False, description="Seconds of history for the failure rate."
    )
    failure_rate: float = Field(0.5, gt=0, le=1, description="Failure share that opens it.")
    min_calls: int = Field(10, ge=1, description="Calls in the window before the rate counts.")
    probe_lease: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds a probe slot stays claimed if its holder never reports back.",
    )

    def open_for(self, retry_after: float | None) -> float:
        """Seconds a circuit opened now stays open: the cooldown, or the asked wait if longer."""
        return max(self.cooldown, min(retry_after or 0.0, self.max_cooldown))


class Standing(str, Enum):
    """Where a provider stands for the next call's order (read without claiming anything)."""

    READY = "ready"  #: closed and not failing lately, or cooled down and due a probe
    DEMOTED = "demoted"  #: closed, but failed within the last cooldown: tried after the ready
    OPEN = "open"  #: open, cooling down: skipped


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


@dataclass(frozen=True, slots=True)
class Permit:
    """Leave to call a provider, from :meth:`CircuitBreaker.admit`; report back with it once.

    ``probe`` is true when this call is the half-open circuit's one probe: it gets a single
    attempt, and its outcome closes or reopens the circuit. ``token`` identifies the claim.
    """

    provider: str
    probe: bool = False
    token: int = 0


@dataclass
class CircuitRecord:
    """The state a breaker keeps per provider (times are wall-clock Unix seconds)."""

    state: CircuitState = CircuitState.CLOSED
    consecutive_failures: int = 0
    open_until: float = 0.0
    demoted_until: float = 0.0
    probe_token: int = 0
    probe_until: float = 0.0
    latency_average: float | None = None
    successes: int = 0
    failures: int = 0
    recent: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=1000))


class CircuitBreaker(Protocol):
    """Decides which providers a call may use, and hears how each call went.

    Every :class:`Permit` that :meth:`admit` gives must be answered exactly once, on every exit
    path: :meth:`succeeded`, :meth:`failed`, or :meth:`release`.
    """

    def admit(self, provider: str) -> Permit | None:
        """A permit to call ``provider`` now, or ``None`` when its circuit is open."""
        ...

    def succeeded(self, permit: Permit, latency: float) -> None:
        """The call answered after ``latency`` seconds: the circuit closes."""
        ...

    def failed(
        self, permit: Permit, *, retry_after: float | None = None, open_now: bool = False
    ) -> None:
        """The call failed through the provider's fault; the circuit may open."""
        ...

    def release(self, permit: Permit) -> None:
        """The call ended with no verdict on the provider; a probe slot is given back."""
        ...

    def standing(self, provider: str) -> Standing:
        """Where the provider stands for ordering candidates; claims nothing."""
        ...

    def health(self, provider: str) -> ProviderHealth:
        """What is known of the provider's health."""
        ...


class MemoryCircuitBreaker:
    """The default breaker: records in this process's memory, one lock for all.

    ``clock`` gives wall-clock seconds (injectable for tests).
    """

    def __init__(
        self, policy: HealthPolicy | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.policy = policy or HealthPolicy()
        self._clock = clock
        self._records: dict[str, CircuitRecord] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCircuitBreaker({self.policy!r})"

    def admit(self, provider: str) -> Permit | None:
        """A permit to call ``provider`` now, or ``None`` when its circuit is open."""
        record = self._records.get(provider)
        if record is None or record.state is CircuitState.CLOSED:
            return Permit(provider)  # no lock: closed is the common case, and a read is atomic
        with self._lock:
            return admit_record(record, provider, self._clock(), self.policy)

    def succeeded(self, permit: Permit, latency: float) -> None:
        """The call answered after ``latency`` seconds: the circuit closes."""
        with self._lock:
            succeed_record(self._record(permit.provider), permit, latency, self._clock())

    def failed(
        self, permit: Permit, *, retry_after: float | None = None, open_now: bool = False
    ) -> None:
        """The call failed through the provider's fault; the circuit may open."""
        with self._lock:
            record = self._record(permit.provider)
            fail_record(record, permit, self._clock(), self.policy, retry_after, open_now)

    def release(self, permit: Permit) -> None:
        """The call ended with no verdict on the provider; a probe slot is given back."""
        if not permit.probe:
            return
        with self._lock:
            release_record(self._record(permit.provider), permit)

    def standing(self, provider: str) -> Standing:
        """Where the provider stands for ordering candidates; claims nothing."""
        record = self._records.get(provider)
        if record is None:
            return Standing.READY
        return standing_of(record, self._clock())

    def health(self, provider: str) -> ProviderHealth:
        """What is known of the provider's health."""
        with self._lock:
            record = self._records.get(provider) or CircuitRecord()
            return describe(provider, record)

    def _record(self, provider: str) -> CircuitRecord:
        record = self._records.get(provider)
        if record is None:
            record = self._records[provider] = CircuitRecord()
        return record


def admit_record(
    record: CircuitRecord, provider: str, now: float, policy: HealthPolicy
) -> Permit | None:
    """Whether a call may go to the provider now; claims the probe slot when half-open."""
    if record.state is CircuitState.CLOSED:
        return Permit(provider)
    if record.state is CircuitState.OPEN:
        if now < record.open_until:
            return None
        record.state = CircuitState.HALF_OPEN
    elif record.probe_until > now:
        return None  # half-open, and the probe is out
    record.probe_token += 1
    record.probe_until = now + policy.probe_lease
    return Permit(provider, probe=True, token=record.probe_token)


def succeed_record(record: CircuitRecord, permit: Permit, latency: float, now: float) -> None:
    """A call answered: counted; a closed circuit stays closed, a probe's success closes it.

    While the circuit is open or half-open only the probe decides: the late success of a call
    admitted before it opened does not cut short a cooldown (which a Retry-After may have
    set), just as a late failure does not extend one. A probe's success starts the failure
    history afresh, so failures from before the circuit opened do not reopen it.
    """
    record.successes += 1
    previous = record.latency_average
    record.latency_average = latency if previous is None else previous * 0.8 + latency * 0.2
    if record.state is not CircuitState.CLOSED:
        if not (permit.probe and permit.token == record.probe_token):
            record.recent.append((now, True))
            return
        record.recent.clear()
        record.state = CircuitState.CLOSED
        record.probe_until = 0.0
    record.consecutive_failures = 0
    record.demoted_until = 0.0
    record.recent.append((now, True))


def fail_record(
    record: CircuitRecord,
    permit: Permit,
    now: float,
    policy: HealthPolicy,
    retry_after: float | None = None,
    open_now: bool = False,
) -> None:
    """A call failed: count it, and open the circuit when the policy (or ``open_now``) says so.

    A failing probe reopens the circuit for a fresh cooldown. Failures of calls admitted before
    the circuit opened are counted but never extend its cooldown.
    """
    record.failures += 1
    record.recent.append((now, False))
    if record.state is CircuitState.OPEN:
        return  # recorded while open: the cooldown stands as it was set
    if record.state is CircuitState.HALF_OPEN:
        if permit.probe and permit.token == record.probe_token:
            _open(record, now, policy.open_for(retry_after))
        return
    record.consecutive_failures += 1
    record.demoted_until = now + policy.cooldown
    if open_now or _should_open(record, now, policy):
        _open(record, now, policy.open_for(retry_after))


def release_record(record: CircuitRecord, permit: Permit) -> None:
    """Give back the probe slot ``permit`` claimed, if it still holds it."""
    if permit.probe and permit.token == record.probe_token:
        record.probe_until = 0.0


def standing_of(record: CircuitRecord, now: float) -> Standing:
    """Where the record's provider stands at ``now``."""
    if record.state is CircuitState.OPEN:
        return Standing.OPEN if now < record.open_until else Standing.READY
    if record.state is CircuitState.HALF_OPEN:
        return Standing.OPEN if record.probe_until > now else Standing.READY
    return Standing.DEMOTED if record.demoted_until > now else Standing.READY


def describe(provider: str, record: CircuitRecord) -> ProviderHealth:
    """The record as a :class:`ProviderHealth`."""
    return ProviderHealth(
        provider=provider,
        state=record.state,
        consecutive_failures=record.consecutive_failures,
        cooled_down_until=record.open_until if record.state is CircuitState.OPEN else None,
        latency_average=record.latency_average,
        successes=record.successes,
        failures=record.failures,
    )


def _open(record: CircuitRecord, now: float, seconds: float) -> None:
    record.state = CircuitState.OPEN
    record.open_until = now + seconds
    record.probe_until = 0.0


def _should_open(record: CircuitRecord, now: float, policy: HealthPolicy) -> bool:
    if record.consecutive_failures >= policy.failure_threshold:
        return True
    recent = record.recent
    while recent and recent[0][0] < now - policy.window:
        recent.popleft()
    calls = len(recent)
    if calls < policy.min_calls:
        return False
    failures = sum(1 for _, ok in recent if not ok)
    return failures / calls >= policy.failure_rate
