"""Checks of a decoded JSON request that name the field at fault as Anthropic does.

The field is a dotted path (``messages.0.content.1.source``), the message says what was
expected and what came; every check raises :class:`~hypotez_providers.errors.InvalidInput`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ..errors import InvalidInput
from ..tools import TOOL_NAME_PATTERN

_TOOL_NAME = re.compile(TOOL_NAME_PATTERN)


def object_at(value: object, field: str, what: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else an error naming ``field`` and ``what`` it must be."""
    if not isinstance(value, dict):
        where = f"{field}: " if field else ""
        raise InvalidInput(
            f"{where}must be {what} (a JSON object), got {json_type(value)}", field=field or None
        )
    return value


def list_at(value: object, field: str, what: str = "a list") -> list[Any]:
    """``value`` if it is a JSON array, else an error naming ``field``."""
    if not isinstance(value, list):
        raise InvalidInput(f"{field}: must be {what}, got {json_type(value)}", field=field)
    return value


def only_known(value: dict[str, Any], field: str, known: Iterable[str], shape: str) -> None:
    """Refuse a key of ``value`` not in ``known``; ``shape`` says what the object holds."""
    for name in value:
        if name not in known:
            raise InvalidInput(
                f"{field}.{name}: unknown or unsupported field ({shape}); remove it",
                field=f"{field}.{name}",
            )


def shown(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, to quote a bad value in an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def json_type(value: object) -> str:
    """What a decoded JSON value is, in words (``an object``, ``null``, ``a number``)."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def tool_name(value: object, field: str) -> str:
    """``value`` if it is a tool name every provider accepts, else an error naming ``field``."""
    if not isinstance(value, str) or not _TOOL_NAME.match(value):
        raise InvalidInput(
            f"{field}: a tool name is 1 to 64 letters, digits, '_' or '-', got {shown(value)}",
            field=field,
        )
    return value
