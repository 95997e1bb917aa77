"""What a client asked the gateway for, in the router's terms, whichever protocol it spoke."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class GatewayCall:
    """One request, translated: the router's model, messages (OpenAI's shapes) and options.

    ``options`` are keyword arguments for :meth:`~hypotez_providers.Router.complete` (sampling
    options, ``tools``, ``tool_choice``, ``response_format``, ``extra``); ``include_usage``
    asks for token usage at the end of a stream (OpenAI's ``stream_options.include_usage``).
    """

    model: str
    messages: list[dict[str, Any]]
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    include_usage: bool = False
