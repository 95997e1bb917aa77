"""A routed call's rules that need no I/O: its clocks, what a request needs, what an error asks.

Pure logic, kept apart from the attempt loop of :mod:`hypotez_providers._call` so that it can
be read, and tested, on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput, ProviderError, Routing
from .messages import needs_images
from .options import CompletionOptions
from .settings import RetryPolicy


@dataclass(frozen=True, slots=True)
class Clocks:
    """A call's time limits in seconds (``None``: no limit), validated."""

    timeout: float | None = None
    first_chunk_timeout: float | None = None
    idle_timeout: float | None = None


def check_seconds(name: str, value: Any) -> float | None:
    """``value`` as a positive, finite number of seconds (or ``None``), else InvalidInput."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(
            f"{name} must be a number of seconds, got {type(value).__name__} {value!r}",
            field=name,
        )
    if not math.isfinite(value) or value <= 0:
        raise InvalidInput(
            f"{name} must be a positive, finite number of seconds, got {value!r}", field=name
        )
    return float(value)


def needs_of(messages: list[dict[str, Any]], options: CompletionOptions) -> frozenset[str]:
    """The capabilities a request needs beyond plain text (names of :class:`Capabilities`)."""
    needs = set()
    if options.wants_tools:
        needs.add("tools")
    if options.wants_structure:
        needs.add("structured_output")
    if needs_images(messages):
        needs.add("images")
    return frozenset(needs)


def routing_for(error: ProviderError, waited: float, policy: RetryPolicy) -> Routing:
    """What to do after ``error``, which came after ``waited`` seconds of the attempt.

    The error's class decides (:attr:`ProviderError.routing`), with two rules of the moment: a
    transient failure that took ``policy.slow_failure`` seconds or more is a silent provider,
    and a Retry-After longer than ``policy.max_retry_after`` is not waited out; both go to the
    next provider.
    """
    routing = error.routing
    if routing is Routing.RETRY:
        if waited >= policy.slow_failure:
            return Routing.NEXT
        if error.retry_after is not None and error.retry_after > policy.max_retry_after:
            return Routing.NEXT
    return routing
