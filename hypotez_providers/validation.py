"""Turning pydantic's validation reports into :class:`InvalidInput` errors a person can act on."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .errors import InvalidInput


def invalid_input_from(error: ValidationError, root: str) -> InvalidInput:
    """Turn pydantic's report into one sentence naming the first bad field under ``root``."""
    problems = error.errors()
    first = _most_specific(problems)
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
