"""JSON on the hot paths (stream events, request bodies), fast, with the standard library's results.

msgspec decodes and encodes; anything it refuses goes to the :mod:`json` module, so a value
decodes exactly as ``json.loads`` decodes it (``NaN``, ``Infinity``, lone surrogates and huge
exponents included) and raises what it raises. msgspec keeps integers of any size, as ``json``
does. Encoded bodies are UTF-8 (``json.dumps`` escapes non-ASCII): the same values, other bytes.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``, faster: the same value, or the same ``ValueError``."""
    try:
        return _decode(data)
    except ValueError:  # msgspec refuses what json accepts (NaN, lone surrogates, ...)
        return json.loads(data)


def dumps(value: Any) -> bytes | None:
    """``value`` as compact UTF-8 JSON, or ``None`` when msgspec cannot encode it.

    On ``None`` the caller encodes with the standard library, whose error (or result) then
    stands. The values a request is built from are strict JSON (``validation.py``), so what
    msgspec would encode differently from ``json`` (NaN as null, bytes as base64) is not met.
    """
    try:
        return _encode(value)
    except (TypeError, ValueError, OverflowError):
        return None
