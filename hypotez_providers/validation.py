"""The caller's input checked at the boundary, and pydantic's reports made readable.

Everything a public call takes is checked here (or by the pydantic models that use these
helpers) before any request is sent: a mistake is an :class:`InvalidInput` naming the
parameter, never a provider failure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from .errors import InvalidInput

#: How deep ``extra`` may nest (a structure that refers to itself is caught by this too).
MAX_EXTRA_DEPTH = 64


class FieldProblem(ValueError):
    """Raised inside a pydantic validator to name a field more precisely than its location."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def check_model(model: object) -> str:
    """``model`` if it is a non-empty model name, else :class:`InvalidInput` naming ``model``."""
    if not isinstance(model, str) or not model.strip():
        shown = repr(model) if isinstance(model, str) else type(model).__name__
        raise InvalidInput(
            f"model must be a model name (a non-empty string), got {shown}; "
            "see `hypotez models` for the names served",
            field="model",
        )
    return model


def check_provider_name(name: object, field: str = "provider") -> str | None:
    """``name`` if it is ``None`` or a non-empty provider name, else :class:`InvalidInput`."""
    if name is None or (isinstance(name, str) and name.strip()):
        return name
    shown = repr(name) if isinstance(name, str) else type(name).__name__
    raise InvalidInput(
        f"{field} must be a provider name (a non-empty string) or None, got {shown}; "
        "see `hypotez providers` for the names installed",
        field=field,
    )


def check_provider_chain(providers: object) -> tuple[str, ...] | None:
    """``providers`` as a tuple of provider names, or ``None``; else :class:`InvalidInput`."""
    if providers is None:
        return None
    if isinstance(providers, str):
        raise InvalidInput(
            f"providers must be a list of provider names, not the string {providers!r}; "
            f"write providers=[{providers!r}] or provider={providers!r}",
            field="providers",
        )
    if isinstance(providers, (bytes, bytearray)) or not isinstance(providers, Sequence):
        raise InvalidInput(
            f"providers must be a list of provider names, got {type(providers).__name__}",
            field="providers",
        )
    if not providers:
        raise InvalidInput(
            "providers is empty: name at least one provider, or leave it out to route by "
            "model name",
            field="providers",
        )
    for index, name in enumerate(providers):
        if not isinstance(name, str) or not name.strip():
            shown = repr(name) if isinstance(name, str) else type(name).__name__
            raise InvalidInput(
                f"providers[{index}] must be a provider name (a non-empty string), got {shown}",
                field=f"providers[{index}]",
            )
    return tuple(providers)


def check_flag(value: object, field: str) -> bool:
    """``value`` if it is a bool, else :class:`InvalidInput` naming ``field``."""
    if not isinstance(value, bool):
        raise InvalidInput(
            f"{field} must be True or False, got {type(value).__name__} {value!r}", field=field
        )
    return value


def json_problem(value: Any, field: str) -> FieldProblem | None:
    """What keeps ``value`` from being sent as strict JSON (``None`` if nothing does).

    Strict JSON: ``None``, booleans, integers, finite floats, strings, lists (or tuples) and
    dictionaries with string keys, nested at most :data:`MAX_EXTRA_DEPTH` deep. The problem
    names the innermost bad place, e.g. ``extra.options[2]``.
    """
    return _json_problem(value, field, field, 0)


def _json_problem(value: Any, field: str, top: str, depth: int) -> FieldProblem | None:
    if value is None or isinstance(value, (str, bool, int)):
        return None
    if isinstance(value, float):
        if math.isfinite(value):
            return None
        return FieldProblem(
            field, f"{field}: {value!r} cannot be sent as JSON (numbers must be finite)"
        )
    if depth >= MAX_EXTRA_DEPTH:
        return FieldProblem(
            top, f"{top}: nested more than {MAX_EXTRA_DEPTH} deep (or it contains itself)"
        )
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            problem = _json_problem(item, f"{field}[{index}]", top, depth + 1)
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return FieldProblem(
                    field, f"{field}: the key {key!r} is not a string (JSON keys are strings)"
                )
            problem = _json_problem(
                item, f"{field}.{key}", top if depth else f"{field}.{key}", depth + 1
            )
            if problem is not None:
                return problem
        return None
    return FieldProblem(
        field,
        f"{field}: a value of type {type(value).__name__} cannot be sent as JSON; use None, "
        "a bool, a number, a string, or a list or dict of those",
    )


def invalid_input_from(error: ValidationError, root: str) -> InvalidInput:
    """Turn pydantic's report into one sentence naming the first bad field under ``root``."""
    problems = error.errors()
    first = _most_specific(problems)
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        return InvalidInput(cause.reason, field=cause.field)
    loc = _readable_location(first["loc"])
    field = _dotted(root, loc)
    if loc and loc[-1] == "content" and first["loc"][-1] in _UNION_BRANCHES:
        text = "must be text or a list of parts like [{'type': 'text', 'text': '...'}]"
    else:
        text = first["msg"] + _HINTS.get(first["type"], "")
    return InvalidInput(f"{field}: {text}", field=field)


def _dotted(root: str, loc: list[int | str]) -> str:
    """Join a location: ``("messages", [0, "role"])`` gives ``"messages[0].role"``."""
    field = root
    for part in loc:
        if isinstance(part, int):
            field += f"[{part}]"
        else:
            field += f".{part}" if field else str(part)
    return field


def _readable_location(raw: tuple[int | str, ...]) -> list[int | str]:
    """Drop pydantic's union-branch and discriminator-tag steps from an error location."""
    loc: list[int | str] = []
    for index, part in enumerate(raw):
        after_part_index = index >= 2 and raw[index - 2] == _LIST_BRANCH
        if part in _UNION_BRANCHES or after_part_index:
            continue
        loc.append(part)
    return loc


def _most_specific(problems: list[Any]) -> Any:
    """Prefer an error inside a list of parts over the 'is not a string' one from the union."""
    for problem in problems:
        if _LIST_BRANCH in problem["loc"] and problem["loc"][-1] != _LIST_BRANCH:
            return problem
    return problems[0]


_LIST_BRANCH = "list[tagged-union[TextPart,ImagePart]]"
_UNION_BRANCHES = ("str", _LIST_BRANCH)
_HINTS = {
    "extra_forbidden": " (remove it; a message has only role, content, name and tool_call_id)",
    "missing": " (add it)",
}
