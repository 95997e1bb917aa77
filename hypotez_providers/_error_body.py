"""Reading an upstream's error answer: its message, type and a short preview (internal).

Every text taken from a body is redacted *before* it is cut, so a key the upstream echoed
back never shows even in part where the cut falls inside it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from .redaction import redact_then_cut

Secrets = Iterable[str | None]
#: Characters of a body decoded for a preview: far more than any key is long.
_PREVIEW_WINDOW = 4096


def error_message(body: bytes, secrets: Secrets = ()) -> tuple[str, str]:
    """The upstream's own error message and error type/code, from whatever shape it sent."""
    secrets = tuple(secrets)
    try:
        data = json.loads(body)
    except ValueError:
        if looks_like_html(body):
            return f"an HTML error page ({html_title(body)!r})", ""
        return (preview(body, secrets) or "(empty body)"), ""
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        message = error.get("message") or error.get("detail")
        kind = " ".join(str(error.get(key) or "") for key in ("type", "code")).strip()
        if message:
            return redact_then_cut(str(message), 64 * 1024, secrets), kind
        return redact_then_cut(json.dumps(error), 300, secrets), kind
    if isinstance(error, str):
        return redact_then_cut(error, 64 * 1024, secrets), ""
    return redact_then_cut(json.dumps(data), 300, secrets), ""


def looks_like_html(body: bytes) -> bool:
    """Whether the body starts like an HTML page (a proxy's or a CDN's error page)."""
    head = body[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body"))


def html_title(body: bytes) -> str:
    """The page's ``<title>``, or ``"untitled"``."""
    match = re.search(rb"<title[^>]*>(.*?)</title>", body[:4096], re.I | re.S)
    return match.group(1).decode("utf-8", "replace").strip() if match else "untitled"


def preview(body: bytes, secrets: Secrets = ()) -> str:
    """The first 200 characters of a body, redacted first."""
    text = body[:_PREVIEW_WINDOW].decode("utf-8", "replace")
    return redact_then_cut(text, 200, secrets).strip()


def describe_reason(error: BaseException, secrets: Secrets = ()) -> str:
    """Why a connection failed, in words; the library's own text, redacted then cut."""
    text = str(error)
    if "Connection refused" in text or "ConnectionRefusedError" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name not found"
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection without answering"
    return redact_then_cut(text, 300, secrets)
