"""The router: ask for a model, get an answer from the best healthy provider serving it.

Per call: validate the input, plan the candidates (:mod:`.selection`), and hand them to a
:class:`~hypotez_providers._call.RoutedCall`, which admits each through the circuit breaker
(:mod:`.health`), retries what is worth retrying (:mod:`.retry`), moves on when a provider
fails, and holds every attempt to the call's clocks. Streams are :class:`RoutedStream`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, get_args

from ._call import Rescue, RoutedCall
from ._call_rules import Clocks, check_seconds
from ._deadline import Watch
from ._hedge import PLAIN, Answering
from .balancing import TRACKED, LoadStats, MemoryLoadStats, balance
from .context import ProviderContext
from .errors import AllProvidersFailed, InvalidInput, ProviderError
from .health import CircuitBreaker, MemoryCircuitBreaker, ProviderHealth
from .hedging import Hedge, check_hedge
from .messages import Message, validate_messages
from .options import validate_options
from .rate_limits import MemoryRateLimiter, RateLimiter, limits_of
from .registry import Registry
from .results import Attempt, Chunk, Completion
from .routed_stream import RoutedStream, carries
from .selection import Candidate, plan
from .settings import RetryPolicy, Settings
from .state import shared_breaker
from .state.redis_limits import shared_limiter
from .state.redis_load import shared_load_stats
from .validation import check_model, check_provider_chain, check_provider_name

_RESCUES = get_args(Rescue)


class Router:
    """Routes calls by model name across the registry's providers, with retries and failover.

    One Router is safe to share between threads. ``breaker`` keeps the providers' circuits
    (default: in this process's memory, with the settings' health policy); ``sleep`` and
    ``clock`` are injectable so tests need not wait (``clock`` then serves the breaker too).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] | None = None,
        limiter: RateLimiter | None = None,
        stats: LoadStats | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.registry = registry
        settings, environ = registry.settings, registry.environ
        # With a [state] url (or HYPOTEZ_STATE_URL) the circuits, the rate limits and the
        # balancing stats live on Redis, on one connection; else in this process's memory.
        if breaker is None:
            breaker = shared_breaker(settings, environ) or MemoryCircuitBreaker(
                settings.health, clock=clock or time.time
            )
        self.breaker: CircuitBreaker = breaker
        #: Holds the providers' ``rpm``/``tpm`` settings (:mod:`hypotez_providers.rate_limits`).
        if limiter is None:
            limiter = shared_limiter(settings, environ) or MemoryRateLimiter()
        self.limiter: RateLimiter = limiter
        #: In-flight counts and latencies read by load balancing and hedging.
        if stats is None:
            stats = shared_load_stats(settings, environ) or MemoryLoadStats()
        self.stats: LoadStats = stats
        self._rng = rng or random.Random()
        #: Settings found to ask for no balancing and no hedge: calls under them skip both.
        self._plain: Settings | None = None
        self._sleep = sleep
        self._clock = clock or time.monotonic
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
        first_chunk_timeout: float | None = None,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        rescue: Rescue | None = None,
        hedge: float | Hedge | bool | None = None,
        idempotent: bool = True,
        **options: Any,
    ) -> Completion:
        """Answer ``messages`` with ``model`` from the first provider that succeeds.

        ``provider`` pins one provider, ``providers`` gives the chain to try in order.
        ``timeout`` (seconds, wall clock) bounds the whole call, retries and fallbacks included;
        ``first_chunk_timeout`` bounds each attempt (a whole answer is its only chunk; default:
        the provider's ``timeout`` setting), however slowly the server trickles it.
        ``max_attempts`` overrides the tries per provider, ``retry`` the whole retry policy.
        A cut answer is always asked again of the next provider (nothing was shown yet), so
        ``rescue`` is accepted for symmetry with :meth:`stream` and changes nothing here.
        ``hedge`` (seconds, or a :class:`Hedge`; default: the ``[hedging]`` setting for
        ``model``, ``False`` for none) starts the next provider too when the first has not
        answered by then, and keeps the first answer; never with ``idempotent=False``.
        Raises :class:`InvalidInput` before sending anything, :class:`BadRequest` at once when
        a provider rejects the request itself, and :class:`AllProvidersFailed` (listing every
        attempt) when nothing answered.
        """
        call = self._prepare(
            model,
            messages,
            options,
            provider,
            providers,
            Clocks(
                check_seconds("timeout", timeout),
                check_seconds("first_chunk_timeout", first_chunk_timeout),
            ),
            max_attempts,
            retry,
            rescue,
        )

        def ask(candidate: Candidate, context: ProviderContext, watch: Watch) -> list[Chunk]:
            chosen = candidate.provider
            limit = call.clocks.first_chunk_timeout or chosen.settings.timeout
            watch.begin_wait(limit, "no whole answer")
            chunks = []
            try:
                for chunk in chosen.chunks(
                    candidate.model, call.messages, False, call.options, context=context
                ):
                    if watch.expired is not None:
                        raise watch.error(chosen.name)
                    if carries(chunk):
                        chunks.append(chunk)
            except ProviderError as error:
                if watch.expired is not None:
                    raise watch.error(chosen.name) from error
                raise
            if watch.expired is not None:
                raise watch.error(chosen.name)
            return chunks

        found = self._answering(call, hedge, idempotent).first_answer(call, ask, _keep)
        if found is None:
            raise AllProvidersFailed(model, call.attempts)
        candidate, chunks = found
        completion = Completion.from_chunks(
            chunks,
            model=candidate.model,
            provider=candidate.provider.name,
            attempts=tuple(call.attempts),
        )
        call.limits.charge(candidate, completion.usage)
        return completion

    def stream(
        self,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        *,
        provider: str | None = None,
        providers: Sequence[str] | None = None,
        timeout: float | None = None,
        first_chunk_timeout: float | None = None,
        idle_timeout: float | None = None,
        max_attempts: int | None = None,
        retry: RetryPolicy | None = None,
        rescue: Rescue | None = None,
        hedge: float | Hedge | bool | None = None,
        idempotent: bool = True,
        **options: Any,
    ) -> RoutedStream:
        """Like :meth:`complete`, but yield :class:`Chunk` objects as they arrive.

        Three clocks, in seconds: ``timeout`` bounds the whole call; ``first_chunk_timeout``
        each provider's wait for its first chunk, and ``idle_timeout`` the silence between two
        chunks (both default to the provider's ``timeout`` setting; keep-alive comments, pings
        and empty deltas are not progress). A provider that misses either is not retried in
        place: the next one is tried at once. Until the first chunk reaches the caller a
        failing provider is replaced unseen; after that a failure raises
        :class:`StreamInterrupted`, unless ``rescue`` is ``"restart"`` or ``"continue"`` (see
        :mod:`hypotez_providers.routed_stream`). A provider that cannot stream gives its whole
        answer as one chunk. ``hedge`` and ``idempotent`` are :meth:`complete`'s; the hedge
        races the providers to their first chunk.
        """
        call = self._prepare(
            model,
            messages,
            options,
            provider,
            providers,
            Clocks(
                check_seconds("timeout", timeout),
                check_seconds("first_chunk_timeout", first_chunk_timeout),
                check_seconds("idle_timeout", idle_timeout),
            ),
            max_attempts,
            retry,
            rescue,
        )
        return RoutedStream(call, rescue, self._answering(call, hedge, idempotent))

    def _answering(self, call: RoutedCall, hedge: object, idempotent: object) -> Answering:
        """Balance the call's candidates as the settings say; how it finds its first answer."""
        settings = self.registry.settings
        if hedge is None and idempotent is True:
            if settings is self._plain:
                return PLAIN  # the default: nothing to balance, hedge or track
            balancing = settings.balancing
            if balancing.strategy == "ordered" and not balancing.aliases and not settings.hedging:
                self._plain = settings
                return PLAIN
        balancing = settings.balancing
        asked = check_hedge(hedge)
        if not isinstance(idempotent, bool):
            raise InvalidInput(
                f"idempotent must be True or False, got {idempotent!r}", field="idempotent"
            )
        model = call.model
        strategy = balancing.strategy
        if strategy != "ordered" or balancing.aliases:
            listed = model in settings.aliases or model in settings.routes
            strategy = balancing.strategy_for(model, listed=listed)
            call.candidates = balance(
                call.candidates, strategy, stats=self.stats, rng=self._rng, usage=self._usage
            )
        if asked is None and hedge is None and settings.hedging:
            asked = settings.hedging.get(model)
        if not idempotent:
            asked = None  # a second request could act twice
        tracked = strategy in TRACKED or (asked is not None and asked.percentile is not None)
        if asked is None and not tracked:
            return PLAIN
        return Answering(asked, self.stats if tracked else None)

    def _usage(self, candidate: Candidate) -> float:
        """The share of its ``rpm``/``tpm`` the candidate's provider has used (0: no limits)."""
        settings = candidate.provider.settings
        limits = limits_of(settings.rpm, settings.tpm)
        return 0.0 if limits is None else self.limiter.usage(candidate.provider.name, limits)

    def health(self) -> list[ProviderHealth]:
        """The health of every installed provider."""
        return [self.breaker.health(name) for name in self.registry.by_name]

    def _prepare(
        self,
        model: str,
        messages: Sequence[Message | dict[str, Any]],
        options: dict[str, Any],
        provider: str | None,
        providers: Sequence[str] | None,
        clocks: Clocks,
        max_attempts: int | None,
        retry: RetryPolicy | None,
        rescue: Rescue | None,
    ) -> RoutedCall:
        """Check every parameter of the call (nothing is sent before), then plan it."""
        check_model(model)
        check_provider_name(provider)
        chain = check_provider_chain(providers)
        if rescue is not None and rescue not in _RESCUES:
            raise InvalidInput(
                f"rescue must be one of {', '.join(map(repr, _RESCUES))} or None, got {rescue!r}",
                field="rescue",
            )
        if max_attempts is not None and (
            isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1
        ):
            raise InvalidInput(
                f"max_attempts must be a whole number of at least 1, got {max_attempts!r}",
                field="max_attempts",
            )
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise InvalidInput(
                f"retry must be a RetryPolicy, got {type(retry).__name__}", field="retry"
            )
        checked_messages = validate_messages(messages)
        checked_options = validate_options(options)
        candidates, skipped = self._plan(model, provider, chain)
        return RoutedCall(
            registry=self.registry,
            breaker=self.breaker,
            clock=self._clock,
            sleep=self._sleep,
            model=model,
            messages=checked_messages,
            options=checked_options,
            candidates=candidates,
            skipped=skipped,
            clocks=clocks,
            max_attempts=max_attempts,
            retry=retry,
            limiter=self.limiter,
        )

    def _plan(
        self, model: str, provider: str | None, providers: tuple[str, ...] | None
    ) -> tuple[list[Candidate], list[Attempt]]:
        """The selection for a model, cached until the registry's providers change."""
        key = (self.registry.generation, model, provider, providers or ())
        planned = self._plans.get(key)
        if planned is None:
            registry = self.registry
            planned = plan(
                model,
                registry.by_name,
                registry.settings,
                pinned=provider,
                chain=providers,
                broken=registry.broken(),
            )
            if len(self._plans) > 1024:
                self._plans.clear()
            self._plans[key] = planned
        return planned


def _keep(chunks: list[Chunk]) -> None:
    """A whole answer that lost a hedged race holds nothing open."""
