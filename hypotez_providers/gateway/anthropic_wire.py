"""Anthropic's Messages API, spoken by the gateway: requests in, answers and events out.

Pure translation, no I/O: :func:`parse_request` turns a ``POST /v1/messages`` body into a
:class:`~.call.GatewayCall`; :func:`message_body` writes a whole answer; :class:`MessageStream`
writes a streamed one as Anthropic's server-sent events; :func:`error_body` writes a failure.
The pieces live in :mod:`.anthropic_request`, :mod:`.anthropic_options`,
:mod:`.anthropic_response` and :mod:`.anthropic_stream`.
"""

from __future__ import annotations

import uuid

from .anthropic_request import parse_request
from .anthropic_response import ERROR_TYPES, error_body, message_body, stop_reason
from .anthropic_stream import MessageStream

__all__ = [
    "ERROR_TYPES",
    "MessageStream",
    "error_body",
    "message_body",
    "new_message_id",
    "parse_request",
    "stop_reason",
]


def new_message_id() -> str:
    """A fresh message id, ``msg_`` and 24 hex digits, as Anthropic's look."""
    return "msg_" + uuid.uuid4().hex[:24]
