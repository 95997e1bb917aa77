"""The router's retry policy for one provider, composed from tenacity's parts.

Retry what the call decided is worth retrying (the failed error's :class:`Routing`); wait
exponentially with jitter but never less than the provider's Retry-After; and stop after the
allowed attempts or when the next wait would end past the call's deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import tenacity

from .errors import ProviderError
from .settings import RetryPolicy


class wait_backoff_or_retry_after(tenacity.wait.wait_base):  # tenacity's naming style
    """Exponential backoff with jitter, floored at the error's ``retry_after``."""

    def __init__(self, policy: RetryPolicy, uniform: Callable[[float, float], float]) -> None:
        self.policy = policy
        self.uniform = uniform

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        policy = self.policy
        exponent = min(retry_state.attempt_number - 1, 64)  # 2.0**1100 overflows
        backoff = min(policy.max_backoff, policy.initial_backoff * 2.0**exponent)
        backoff += self.uniform(0, policy.jitter)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked: float | None = error.retry_after if isinstance(error, ProviderError) else None
        # A longer ask than max_retry_after is never retried in place (the router moves on).
        return max(backoff, min(asked or 0.0, policy.max_retry_after))


class stop_past_deadline(tenacity.stop.stop_base):  # tenacity's naming style
    """Stop when waiting for the next attempt would end at or past ``deadline``."""

    def __init__(self, deadline: float | None, clock: Callable[[], float]) -> None:
        self.deadline = deadline
        self.clock = clock

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        """Whether to give up on this provider."""
        if self.deadline is None:
            return False
        return self.clock() + retry_state.upcoming_sleep >= self.deadline


def retrying(
    policy: RetryPolicy,
    attempts: int,
    *,
    deadline: float | None,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    worth_it: Callable[[ProviderError], bool],
    uniform: Callable[[float, float], float] = random.uniform,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one provider within one routed call.

    ``worth_it`` says whether a :class:`ProviderError` is retried; any other exception is not.
    """
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | stop_past_deadline(deadline, clock),
        wait=wait_backoff_or_retry_after(policy, uniform),
        retry=tenacity.retry_if_exception(
            lambda error: isinstance(error, ProviderError) and worth_it(error)
        ),
        sleep=sleep,
        reraise=True,
    )
