"""The race of a hedged call: a second provider started while the first is silent (internal).

:func:`hedged_first_answer` replaces :meth:`RoutedCall.first_answer` for a hedged call. Each
candidate runs in a thread of its own (a *leg*: a shallow copy of the call, so its retry
decision is its own while the attempts list is shared). The caller's thread waits for the
first leg; when it has given no first chunk after the hedge's delay, the next admitted
candidate is started too, once per call. The first leg whose operation succeeds wins, under
the race's lock: the other is cancelled at once through its attempt's :class:`Watch` (its
socket is shut, so its thread ends promptly), its operation's outcome becomes
:class:`HedgeCancelled` (not a :class:`ProviderError`), so the attempt loop answers its
permit with ``release``, never ``failed``, and the caller's thread records it as a failed
attempt whose error is ``HedgeCancelled``. A leg that fails leaves the other running; when
none is running, failover goes on as usual with the next candidate.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from ._call import CircuitOpened, Operation, RoutedCall
from ._deadline import Watch
from .balancing import LoadStats, tracking
from .context import ProviderContext
from .errors import ProviderError, Routing
from .health import Permit
from .hedging import Hedge
from .redaction import logger_for
from .results import Attempt
from .selection import Candidate

T = TypeVar("T")
logger = logger_for("hypotez_providers.router")
Outcome = Literal["ok", "failed", "cancelled", "raised"]


class HedgeCancelled(Exception):
    """A hedged leg lost the race: another provider answered first. No verdict on this one."""


@dataclass(eq=False)
class _Leg(Generic[T]):
    """One candidate racing in its own thread."""

    candidate: Candidate
    call: RoutedCall
    started: float
    watch: Watch | None = None
    cancelled: bool = False
    done: bool = False
    result: T | None = None
    error: BaseException | None = None
    outcome: Outcome = "raised"
    thread: threading.Thread | None = field(default=None, repr=False)


class _Race(Generic[T]):
    """The legs of one hedged call, and who won."""

    def __init__(
        self, call: RoutedCall, operation: Operation[T], discard: Callable[[T], None]
    ) -> None:
        self.call = call
        self.operation = operation
        self.discard = discard
        self.lock = threading.Lock()
        self.legs: list[_Leg[T]] = []
        self.winner: _Leg[T] | None = None
        self.reports: queue.SimpleQueue[_Leg[T]] = queue.SimpleQueue()

    def start(self, candidate: Candidate, permit: Permit) -> _Leg[T]:
        leg: _Leg[T] = _Leg(candidate, copy.copy(self.call), time.monotonic())
        leg.thread = threading.Thread(
            target=self._run, args=(leg, permit), name="hypotez-hedge", daemon=True
        )
        self.legs.append(leg)
        leg.thread.start()
        return leg

    def _run(self, leg: _Leg[T], permit: Permit) -> None:
        try:
            leg.result = leg.call.try_candidate(leg.candidate, permit, self._guarded(leg))
            leg.outcome = "ok"
        except HedgeCancelled:
            leg.outcome = "cancelled"
        except ProviderError as error:
            leg.outcome, leg.error = "failed", error
        except CircuitOpened:
            leg.call.skip(leg.candidate, "circuit opened during this call; not retried")
            leg.outcome = "failed"
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread, raised there
            leg.outcome, leg.error = "raised", error
        finally:
            with self.lock:
                leg.done = True
            self.reports.put(leg)

    def _guarded(self, leg: _Leg[T]) -> Operation[T]:
        """The operation for ``leg``: it wins the race, or ends in :class:`HedgeCancelled`."""

        def run(candidate: Candidate, context: ProviderContext, watch: Watch) -> T:
            with self.lock:
                if leg.cancelled:
                    raise HedgeCancelled(candidate.provider.name)
                leg.watch = watch
            try:
                result = self.operation(candidate, context, watch)
            except ProviderError as error:
                with self.lock:
                    leg.watch = None
                    if leg.cancelled:
                        raise HedgeCancelled(candidate.provider.name) from error
                raise
            with self.lock:
                leg.watch = None
                if not leg.cancelled:
                    self.winner = leg
                    why = f"cancelled: {candidate.provider.name} answered first (hedged request)"
                    for other in self.legs:
                        if other is not leg:
                            self._cancel(other, why)
                    return result
            self.discard(result)
            raise HedgeCancelled(candidate.provider.name)

        return run

    def _cancel(self, leg: _Leg[T], why: str) -> None:
        """Under the lock: stop ``leg`` if it is still running, and record it cancelled."""
        if leg.cancelled or leg.done:
            return
        leg.cancelled = True
        if leg.watch is not None:
            leg.watch.cancel(why)
        self.call.attempts.append(
            Attempt(
                provider=leg.candidate.provider.name,
                model=leg.candidate.model,
                outcome="failed",
                error="HedgeCancelled",
                message=why,
                duration=time.monotonic() - leg.started,
            )
        )

    def cancel_all(self) -> None:
        """Stop every leg still running: the call is over without them."""
        with self.lock:
            for leg in self.legs:
                self._cancel(leg, "cancelled: the call ended first (hedged request)")


def hedged_first_answer(
    call: RoutedCall,
    operation: Operation[T],
    delay_for: Callable[[Candidate], float],
    discard: Callable[[T], None],
    candidates: Sequence[Candidate] | None = None,
) -> tuple[Candidate, T] | None:
    """Like :meth:`RoutedCall.first_answer`, with one hedge after ``delay_for(first)`` seconds.

    ``discard`` cleans up a result that came in after another leg had won (closes a stream).
    Raises the error of a failure whose routing is :attr:`Routing.RAISE`, after cancelling
    the other leg.
    """
    race: _Race[T] = _Race(call, operation, discard)
    admitted: Iterator[tuple[Candidate, Permit]] = call.admitted(
        call.candidates if candidates is None else candidates
    )
    running: list[_Leg[T]] = []
    hedged = False
    previous: Candidate | None = None

    def start_next() -> bool:
        nonlocal previous
        nxt = next(admitted, None)
        if nxt is None:
            return False
        candidate, permit = nxt
        if previous is not None and not running:
            call._fallback(previous, candidate)
        previous = candidate
        running.append(race.start(candidate, permit))
        return True

    try:
        start_next()
        while running:
            timeout = None
            if not hedged:
                first = running[0]
                timeout = max(0.0, first.started + delay_for(first.candidate) - time.monotonic())
            try:
                leg = race.reports.get(timeout=timeout)
            except queue.Empty:
                hedged = True  # whether or not a next candidate is left: one chance per call
                silent = running[0].candidate.provider.name
                if start_next():
                    logger.info(
                        "hedging: %s gave no first chunk within %.3gs; %s started too",
                        silent,
                        time.monotonic() - running[0].started,
                        running[-1].candidate.provider.name,
                    )
                continue
            running.remove(leg)
            if leg.outcome == "ok":
                return leg.candidate, leg.result  # type: ignore[return-value]
            if leg.outcome == "raised":
                assert leg.error is not None
                raise leg.error
            if leg.outcome == "failed" and leg.call.decision is Routing.RAISE:
                assert leg.error is not None
                raise leg.error
            if not running:
                start_next()
        return None
    finally:
        if running:
            race.cancel_all()


@dataclass(frozen=True, slots=True)
class Answering:
    """How a call finds its first answer: hedged or not, its attempts tracked in stats or not.

    ``hedge``: the call's hedge (``None``: no hedge). ``stats``: where attempts are counted in
    flight and timed (``None``: not tracked; the default, at no cost).
    """

    hedge: Hedge | None = None
    stats: LoadStats | None = None

    def first_answer(
        self,
        call: RoutedCall,
        operation: Operation[T],
        discard: Callable[[T], None],
        candidates: Sequence[Candidate] | None = None,
        *,
        until_done: bool = False,
        hedged: bool = True,
    ) -> tuple[Candidate, T] | None:
        """The first answer among ``candidates`` (default: the call's), as the call asks.

        ``until_done``: the result is a stream that stays in flight until its ``done`` is
        called. ``hedged=False`` never hedges (a rescue after a stream broke off).
        """
        stats, hedge = self.stats, self.hedge
        if stats is None and hedge is None:
            return call.first_answer(operation, candidates)
        if stats is not None:
            operation = tracking(operation, stats, until_done=until_done)
        order = call.candidates if candidates is None else candidates
        if hedge is None or not hedged or len(order) < 2:
            return call.first_answer(operation, candidates)
        percentile = hedge.percentile

        def delay_for(candidate: Candidate) -> float:
            recent = None
            if stats is not None and percentile is not None:
                recent = stats.percentile(candidate.provider.name, percentile)
            return hedge.delay_for(recent)

        return hedged_first_answer(call, operation, delay_for, discard, candidates)


#: Neither hedged nor tracked: the default.
PLAIN = Answering()
