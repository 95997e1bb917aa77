"""A circuit breaker whose circuits live on Redis, shared by every process that names it.

Same rules as :class:`~hypotez_providers.health.MemoryCircuitBreaker` (consecutive failures
and the failure rate open a circuit, a cooldown that a Retry-After may lengthen up to
``max_cooldown``, one half-open probe at a time with a token and a lease, failures while open
never extending the cooldown, a failure demoting the provider for one cooldown), but each
transition is one Lua script run atomically by Redis, on Redis' own clock, so a circuit one
process opens is open for all of them. See :mod:`._circuit_lua` for the keys.

What a call costs, in round trips to Redis:

* :meth:`~RedisCircuitBreaker.admit`: none while this process's last script for the provider
  saw its circuit closed with no failure less than ``fresh_for`` seconds ago (``[state]
  fresh_for``, 0.25 s by default) and no successes are due to be handed over; else one
  ``EVALSHA``, which leaves a fresh note. So a healthy provider costs about one round trip
  per ``fresh_for`` seconds and per 64 calls, whatever the rate of calls. The price: a
  circuit another process opens is honoured here up to ``fresh_for`` later (this process's
  own failures, a half-open, open or demoted circuit, and a process that has not yet seen
  the provider always ask Redis). ``fresh_for = 0`` asks Redis on every admit.
* :meth:`~RedisCircuitBreaker.succeeded` on a circuit that admit (or the last script) saw
  closed with no failure: none. The success is counted in this process and handed to Redis
  (its time kept as an age) by the next script for that provider that changes something, or
  by an admit once 64 are waiting or the oldest is ``note_seconds`` old: the shared failure
  rate still counts it, and this process's own failures always after its successes.
  Otherwise one ``EVALSHA``. So a healthy provider's admit writes nothing.
* :meth:`~RedisCircuitBreaker.failed`: one ``EVALSHA``; :meth:`~RedisCircuitBreaker.release`
  of a probe: one; of an ordinary permit: none.
* :meth:`~RedisCircuitBreaker.standing`: none while the note left by this process's last
  script for that provider is younger than ``note_seconds`` (1 s); else one ``EVALSHA`` that
  reads the record and leaves a fresh note.
* :meth:`~RedisCircuitBreaker.health`: one ``EVALSHA``. Latency averages stay in each process.

When Redis fails or is marked down (:class:`RedisConnection` answers ``UNAVAILABLE`` within
its timeout), the operation goes to an embedded :class:`MemoryCircuitBreaker` with the same
policy, so calls go on with this process's own circuits; a permit it gave is answered to it.
When Redis is back the shared circuits resume as they were (local ones are not merged in).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..health import (
    CircuitRecord,
    CircuitState,
    HealthPolicy,
    MemoryCircuitBreaker,
    Permit,
    ProviderHealth,
    Standing,
    describe,
    standing_of,
)
from ._circuit_lua import RECENT, scripts
from .connection import UNAVAILABLE, RedisConnection

#: Successes of a clean circuit that admit hands over at once (else within ``note_seconds``).
_BATCH = 64
#: Seconds an admit trusts a closed, clean circuit that this process's last script saw.
FRESH_FOR = 0.25
_STATES = {"c": CircuitState.CLOSED, "o": CircuitState.OPEN, "h": CircuitState.HALF_OPEN}


@dataclass(frozen=True, slots=True)
class _LocalPermit(Permit):
    """A permit the in-memory fallback gave (Redis was down): answered to the fallback."""


@dataclass
class _Note:
    """What this process's last script for a provider saw, and when (process monotonic)."""

    record: CircuitRecord
    redis_now: float
    seen_at: float


class RedisCircuitBreaker:
    """Circuits shared through Redis (see the module docs); thread-safe.

    ``clock`` replaces Redis' ``TIME`` (tests only: it must be the same in every process);
    ``note_seconds`` is how long :meth:`standing` trusts what the last script saw, and
    ``fresh_for`` how long :meth:`admit` trusts a closed, clean circuit seen by it (``[state]
    fresh_for``; 0 asks Redis on every admit).
    """

    def __init__(
        self,
        connection: RedisConnection,
        policy: HealthPolicy | None = None,
        *,
        clock: Callable[[], float] | None = None,
        note_seconds: float = 1.0,
        fresh_for: float = FRESH_FOR,
    ) -> None:
        self.policy = policy or HealthPolicy()
        self.connection = connection
        self.fallback = MemoryCircuitBreaker(self.policy, clock=clock or time.time)
        self.note_seconds = note_seconds
        self.fresh_for = fresh_for
        self._clock = clock
        self._scripts = {
            name: connection.script(source) for name, source in scripts(self.policy).items()
        }
        self._notes: dict[str, _Note] = {}
        self._pending: dict[str, deque[float]] = {}  # unreported successes, by monotonic time
        self._latency: dict[str, float] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"RedisCircuitBreaker({self.connection!r}, {self.policy!r})"

    def admit(self, provider: str) -> Permit | None:
        """A permit to call ``provider`` now, or ``None`` when its circuit is open.

        Given without asking Redis while this process's last script for the provider saw its
        circuit closed with no failure less than ``fresh_for`` seconds ago (see the module).
        """
        note = self._notes.get(provider)
        if (
            note is not None
            and _is_clean(note.record)
            and time.monotonic() - note.seen_at < self.fresh_for
            and not self._successes_due(provider)
            and self.connection.available
        ):
            return Permit(provider)
        reply = self._run("admit", provider)
        if reply is None:
            permit = self.fallback.admit(provider)
            return None if permit is None else _LocalPermit(*_fields(permit))
        if reply[0] == b"0":
            return None
        return Permit(provider, probe=reply[0] == b"2", token=int(reply[1]))

    def succeeded(self, permit: Permit, latency: float) -> None:
        """The call answered after ``latency`` seconds: the circuit closes."""
        provider = permit.provider
        local = isinstance(permit, _LocalPermit)
        with self._lock:
            previous = self._latency.get(provider)
            self._latency[provider] = (
                latency if previous is None else previous * 0.8 + latency * 0.2
            )
            note = self._notes.get(provider)
            if not local and not permit.probe and note is not None and _is_clean(note.record):
                # nothing to change on Redis: counted there with this process's next script
                self._pending.setdefault(provider, deque(maxlen=RECENT)).append(self._local_now())
                return
        if local or self._run("succeed", provider, _bit(permit.probe), str(permit.token)) is None:
            self.fallback.succeeded(permit, latency)

    def failed(
        self, permit: Permit, *, retry_after: float | None = None, open_now: bool = False
    ) -> None:
        """The call failed through the provider's fault; the circuit may open."""
        if not isinstance(permit, _LocalPermit):
            seconds = repr(self.policy.open_for(retry_after))
            token = str(permit.token)
            args = (_bit(permit.probe), token, seconds, _bit(open_now))
            if self._run("fail", permit.provider, *args) is not None:
                return
        self.fallback.failed(permit, retry_after=retry_after, open_now=open_now)

    def release(self, permit: Permit) -> None:
        """The call ended with no verdict on the provider; a probe slot is given back."""
        if not permit.probe:
            return
        local = isinstance(permit, _LocalPermit)
        if local or self._run("release", permit.provider, "1", str(permit.token)) is None:
            self.fallback.release(permit)

    def standing(self, provider: str) -> Standing:
        """Where the provider stands for ordering candidates; claims nothing.

        Read from the note the last script left when it is fresh, else from Redis (one round
        trip, which leaves a note), else from the in-memory fallback.
        """
        note = self._notes.get(provider)
        if note is None or self._age(note) >= self.note_seconds:
            if not self.connection.available or self._run("read", provider) is None:
                return self.fallback.standing(provider)
            note = self._notes[provider]
        return standing_of(note.record, self._redis_now(note))

    def health(self, provider: str) -> ProviderHealth:
        """What is known of the provider's health (from Redis; the latency is this process's)."""
        if self._run("read", provider) is None:
            return self.fallback.health(provider)
        note = self._notes[provider]
        record = note.record
        record.latency_average = self._latency.get(provider)
        return describe(provider, record)

    def _successes_due(self, provider: str, now: float | None = None) -> bool:
        """Whether admit must hand the waiting successes over (64, or ``note_seconds`` old)."""
        pending = self._pending.get(provider)
        if not pending:
            return False
        now = self._local_now() if now is None else now
        return len(pending) >= _BATCH or now - pending[0] >= self.note_seconds

    def _run(self, operation: str, provider: str, *args: str) -> list[bytes] | None:
        """Run one script on ``provider``'s record; ``None`` when Redis is unavailable."""
        now = self._local_now()
        with self._lock:
            # admit hands successes over in batches, so that a healthy call writes nothing
            due = operation != "admit" or self._successes_due(provider, now)
            pending = self._pending.pop(provider, None) if due else None
        ages = ",".join(repr(now - at) for at in pending) if pending else ""
        keys = [
            self.connection.key("circuit", provider),
            self.connection.key("circuit", provider, "recent"),
        ]
        clock = repr(self._clock()) if self._clock is not None else ""
        script = self._scripts[operation]
        reply: Any = self.connection.run(
            lambda client: script(keys=keys, args=[clock, ages, *args], client=client)
        )
        if reply is UNAVAILABLE:
            # what Redis last said is not this provider's state now: the fallback's is
            self._notes.pop(provider, None)
            if pending:
                with self._lock:
                    kept = self._pending.setdefault(provider, deque(maxlen=RECENT))
                    kept.extendleft(reversed(pending))
            return None
        self._notes[provider] = _note(reply, time.monotonic())
        return list(reply)

    def _local_now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic()

    def _age(self, note: _Note) -> float:
        return time.monotonic() - note.seen_at

    def _redis_now(self, note: _Note) -> float:
        if self._clock is not None:
            return self._clock()
        return note.redis_now + self._age(note)


def _note(reply: list[bytes], seen_at: float) -> _Note:
    _, _, state, failures_in_a_row, open_until, demoted_until, probe_until, now, ok, bad = reply
    record = CircuitRecord(
        state=_STATES[state.decode()],
        consecutive_failures=int(failures_in_a_row),
        open_until=float(open_until),
        demoted_until=float(demoted_until),
        probe_until=float(probe_until),
        successes=int(ok),
        failures=int(bad),
    )
    return _Note(record, float(now), seen_at)


def _is_clean(record: CircuitRecord) -> bool:
    return record.state is CircuitState.CLOSED and record.consecutive_failures == 0


def _fields(permit: Permit) -> tuple[str, bool, int]:
    return permit.provider, permit.probe, permit.token


def _bit(flag: bool) -> str:
    return "1" if flag else "0"
