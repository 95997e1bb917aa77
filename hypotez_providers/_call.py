"""One routed call: its candidates, deadline, clocks and attempts, and the attempt loop (internal).

The :class:`~hypotez_providers.Router` builds a :class:`RoutedCall` per call and hands it an
*operation* (ask for a whole answer, or open a stream up to its first chunk). The call walks
the candidates in order, asks the circuit breaker for a permit before every attempt, runs the
operation under the attempt's :class:`~hypotez_providers._deadline.Watch`, and decides after a
failure what the error's class says (:class:`Routing`): retry here (tenacity), the next
provider, or raise. Every permit it claims is answered on every exit path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal, TypeVar

from ._call_limits import CallLimits
from ._call_rules import Clocks, needs_of, routing_for
from ._deadline import Watch, watched_request
from .context import ProviderContext
from .errors import ProviderError, ProviderTimeout, RateLimited, Routing
from .health import CircuitBreaker, Permit, Standing
from .options import CompletionOptions
from .rate_limits import RateLimiter
from .redaction import logger_for
from .registry import Registry
from .results import Attempt
from .selection import Candidate
from .settings import RetryPolicy

T = TypeVar("T")
Rescue = Literal["restart", "continue"]
Operation = Callable[[Candidate, ProviderContext, Watch], T]

logger = logger_for("hypotez_providers.router")

_OPEN = "circuit open (recent failures); skipped until its cooldown ends"
# Open circuits keep their place, so the attempts show them skipped where they stand.
_RANK = {Standing.READY: 0, Standing.DEMOTED: 1, Standing.OPEN: 0}


class CircuitOpened(Exception):
    """The provider's circuit opened while this call was retrying it: move on."""


class RoutedCall:
    """One call's validated input, candidates, deadline, clocks and attempts."""

    def __init__(
        self,
        *,
        registry: Registry,
        breaker: CircuitBreaker,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        model: str,
        messages: list[dict[str, Any]],
        options: CompletionOptions,
        candidates: Sequence[Candidate],
        skipped: Sequence[Attempt],
        clocks: Clocks,
        max_attempts: int | None,
        retry: RetryPolicy | None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.registry = registry
        #: Asked before a provider with ``rpm``/``tpm`` settings is tried; never for the others.
        self.limits = CallLimits(limiter)
        self.breaker = breaker
        self.clock = clock
        self.sleep = sleep
        self.model = model
        self.messages = messages
        self.options = options
        self.candidates = candidates
        self.attempts: list[Attempt] = list(skipped)
        self.clocks = clocks
        self.deadline = None if clocks.timeout is None else clock() + clocks.timeout
        self.max_attempts = max_attempts
        self.retry = retry
        #: Set while a broken stream is being rescued: the attempts are marked with it.
        self.rescuing: Rescue | None = None
        #: What the last failure asked for (read by the retry predicate right after it).
        self.decision = Routing.NEXT
        #: The capabilities a candidate needs to serve this request (tools, images, ...).
        self.needs = needs_of(messages, options)

    # -- the candidate loop ----------------------------------------------------------------

    def first_answer(
        self, operation: Operation[T], candidates: Sequence[Candidate] | None = None
    ) -> tuple[Candidate, T] | None:
        """The first candidate whose operation succeeds, and its result; ``None`` if none did.

        Raises the error of a failure whose routing is :attr:`Routing.RAISE`.
        """
        previous: Candidate | None = None
        for candidate, permit in self.admitted(
            self.candidates if candidates is None else candidates
        ):
            if previous is not None:
                self._fallback(previous, candidate)
            previous = candidate
            try:
                return candidate, self.try_candidate(candidate, permit, operation)
            except ProviderError:
                if self.decision is Routing.RAISE:
                    raise
            except CircuitOpened:
                self.skip(candidate, "circuit opened during this call; not retried")
        return None

    def admitted(self, candidates: Sequence[Candidate]) -> Iterator[tuple[Candidate, Permit]]:
        """The candidates in order, each with its permit; open circuits skipped and recorded.

        Providers that failed within their last cooldown go after the others (for that long
        only); a circuit whose cooldown has ended keeps its place, as this call is its probe.
        """
        needs = self.needs
        for candidate in self._by_standing(candidates):
            if self.deadline is not None and self.clock() >= self.deadline:
                self.skip(candidate, "the call's deadline had passed")
                continue
            if needs:
                info = candidate.provider.info
                missing = info.capabilities_for(candidate.model).missing(needs)
                if missing:
                    self.skip(candidate, f"cannot serve this request: no {', '.join(missing)}")
                    continue
            permit = self.breaker.admit(candidate.provider.name)
            if permit is None:
                self.skip(candidate, _OPEN)
                continue
            settings = candidate.provider.settings
            if settings.rpm or settings.tpm:
                held = self.limits.take_slot(candidate)
                if held is not None:
                    self.breaker.release(permit)  # not tried: no verdict, the probe is kept
                    self.skip(candidate, held.reason, error="RateLimited", retry_after=held.wait)
                    continue
            yield candidate, permit

    def _by_standing(self, candidates: Sequence[Candidate]) -> Iterator[Candidate]:
        """``candidates`` in order, the demoted ones moved last (a stable sort by rank).

        Each standing is read as its candidate is reached, so a call answered by its first
        candidate reads one standing, however many candidates come after it.
        """
        if len(candidates) < 2:
            yield from candidates
            return
        standing = self.breaker.standing
        later: list[Candidate] = []
        for candidate in candidates:
            if _RANK[standing(candidate.provider.name)]:
                later.append(candidate)
            else:
                yield candidate
        yield from later

    def try_candidate(self, candidate: Candidate, permit: Permit, operation: Operation[T]) -> T:
        """Run ``operation`` at one provider, retrying as its policy and the errors allow.

        The first try runs directly: most calls succeed at once and need no retry machinery.
        After a failure worth retrying, tenacity takes over with that failure replayed as its
        first attempt, so its wait (Retry-After included), stop and deadline rules apply. A
        half-open probe gets one attempt; every retry asks the breaker again, and stops with
        :class:`CircuitOpened` once the circuit has opened.
        """
        policy = self.retry_policy(candidate)
        settings = candidate.provider.settings
        attempts = (
            1 if permit.probe else (self.max_attempts or settings.max_attempts or policy.attempts)
        )
        try:
            return self._attempt(candidate, permit, 1, operation, policy)
        except ProviderError as error:
            if attempts == 1 or self.decision is not Routing.RETRY:
                raise
            replay: list[ProviderError] = [error]
        number = 1
        name = candidate.provider.name
        # tenacity is imported on the first retry only: most calls never need it.
        from .retry import retrying

        for attempt in retrying(
            policy,
            attempts,
            deadline=self.deadline,
            clock=self.clock,
            sleep=self.sleep,
            worth_it=lambda error: self.decision is Routing.RETRY,
        ):
            with attempt:
                if replay:
                    raise replay.pop()
                number += 1
                again = self.breaker.admit(name)
                if again is None:
                    raise CircuitOpened(name)
                # A retry is a request too: it needs a slot, or the next provider is tried.
                held = self.limits.take_slot(candidate) if settings.rpm or settings.tpm else None
                if held is not None:
                    self.breaker.release(again)
                    self.skip(candidate, held.reason, error="RateLimited", retry_after=held.wait)
                    self.decision = Routing.NEXT
                    raise RateLimited(name, held.reason, retry_after=held.wait)
                return self._attempt(candidate, again, number, operation, policy)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def retry_policy(self, candidate: Candidate) -> RetryPolicy:
        """The retry policy for ``candidate``: the call's, the provider's, or the settings'."""
        return self.retry or candidate.provider.settings.retry or self.registry.settings.retry

    # -- one attempt -------------------------------------------------------------------------

    def _attempt(
        self,
        candidate: Candidate,
        permit: Permit,
        number: int,
        operation: Operation[T],
        policy: RetryPolicy,
    ) -> T:
        name = candidate.provider.name
        started = self.clock()
        remaining = None if self.deadline is None else self.deadline - started
        if remaining is not None and remaining <= 0:
            self.breaker.release(permit)  # not the provider's fault
            error = ProviderTimeout(name, "the call's deadline passed before this attempt")
            self.decision = Routing.NEXT
            self.record(candidate, error, 0.0)
            raise error
        watch = self.watch(remaining, candidate)
        context = candidate.provider.context.for_attempt(watch)
        self.observe("on_attempt_start", provider=name, model=candidate.model, attempt=number)
        try:
            with watched_request(watch):
                result = operation(candidate, context, watch)
        except ProviderError as error:
            watch.close()
            duration = self.clock() - started
            self.decision = routing_for(error, duration, policy)
            self.record(candidate, error, duration, context.stats.malformed_events)
            self._observe_end(candidate, number, "failed", duration, error)
            if isinstance(error, RateLimited):
                self.limits.penalise(candidate, error.retry_after)
            if error.counts_against_health:
                asked = error.retry_after
                too_long = asked is not None and asked > policy.max_retry_after
                self.breaker.failed(
                    permit, retry_after=asked, open_now=error.opens_circuit or too_long
                )
            else:
                self.breaker.release(permit)
            logger.debug("%s (%s) attempt %d failed: %s", name, candidate.model, number, error)
            raise
        except BaseException:
            # The caller's input, an interrupt, a bug: no verdict on the provider.
            watch.close()
            self.breaker.release(permit)
            raise
        duration = self.clock() - started
        self.breaker.succeeded(permit, duration)
        self.record(candidate, None, duration, context.stats.malformed_events)
        self._observe_end(candidate, number, "ok", duration, None)
        return result

    def watch(self, remaining: float | None, candidate: Candidate) -> Watch:
        """A fresh watch for one attempt, ending with the call's deadline.

        The socket's per-read timeout becomes the longest of the provider's ``timeout`` and
        the call's own clocks, so a longer ``idle_timeout`` asked for is not cut short by it.
        """
        clocks = self.clocks
        reads = (
            candidate.provider.settings.timeout,
            clocks.first_chunk_timeout or 0.0,
            clocks.idle_timeout or 0.0,
        )
        return Watch(
            None if remaining is None else time.monotonic() + remaining,
            "" if clocks.timeout is None else f"timeout={clocks.timeout:g}s",
            read_timeout=max(reads),
        )

    # -- records and observers ---------------------------------------------------------------

    def remaining(self) -> float | None:
        """Seconds left before the deadline, or ``None`` without one."""
        return None if self.deadline is None else self.deadline - self.clock()

    def skip(
        self,
        candidate: Candidate,
        reason: str,
        *,
        error: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Record that ``candidate`` was not tried, and why.

        A skip for a rate limit has ``error="RateLimited"`` and ``retry_after`` the seconds
        until the provider may be asked again.
        """
        self.attempts.append(
            Attempt(
                provider=candidate.provider.name,
                model=candidate.model,
                outcome="skipped",
                message=reason,
                error=error,
                retry_after=retry_after,
            )
        )

    def record(
        self,
        candidate: Candidate,
        error: ProviderError | None,
        duration: float,
        malformed_events: int = 0,
    ) -> None:
        """Record one attempt: ``error`` is ``None`` for a success."""
        self.attempts.append(
            Attempt(
                provider=candidate.provider.name,
                model=candidate.model,
                outcome="ok" if error is None else "failed",
                error=type(error).__name__ if error else None,
                status=error.status if error else None,
                message=error.upstream_message if error else None,
                duration=duration,
                malformed_events=malformed_events,
                rescue=self.rescuing,
                retry_after=error.retry_after if error else None,
            )
        )

    def failed_mid_stream(
        self, candidate: Candidate, error: ProviderError, duration: float, malformed: int
    ) -> None:
        """A stream that had started failed: record it and tell the breaker."""
        self.record(candidate, error, duration, malformed)
        self.decision = routing_for(error, 0.0, self.retry_policy(candidate))
        if error.counts_against_health:
            self.breaker.failed(Permit(candidate.provider.name), retry_after=error.retry_after)

    def _fallback(self, previous: Candidate, candidate: Candidate) -> None:
        last = self.attempts[-1] if self.attempts else None
        reason = last.describe() if last else "no answer"
        logger.info(
            "falling back from %s to %s: %s",
            previous.provider.name,
            candidate.provider.name,
            reason,
        )
        self.observe(
            "on_fallback",
            from_provider=previous.provider.name,
            to_provider=candidate.provider.name,
            model=self.model,
            reason=reason,
        )

    def _observe_end(
        self,
        candidate: Candidate,
        number: int,
        outcome: str,
        duration: float,
        error: Exception | None,
    ) -> None:
        self.observe(
            "on_attempt_end",
            provider=candidate.provider.name,
            model=candidate.model,
            attempt=number,
            outcome=outcome,
            duration=duration,
            error=error,
        )

    def observe(self, hook: str, **arguments: Any) -> None:
        """Call an observer hook; an observer that raises is logged and ignored."""
        caller = getattr(self.registry.plugin_manager.hook, hook)
        if not caller.get_hookimpls():
            return
        try:
            caller(**arguments)
        except KeyboardInterrupt:
            raise
        except BaseException:  # an observer, even one calling sys.exit, must never break a call
            logger.warning("observer hook %s raised; ignored", hook, exc_info=True)
