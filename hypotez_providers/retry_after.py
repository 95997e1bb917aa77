"""Reading how long an upstream asked us to wait: ``retry-after-ms`` and ``Retry-After``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any


def parse_retry_after(
    headers: Mapping[str, Any] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` (milliseconds) or ``Retry-After`` (seconds or date).

    ``retry-after-ms`` wins when both are present, as OpenAI's clients do. A date in the past
    gives 0. Anything unreadable, negative or absent gives ``None``. ``now`` is the current Unix
    time, injectable for tests.
    """
    if not headers:
        return None
    lowered = {str(name).lower(): value for name, value in headers.items()}
    milliseconds = _number(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, moment - (time.time() if now is None else now))


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != number or number < 0 or number == float("inf"):
        return None
    return number
