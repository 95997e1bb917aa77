"""Assistant prefill: a request whose last message is the assistant's, to be continued."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def prefill_text(messages: Any) -> str | None:
    """The text of the final message when it is the assistant's (a prefill), else ``None``.

    String content as is; a list of parts or blocks gives its ``"text"`` ones joined; any
    other content (``null`` beside tool calls) is the empty prefill.
    """
    if not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def continue_reply(pieces: Sequence[str], prefill: str) -> list[str]:
    """The pieces that continue ``prefill``, consumed in order.

    When the reply (the pieces joined) starts with ``prefill``, only what follows it: the
    piece the prefill ends inside is cut to its rest. Otherwise every piece.
    """
    if not "".join(pieces).startswith(prefill):
        return list(pieces)
    remaining: list[str] = []
    skip = len(prefill)
    for piece in pieces:
        if skip and skip >= len(piece):
            skip -= len(piece)
            continue
        remaining.append(piece[skip:])
        skip = 0
    return remaining
