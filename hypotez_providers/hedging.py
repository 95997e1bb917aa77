"""Hedged requests: when to start a second provider while the first is still silent.

A hedged call starts its first candidate as usual. If no first chunk (a whole answer, for
:meth:`Router.complete`) has come after the hedge's delay, the next candidate is started too;
whichever gives a first chunk first answers, and the other is cancelled. This module holds the
policy (:class:`Hedge`) and the pure choice of the delay; the race itself is in ``_hedge``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidInput


class Hedge(BaseModel):
    """When to hedge: after ``delay`` seconds, or a percentile of the provider's latency.

    With ``percentile`` (e.g. 95), the delay is that percentile of the first provider's recent
    times to a first chunk, but at least ``min_delay``, once at least 10 are known; ``delay``
    until then.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay: float = Field(gt=0, le=3600, allow_inf_nan=False, description="Seconds.")
    percentile: float | None = Field(None, gt=0, le=100, description="Of recent latencies.")
    min_delay: float = Field(0.0, ge=0, le=3600, allow_inf_nan=False, description="Seconds.")

    def delay_for(self, recent: float | None) -> float:
        """The delay, given the percentile of the provider's latencies (``None``: unknown)."""
        if self.percentile is None or recent is None:
            return self.delay
        return max(recent, self.min_delay)


def check_hedge(value: Any) -> Hedge | None:
    """A call's ``hedge=`` argument as a :class:`Hedge` (``None`` or ``False``: none asked).

    Raises :class:`InvalidInput` naming ``hedge`` for anything but a positive number of
    seconds, a :class:`Hedge`, ``None`` or ``False``.
    """
    if value is None or value is False:
        return None
    if isinstance(value, Hedge):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(
            f"hedge must be a number of seconds or a Hedge, got {type(value).__name__} {value!r}",
            field="hedge",
        )
    if not 0 < value <= 3600:
        raise InvalidInput(
            f"hedge must be a positive number of seconds up to 3600, got {value!r}", field="hedge"
        )
    return Hedge(delay=float(value))
