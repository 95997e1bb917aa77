"""The router's retry policy for one provider, composed from tenacity's parts.

Retry only what may pass (:class:`TransientError`), except a refused connection, which moves
on at once; wait exponentially with jitter but never less than the provider's Retry-After; and
stop after the allowed attempts or when the next wait would end past the call's deadline.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import tenacity

from .errors import ConnectionRefused, ProviderError, TransientError
from .settings import RetryPolicy


def worth_retrying(error: BaseException) -> bool:
    """Whether the same provider should be tried again after ``error``."""
    return isinstance(error, TransientError) and not isinstance(error, ConnectionRefused)


class wait_backoff_or_retry_after(tenacity.wait.wait_base):  # tenacity's naming style
    """Exponential backoff with jitter, floored at the error's ``retry_after``."""

    def __init__(self, policy: RetryPolicy, uniform: Callable[[float, float], float]) -> None:
        self.policy = policy
        self.uniform = uniform

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        policy = self.policy
        exponent = retry_state.attempt_number - 1
        backoff = min(policy.max_backoff, policy.initial_backoff * 2.0**exponent)
        backoff += self.uniform(0, policy.jitter)
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        asked: float | None = error.retry_after if isinstance(error, ProviderError) else None
        return max(backoff, asked or 0.0)


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
    uniform: Callable[[float, float], float] = random.uniform,
) -> tenacity.Retrying:
    """A tenacity ``Retrying`` for one provider within one routed call."""
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | stop_past_deadline(deadline, clock),
        wait=wait_backoff_or_retry_after(policy, uniform),
        retry=tenacity.retry_if_exception(worth_retrying),
        sleep=sleep,
        reraise=True,
    )
