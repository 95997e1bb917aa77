"""Load balancing among equally preferred candidates: pure ordering, and the stats it reads.

The plan (:mod:`.selection`) puts candidates in *groups*: consecutive candidates of one group
are **equally preferred**. Without an alias or a route, providers of the same ``priority``
form a group; an alias's or a route's list is an order (each entry its own group) unless
the settings opt it in (``[balancing.aliases]``), and then its entries form one group. The
router keeps a provider that failed lately after the others (:mod:`._call`), stably, so in
the end the candidates reordered here are those of one group *and* of the same standing.

A strategy reorders each group and never moves a candidate out of its group:

- ``ordered`` (the default): the plan's order; nothing is computed, nothing is counted.
- ``weighted``: a random order in which each candidate comes first with a probability
  proportional to its ``weight`` setting (default 1; 0 puts it last).
- ``least_busy``: fewest requests in flight (from this router's calls) first.
- ``fastest``: lowest recent latency first, an EWMA of each success's time to its first chunk
  (a whole answer's duration for :meth:`Router.complete`); unmeasured providers go first, so
  they get measured.
- ``usage``: furthest from its rate limits first (``rpm``/``tpm``: the share of the limits
  used, from the rate limiter); a provider with no limits counts as unused.

Ties keep the plan's order. The stats (:class:`LoadStats`) are kept in this process's memory
(:class:`MemoryLoadStats`), or on Redis with a ``[state] url``
(:class:`~hypotez_providers.state.redis_load.RedisLoadStats`), shared by every process.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from ._call import Operation
    from ._deadline import Watch
    from .context import ProviderContext
    from .selection import Candidate

Strategy = Literal["ordered", "weighted", "least_busy", "fastest", "usage"]
#: The strategies that read the stats: calls under them are counted and timed.
TRACKED: frozenset[str] = frozenset({"least_busy", "fastest"})

C = TypeVar("C", bound="Candidate")
T = TypeVar("T")


class BalancingSettings(BaseModel):
    """The ``[balancing]`` table: how equally preferred candidates are ordered.

    ``strategy`` applies to models served by several providers of the same priority;
    ``aliases`` opts an alias (or a route) in, by its name, with its own strategy: its
    entries then count as equally preferred.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = Field("ordered", description="For providers of the same priority.")
    aliases: dict[str, Strategy] = Field(
        default_factory=dict, description="Alias or route name: the strategy among its entries."
    )

    def strategy_for(self, model: str, *, listed: bool) -> Strategy:
        """The strategy for ``model``; ``listed``: it is an alias or a route in the settings."""
        if listed:
            return self.aliases.get(model, "ordered")
        return self.strategy


class LoadStats(Protocol):
    """What balancing and hedging know of each provider's load and speed."""

    def started(self, provider: str) -> None:
        """A request to ``provider`` is now in flight."""
        ...

    def finished(self, provider: str) -> None:
        """A request to ``provider`` is no longer in flight."""
        ...

    def measured(self, provider: str, latency: float) -> None:
        """A success after ``latency`` seconds (to the first chunk of a stream)."""
        ...

    def in_flight(self, provider: str) -> int:
        """Requests to ``provider`` in flight now."""
        ...

    def latency(self, provider: str) -> float | None:
        """The recent latency (EWMA, seconds), or ``None`` before any success."""
        ...

    def percentile(self, provider: str, percent: float, *, at_least: int = 10) -> float | None:
        """The ``percent`` percentile of the recent latencies; ``None`` with fewer samples."""
        ...


class MemoryLoadStats:
    """:class:`LoadStats` in this process's memory; ``window`` latencies kept per provider.

    Counters and averages are updated without a lock: a lost update of a statistic shifts an
    order slightly and is corrected by the next call.
    """

    def __init__(self, *, window: int = 100, smoothing: float = 0.3) -> None:
        self._busy: dict[str, int] = {}
        self._average: dict[str, float] = {}
        self._recent: dict[str, deque[float]] = {}
        self._window = window
        self._smoothing = smoothing
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryLoadStats(window={self._window}, smoothing={self._smoothing})"

    def started(self, provider: str) -> None:
        """A request to ``provider`` is now in flight."""
        with self._lock:
            self._busy[provider] = self._busy.get(provider, 0) + 1

    def finished(self, provider: str) -> None:
        """A request to ``provider`` is no longer in flight."""
        with self._lock:
            self._busy[provider] = max(0, self._busy.get(provider, 0) - 1)

    def measured(self, provider: str, latency: float) -> None:
        """A success after ``latency`` seconds (to the first chunk of a stream)."""
        previous = self._average.get(provider)
        a = self._smoothing
        self._average[provider] = latency if previous is None else previous * (1 - a) + latency * a
        recent = self._recent.get(provider)
        if recent is None:
            recent = self._recent.setdefault(provider, deque(maxlen=self._window))
        recent.append(latency)

    def in_flight(self, provider: str) -> int:
        """Requests to ``provider`` in flight now."""
        return self._busy.get(provider, 0)

    def latency(self, provider: str) -> float | None:
        """The recent latency (EWMA, seconds), or ``None`` before any success."""
        return self._average.get(provider)

    def percentile(self, provider: str, percent: float, *, at_least: int = 10) -> float | None:
        """The ``percent`` percentile of the recent latencies; ``None`` with fewer samples."""
        recent = sorted(self._recent.get(provider, ()))
        if len(recent) < at_least:
            return None
        rank = min(len(recent) - 1, max(0, math.ceil(percent / 100 * len(recent)) - 1))
        return recent[rank]


def balance(
    candidates: Sequence[C],
    strategy: Strategy,
    *,
    stats: LoadStats,
    rng: random.Random | None = None,
    usage: Callable[[C], float] | None = None,
) -> Sequence[C]:
    """``candidates`` with each group of equally preferred ones reordered by ``strategy``.

    ``rng`` draws the weighted order (the module's generator by default); ``usage`` gives a
    candidate's share of its rate limits used (0 to 1); without it ``usage`` keeps the order.
    The default strategy returns ``candidates`` itself.
    """
    if strategy == "ordered" or len(candidates) < 2:
        return candidates
    ordered: list[C] = []
    for group in _groups(candidates):
        if len(group) > 1:
            group = _reorder(group, strategy, stats, rng or random, usage)  # type: ignore[arg-type]
        ordered.extend(group)
    return ordered


def _groups(candidates: Sequence[C]) -> Iterator[list[C]]:
    group: list[C] = []
    for candidate in candidates:
        if group and group[-1].group != candidate.group:
            yield group
            group = []
        group.append(candidate)
    yield group


def _reorder(
    group: list[C],
    strategy: Strategy,
    stats: LoadStats,
    rng: random.Random,
    usage: Callable[[C], float] | None,
) -> list[C]:
    if strategy == "weighted":
        return sorted(group, key=lambda c: _weighted_key(c.provider.settings.weight, rng))
    if strategy == "least_busy":
        return sorted(group, key=lambda c: stats.in_flight(c.provider.name))
    if strategy == "fastest":
        return sorted(group, key=lambda c: stats.latency(c.provider.name) or 0.0)
    if strategy == "usage" and usage is not None:
        return sorted(group, key=usage)
    return group


def _weighted_key(weight: float, rng: random.Random) -> float:
    # Efraimidis-Spirakis: ordering by -log(u)/w draws the first with probability w/sum(w),
    # and the rest likewise among those left.
    if weight <= 0:
        return math.inf
    return -math.log(1.0 - rng.random()) / weight


class Tracked(Protocol):
    """A result that holds its request open after it returns (a stream): ``done`` ends it."""

    done: Callable[[], None] | None


def tracking(operation: Operation[T], stats: LoadStats, *, until_done: bool) -> Operation[T]:
    """``operation`` counted in flight and timed to its result in ``stats``.

    With ``until_done`` the result is a :class:`Tracked` stream: the request stays in flight
    until its ``done`` is called (the stream's end), not just until its first chunk.
    """

    def tracked(candidate: Candidate, context: ProviderContext, watch: Watch) -> T:
        name = candidate.provider.name
        stats.started(name)
        started = time.monotonic()
        try:
            result = operation(candidate, context, watch)
        except BaseException:
            stats.finished(name)
            raise
        stats.measured(name, time.monotonic() - started)
        if until_done:
            result.done = lambda: stats.finished(name)  # type: ignore[attr-defined]
        else:
            stats.finished(name)
        return result

    return tracked
