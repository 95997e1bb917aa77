"""The router: ask for a model, get an answer from the best healthy provider serving it.

Per call: plan the candidates (:mod:`.selection`), skip those whose circuit is open
(:mod:`.health`), try each with retries (:mod:`.retry`), and move on to the next when one fails,
all within the call's deadline. A stream falls over only until its first chunk has reached the
caller; after that a failure raises :class:`StreamInterrupted` with the text received so far.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

from .errors import (
    AllProvidersFailed,
    BadRequest,
    ConnectionRefused,
    ContextLengthExceeded,
    ProviderError,
    ProviderTimeout,
    StreamInterrupted,
)
from .health import (
    CircuitState,
    HealthRecord,
    HealthStore,
    MemoryHealthStore,
    ProviderHealth,
    admit,
    describe,
    record_failure,
    record_success,
    release,
)
from .messages import Message, validate_messages
from .options import CompletionOptions, validate_options
from .registry import Registry
from .results import Attempt, Chunk, Completion
from .retry import retrying, worth_retrying
from .selection import Candidate, plan
from .settings import RetryPolicy

T = TypeVar("T")
logger = logging.getLogger("hypotez_providers.router")


class Router:
    """Routes calls by model name across the registry's providers, with retries and failover.

    One Router is safe to share between threads. ``health_store`` keeps circuit state (default:
    in this process's memory); ``sleep`` and ``clock`` are injectable so tests need not wait.
    """

    def __init__(
        self,
        registry: Registry | None = None,
        *,
        health_store: HealthStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if registry is None:
            from .api import default_registry

            registry = default_registry()
        self.registry = registry
        self.health_store: HealthStore = health_store or MemoryHealthStore()
        self._sleep = sleep
        self._clock = clock
        self._plans: dict[tuple[object, ...], tuple[list[Candidate], list[Attempt]]] = {}

    def __repr__(self) -> str:
        return f"Router({self.registry!r})"

    def complete(
        self,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        provider: str | None = None,
        providers: Sequence[str] | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        **options: Any,
    ) -> Completion:
        """Answer ``messages`` with ``model`` from the first provider that succeeds.

        ``provider`` pins one provider, ``providers`` gives the chain to try in order.
        ``timeout`` (seconds) bounds the whole call, retries and fallbacks included;
        ``max_attempts`` overrides the tries per provider, ``retry`` the whole retry policy.
        Raises :class:`InvalidInput` before sending anything, :class:`BadRequest` at once when
        a provider rejects the request itself, and :class:`AllProvidersFailed` (listing every
        attempt) when nothing answered.
        """
        call = self._prepare(
            model, messages, options, provider, providers, timeout, max_attempts, retry
        )

        def ask(candidate: Candidate, context_seconds: float | None) -> list[Chunk]:
            chosen = candidate.provider
            context = chosen.context.bounded(context_seconds) if context_seconds else None
            return list(
                chosen.chunks(candidate.model, call.messages, False, call.options, context=context)
            )

        for candidate in self._admitted(call):
            try:
                chunks = self._try(call, candidate, ask, None)
            except BadRequest as error:
                if not isinstance(error, ContextLengthExceeded):
                    raise  # the caller's request is wrong; every provider would say so
                continue
            except ProviderError:
                continue
            return Completion.from_chunks(
                chunks,
                model=candidate.model,
                provider=candidate.provider.name,
                attempts=tuple(call.attempts),
            )
        raise AllProvidersFailed(model, call.attempts)

    def stream(
        self,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        provider: str | None = None,
        providers: Sequence[str] | None = None,
        timeout: float | None = None,
        first_chunk_timeout: float | None = None,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        **options: Any,
    ) -> RoutedStream:
        """Like :meth:`complete`, but yield :class:`Chunk` objects as they arrive.

        Until the first chunk reaches the caller a failing provider is replaced unseen; after
        that a failure raises :class:`StreamInterrupted`. ``first_chunk_timeout`` bounds the
        wait for each provider's first chunk (and, as the read timeout of that connection, any
        later silence). A provider that cannot stream gives its whole answer as one chunk.
        """
        call = self._prepare(
            model, messages, options, provider, providers, timeout, max_attempts, retry
        )
        return RoutedStream(self, call, first_chunk_timeout)

    def health(self) -> list[ProviderHealth]:
        """The health of every installed provider."""
        now = self._clock()
        return [
            describe(name, self.health_store.snapshot(name), now) for name in self.registry.by_name
        ]

    def _prepare(
        self,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        options: dict[str, Any],
        provider: str | None,
        providers: Sequence[str] | None,
        timeout: float | None,
        max_attempts: int | None,
        retry: RetryPolicy | None,
    ) -> _Call:
        checked_messages = validate_messages(messages)
        checked_options = validate_options(options)
        candidates, skipped = self._plan(model, provider, providers)
        deadline = None if timeout is None else self._clock() + timeout
        return _Call(
            model,
            checked_messages,
            checked_options,
            candidates,
            skipped,
            deadline,
            max_attempts,
            retry,
        )

    def _plan(
        self, model: str, provider: str | None, providers: Sequence[str] | None
    ) -> tuple[list[Candidate], list[Attempt]]:
        """The selection for a model, cached until the registry's providers change."""
        key = (self.registry.generation, model, provider, tuple(providers or ()))
        planned = self._plans.get(key)
        if planned is None:
            registry = self.registry
            planned = plan(
                model, registry.by_name, registry.settings, pinned=provider, chain=providers
            )
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[key] = planned
        return planned

    def _admitted(self, call: _Call) -> Iterator[Candidate]:
        """The call's candidates in order, skipping (and recording) open circuits.

        Providers whose last call failed go after the others; a circuit whose cooldown has
        ended keeps its place, since this call is its probe.
        """
        now = self._clock()
        ordered: list[tuple[bool, CircuitState, Candidate]] = []
        for candidate in call.candidates:
            state, failing = self.health_store.update(candidate.provider.name, _circuit_state)
            if state is CircuitState.OPEN and not self._cooled_down(candidate, now):
                call.skip(candidate, _OPEN)
            else:
                # A cooled-down circuit keeps its place: this call is its probe.
                ordered.append((failing and state is CircuitState.CLOSED, state, candidate))
        ordered.sort(key=lambda pair: pair[0])
        previous: Candidate | None = None
        for _, state, candidate in ordered:
            name = candidate.provider.name
            if call.past_deadline(self._clock()):
                call.skip(candidate, "the call's deadline had passed")
                continue
            # A circuit seen closed just now admits the call; an open or half-open one is asked
            # again, claiming the probe.
            if state is not CircuitState.CLOSED and not self._admit_now(name):
                call.skip(candidate, _OPEN)
                continue
            if previous is not None:
                self._fallback(previous, candidate, call)
            previous = candidate
            yield candidate

    def _try(
        self,
        call: _Call,
        candidate: Candidate,
        operation: Callable[[Candidate, float | None], T],
        first_chunk_timeout: float | None,
    ) -> T:
        """Run ``operation`` at one provider with retries; record attempts and health.

        The first try runs directly: most calls succeed at once and need no retry machinery.
        If it fails in a way worth retrying, tenacity takes over with that failure replayed as
        its first attempt, so the wait (Retry-After included), stop and deadline rules apply
        exactly as if tenacity had run it.
        """
        chosen = candidate.provider
        retry = call.retry or chosen.settings.retry or self.registry.settings.retry
        attempts = call.max_attempts or chosen.settings.max_attempts or retry.attempts
        try:
            return self._attempt(call, candidate, operation, 1, first_chunk_timeout)
        except ProviderError as error:
            if attempts == 1 or not worth_retrying(error):
                raise
            replay: list[ProviderError] = [error]
        policy = retrying(
            retry, attempts, deadline=call.deadline, clock=self._clock, sleep=self._sleep
        )
        number = 1
        # The circuit decides about new calls; a call's own retries run as its policy says.
        # When the policy stops, tenacity re-raises the last attempt's error.
        for attempt in policy:
            with attempt:
                if replay:
                    raise replay.pop()
                number += 1
                return self._attempt(call, candidate, operation, number, first_chunk_timeout)
        raise AssertionError("unreachable: tenacity either returns or re-raises")

    def _attempt(
        self,
        call: _Call,
        candidate: Candidate,
        operation: Callable[[Candidate, float | None], T],
        number: int,
        first_chunk_timeout: float | None,
    ) -> T:
        name = candidate.provider.name
        started = self._clock()
        remaining = call.remaining(started)
        if remaining is not None and remaining <= 0:
            self.health_store.update(name, release)  # not the provider's fault
            error = ProviderTimeout(name, "the call's deadline passed before this attempt")
            call.record(candidate, "failed", 0.0, error)
            raise error
        bound = _smallest(remaining, first_chunk_timeout)
        self._observe("on_attempt_start", provider=name, model=candidate.model, attempt=number)
        try:
            result = operation(candidate, bound)
        except ProviderError as error:
            duration = self._clock() - started
            call.record(candidate, "failed", duration, error)
            self._observe_end(candidate, number, "failed", duration, error)
            self._health_failure(name, error)
            logger.debug("%s (%s) attempt %d failed: %s", name, candidate.model, number, error)
            raise
        duration = self._clock() - started
        call.record(candidate, "ok", duration, None)
        self._observe_end(candidate, number, "ok", duration, None)
        self.health_store.update(name, lambda r: record_success(r, duration, self._clock()))
        return result

    def _cooled_down(self, candidate: Candidate, now: float) -> bool:
        return self.health_store.update(candidate.provider.name, lambda r: now >= r.open_until)

    def _admit_now(self, name: str) -> bool:
        now = self._clock()
        return self.health_store.update(name, lambda record: admit(record, now))

    def _health_failure(self, name: str, error: ProviderError) -> None:
        if isinstance(error, BadRequest):
            return  # the caller's request, not the provider's health
        policy = self.registry.settings.health
        now = self._clock()
        force = isinstance(error, ConnectionRefused)
        self.health_store.update(
            name, lambda r: record_failure(r, now, policy, error.retry_after, force_open=force)
        )

    def _fallback(self, previous: Candidate, candidate: Candidate, call: _Call) -> None:
        last = call.attempts[-1] if call.attempts else None
        reason = last.describe() if last else "no answer"
        logger.info(
            "falling back from %s to %s: %s",
            previous.provider.name,
            candidate.provider.name,
            reason,
        )
        self._observe(
            "on_fallback",
            from_provider=previous.provider.name,
            to_provider=candidate.provider.name,
            model=call.model,
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
        self._observe(
            "on_attempt_end",
            provider=candidate.provider.name,
            model=candidate.model,
            attempt=number,
            outcome=outcome,
            duration=duration,
            error=error,
        )

    def _observe(self, hook: str, **arguments: Any) -> None:
        caller = getattr(self.registry.plugin_manager.hook, hook)
        if not caller.get_hookimpls():
            return
        try:
            caller(**arguments)
        except Exception:  # an observer must never break a call
            logger.warning("observer hook %s raised; ignored", hook, exc_info=True)


class RoutedStream(Iterator[Chunk]):
    """The chunks of a routed stream, with ``provider`` (who answers) and live ``attempts``."""

    def __init__(self, router: Router, call: _Call, first_chunk_timeout: float | None) -> None:
        self._router = router
        self._call = call
        self._first_chunk_timeout = first_chunk_timeout
        self._chunks = self._generate()
        #: The provider answering, once its first chunk has arrived.
        self.provider: str | None = None

    @property
    def attempts(self) -> list[Attempt]:
        """Every attempt so far, skipped providers included."""
        return list(self._call.attempts)

    def __next__(self) -> Chunk:
        return next(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        # The generator itself: a for loop then skips __next__'s frame on every chunk.
        return self._chunks

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._chunks.close()

    def _generate(self) -> Generator[Chunk, None, None]:
        router, call = self._router, self._call

        def open_stream(
            candidate: Candidate, seconds: float | None
        ) -> tuple[Chunk | None, Iterator[Chunk]]:
            chosen = candidate.provider
            context = chosen.context.bounded(seconds) if seconds else None
            chunks = chosen.chunks(
                candidate.model, call.messages, True, call.options, context=context
            )
            return next(chunks, None), chunks

        for candidate in router._admitted(call):
            try:
                first, rest = router._try(call, candidate, open_stream, self._first_chunk_timeout)
            except BadRequest as error:
                if not isinstance(error, ContextLengthExceeded):
                    raise
                continue
            except ProviderError:
                continue
            self.provider = candidate.provider.name
            if first is None:
                return
            yield first
            yield from self._rest(candidate, first.text, rest)
            return
        raise AllProvidersFailed(call.model, call.attempts)

    def _rest(self, candidate: Candidate, text: str, rest: Iterator[Chunk]) -> Iterator[Chunk]:
        router, call = self._router, self._call
        received = [text]
        deadline, clock = call.deadline, router._clock
        try:
            for chunk in rest:
                if deadline is not None and clock() >= deadline:
                    raise ProviderTimeout(
                        candidate.provider.name, "the call's deadline passed mid-stream"
                    )
                received.append(chunk.text)
                yield chunk
        except ProviderError as error:
            router._health_failure(candidate.provider.name, error)
            call.record(candidate, "failed", 0.0, error)
            raise StreamInterrupted(candidate.provider.name, "".join(received), error) from error
        finally:
            close = getattr(rest, "close", None)
            if close is not None:
                close()


class _Call:
    """One routed call's state: its validated input, candidates, deadline and attempts."""

    def __init__(
        self,
        model: str,
        messages: list[dict[str, Any]],
        options: CompletionOptions,
        candidates: list[Candidate],
        skipped: list[Attempt],
        deadline: float | None,
        max_attempts: int | None,
        retry: RetryPolicy | None,
    ) -> None:
        self.model = model
        self.messages = messages
        self.options = options
        self.candidates = candidates
        self.attempts: list[Attempt] = list(skipped)
        self.deadline = deadline
        self.max_attempts = max_attempts
        self.retry = retry

    def remaining(self, now: float) -> float | None:
        return None if self.deadline is None else self.deadline - now

    def past_deadline(self, now: float) -> bool:
        return self.deadline is not None and now >= self.deadline

    def skip(self, candidate: Candidate, reason: str) -> None:
        self.attempts.append(
            Attempt(
                provider=candidate.provider.name,
                model=candidate.model,
                outcome="skipped",
                message=reason,
            )
        )

    def record(
        self, candidate: Candidate, outcome: str, duration: float, error: ProviderError | None
    ) -> None:
        self.attempts.append(
            Attempt(
                provider=candidate.provider.name,
                model=candidate.model,
                outcome="ok" if outcome == "ok" else "failed",
                error=type(error).__name__ if error else None,
                status=error.status if error else None,
                message=error.upstream_message if error else None,
                duration=duration,
            )
        )


_OPEN = "circuit open (recent failures); skipped until its cooldown ends"


def _circuit_state(record: HealthRecord) -> tuple[CircuitState, bool]:
    return record.state, record.consecutive_failures > 0


def _smallest(*values: float | None) -> float | None:
    present = [value for value in values if value is not None]
    return min(present) if present else None
