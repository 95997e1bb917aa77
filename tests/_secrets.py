"""Planted canary secrets, an upstream that echoes credentials back, and the leak search.

Shared by test_redaction.py (in process) and test_cli.py (the command as a subprocess).
"""

from __future__ import annotations

import base64
import json

from hypotez_providers.testing import FakeUpstream

#: The provider key, as an environment variable would give it.
ENV_KEY = "sk-canary-0123456789abcdef0123456789abcdef"
#: Anthropic's key (sent as x-api-key).
X_API_KEY = "sk-ant-canary-a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5"
#: The value of an endpoint's header from the settings (Azure's api-key).
HEADER_KEY = "hk-canary-fedcba9876543210fedcba9876543210"
#: The password in an endpoint's base_url (http://user:password@host).
URL_PASSWORD = "pw-canary-9f8e7d6c5b4a39281706f5e4"
URL_USER = "alice"
#: What requests sends for that userinfo: Authorization: Basic <base64 of user:password>.
BASIC = base64.b64encode(f"{URL_USER}:{URL_PASSWORD}".encode()).decode()
#: A key under a misspelled setting name (api_kye).
MISSPELLED_KEY = "sk-canary-kye-0a1b2c3d4e5f6a7b8c9d0e1f"

CANARIES = (ENV_KEY, X_API_KEY, HEADER_KEY, URL_PASSWORD, MISSPELLED_KEY, BASIC)

#: Where an error body may be cut (the transport's previews): each echoed key straddles one,
#: with 24 of its characters before the cut, as the issue found them.
CUTS = (200, 300)
BEFORE_CUT = 24


def leaks(text: str, canaries: tuple[str, ...] = CANARIES) -> list[str]:
    """Every canary, or 8-character piece of one, found in ``text`` (empty: nothing leaked)."""
    found = []
    for canary in canaries:
        for start in range(len(canary) - 7):
            piece = canary[start : start + 8]
            if piece in text:
                found.append(piece)
    return found


def straddling(lines: list[str], cuts: tuple[int, ...] = CUTS, offset: int = 0) -> str:
    """``lines`` laid out, dot-padded, so that the last word of the n-th (the key) starts
    :data:`BEFORE_CUT` characters before ``cuts[n]``; ``offset`` is what the text will be
    preceded by where it is cut.
    """
    text = ""
    for line, cut in zip(lines, cuts, strict=True):
        key_at = len(line) - len(line.split(" ")[-1])
        start = cut - offset - BEFORE_CUT - key_at
        text += "." * max(1, start - len(text)) + line
    return text + "."


class EchoingUpstream(FakeUpstream):
    """Answers every request with an error that repeats the credentials it was sent.

    The Authorization, x-api-key and api-key headers that came come back whole, each key
    straddling one of :data:`CUTS` (the first two sent, or the only one twice), in one of three
    ``shape``s: an OpenAI-style ``{"error": {"message": ...}}``, an error object with no
    message (which the transport dumps as JSON), or plain text.
    """

    def __init__(self, status: int = 500, shape: str = "message") -> None:
        super().__init__()
        self.status = status
        self.shape = shape

    def handle(self, request, fault, responder) -> None:  # type: ignore[no-untyped-def]
        sent = [
            f"{name}: {request.headers[name]}"
            for name in ("authorization", "x-api-key", "api-key")
            if name in request.headers
        ] or ["nothing: sent"]
        lines = [sent[0], sent[-1] if len(sent) > 1 else sent[0]]
        if self.shape == "text":
            responder.send_text(self.status, straddling(lines), "text/plain")
        elif self.shape == "object":
            # json.dumps({"echo": text}) starts with 10 characters: '{"echo": "'.
            text = straddling(lines, offset=10)
            responder.send_json(self.status, {"error": {"echo": text}})
        else:
            body = {"error": {"message": straddling(lines), "type": "invalid_request_error"}}
            responder.send_text(self.status, json.dumps(body), "application/json")
