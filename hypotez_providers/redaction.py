"""One redactor for every secret: API keys, header values from the settings, passwords in URLs.

A secret is registered once (:func:`register_secret`; every :class:`ProviderContext` and
``[endpoints.X]`` table registers those of its settings, found by
:mod:`hypotez_providers._settings_secrets`) and from then on is hidden as ``***`` wherever this
package writes text: error messages and their ``args``, ``str()``, ``repr()``, pickles, log
records of the ``hypotez_providers`` loggers and everything the ``hypotez`` command prints.

The registry is process-wide on purpose: a log record, an exception or a line of CLI output
does not know which provider's settings it came from, and a key must be hidden in all of them.
It starts empty; nothing is registered at import.

Text is always redacted *before* it is cut to a length (:func:`redact_then_cut`): a secret cut
in two would no longer be recognised, and its first half would show.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

#: What a secret is replaced with.
MASK = "***"
#: Shorter strings are never treated as secrets: they would hide ordinary words.
MIN_SECRET_LENGTH = 4

E = TypeVar("E", bound=BaseException)

_EDGES = re.compile(r"^[\s\x00-\x1f\x7f]+|[\s\x00-\x1f\x7f]+$")


def stripped_secret(secret: str) -> str:
    """``secret`` without the whitespace and control characters around it."""
    return _EDGES.sub("", secret)


def secret_forms(secret: str) -> set[str]:
    """Every form in which ``secret`` may show up in text, at least :data:`MIN_SECRET_LENGTH` long.

    The secret as given and with surrounding whitespace and control characters removed, each
    also percent-encoded (as in a URL) and escaped as in JSON and in a Python ``repr``.
    ``Bearer <key>`` and ``x-api-key: <key>`` contain the key itself, so they are covered.
    """
    bases = {secret, stripped_secret(secret)}
    forms = set(bases)
    for base in bases:
        forms.update(
            (quote(base, safe=""), quote_plus(base), json.dumps(base)[1:-1], repr(base)[1:-1])
        )
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """A thread-safe set of secrets and the function that hides them in text.

    Adding is rare (once per provider at start-up) and reading is frequent, so readers use an
    immutable snapshot and the compiled pattern is rebuilt only when the set grows.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret forms)"

    def __len__(self) -> int:
        return len(self._secrets)

    def add(self, *secrets: str | None) -> None:
        """Register each secret (and each of its :func:`secret_forms`); ``None`` is ignored."""
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                forms |= secret_forms(secret)
        if not forms <= self._secrets:
            with self._lock:
                self._secrets = self._secrets | forms

    @property
    def secrets(self) -> frozenset[str]:
        """Every registered form."""
        return self._secrets

    def redact(self, text: str, secrets: Iterable[str | None] = ()) -> str:
        """``text`` with every registered secret, and each of ``secrets``, replaced by ``***``."""
        extra = frozenset(form for secret in secrets if secret for form in secret_forms(secret))
        known = self._secrets | extra if extra else self._secrets
        if not known or not text:
            return text
        return _pattern(known).sub(MASK, text)


@lru_cache(maxsize=64)
def _pattern(secrets: frozenset[str]) -> re.Pattern[str]:
    # Longest first, so that "user:password" is hidden whole rather than around "password".
    ordered = sorted(secrets, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered)))


#: The process-wide redactor behind :func:`redact` and :func:`register_secret`.
REDACTOR = Redactor()


def register_secret(*secrets: str | None) -> None:
    """Hide each of ``secrets`` from now on in every error, log record, repr and CLI output.

    A plugin holding a credential of its own (a token it fetched, a signing key) registers it
    here; keys and header values from the settings are registered by the package itself.
    """
    REDACTOR.add(*secrets)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with every registered secret, and each of ``secrets``, replaced by ``***``.

    Each secret is also recognised in its other forms (see :func:`secret_forms`); secrets
    shorter than :data:`MIN_SECRET_LENGTH` characters are ignored.
    """
    return REDACTOR.redact(text, secrets)


def redact_then_cut(text: str, limit: int, secrets: Iterable[str | None] = ()) -> str:
    """``text`` redacted, then cut to ``limit`` characters: never the other way round.

    Cutting first could leave the head of a secret at the end of the text, where it is no
    longer recognised; this is the only safe way to shorten text that may hold one.
    """
    return redact(text, secrets)[:limit]


def mask_secret(secret: str | None) -> str:
    """Show that a secret is set without showing it: ``***abcd`` for a long key, else ``***``."""
    if not secret:
        return "(not set)"
    secret = stripped_secret(secret)
    if len(secret) < 16:
        return MASK
    return f"{MASK}{secret[-4:]}"


def redact_data(data: Any, secrets: Iterable[str | None] = ()) -> Any:
    """A copy of JSON-like ``data`` (dicts, lists, strings, numbers) with every string redacted."""
    secrets = tuple(secrets)
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, Mapping):
        return {
            redact_data(key, secrets): redact_data(value, secrets) for key, value in data.items()
        }
    if isinstance(data, (list, tuple)):
        return [redact_data(item, secrets) for item in data]
    return data


# -- exceptions ---------------------------------------------------------------------------------


def scrub(error: E, secrets: Iterable[str | None] = ()) -> E:
    """Hide secrets in ``error`` and in the exceptions it carries; return ``error`` itself.

    Its ``args`` (and a provider error's ``upstream_message``) are redacted in place. A chained
    exception (``__cause__``, ``__context__``) that is not one of this package's errors is
    dropped when it was suppressed (``raise ... from None``) or holds a secret, since its
    attributes (a request with its headers, a plugin's locals) cannot be cleaned one by one;
    one of this package's errors is scrubbed in turn. Re-raise it with a bare ``raise`` (or
    ``raise error`` in the handler that caught it) so that nothing new is chained.
    """
    _scrub(error, tuple(secrets), set())
    return error


def _scrub(error: BaseException, secrets: tuple[str | None, ...], seen: set[int]) -> None:
    if id(error) in seen:
        return
    seen.add(id(error))
    error.args = tuple(redact(arg, secrets) if isinstance(arg, str) else arg for arg in error.args)
    message = getattr(error, "upstream_message", None)
    if isinstance(message, str):
        error.upstream_message = redact(message, secrets)  # type: ignore[attr-defined]
    for attribute in ("__cause__", "__context__"):
        linked = getattr(error, attribute)
        if linked is None:
            continue
        if _ours(linked):
            _scrub(linked, secrets, seen)
            continue
        suppressed = attribute == "__context__" and error.__suppress_context__
        if suppressed or _holds_secret(linked, secrets):
            # Setting __cause__ (even to None) also suppresses the context.
            setattr(error, attribute, None)


def _ours(error: BaseException) -> bool:
    from .errors import HypotezError  # errors imports this module

    return isinstance(error, HypotezError)


def _holds_secret(error: BaseException, secrets: tuple[str | None, ...]) -> bool:
    texts = [str(error), repr(error), *map(repr, error.args)]
    return any(redact(text, secrets) != text for text in texts)


# -- logs -----------------------------------------------------------------------------------------


class RedactingFilter(logging.Filter):
    """Redacts each record's message, arguments and traceback text; never drops a record.

    The traceback is formatted and redacted here, and ``exc_info`` cleared, since a handler
    would otherwise format it again from the live exception.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the record's message by its redacted form."""
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string; logging would show the args
            message = f"{record.msg} (arguments: {record.args!r})"
        record.msg, record.args = redact(message), ()
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()
_PACKAGE = __name__.partition(".")[0]


def logger_for(name: str) -> logging.Logger:
    """The logger called ``name``, with the redacting filter on it.

    A filter on a parent logger does not see its children's records, so every module of the
    package gets its logger here rather than from :func:`logging.getLogger`; the package's
    own logger (``hypotez_providers``) gets the filter too.
    """
    for each in {_PACKAGE, name}:
        logger = logging.getLogger(each)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    return logging.getLogger(name)


__all__ = (
    "MASK",
    "MIN_SECRET_LENGTH",
    "REDACTOR",
    "RedactingFilter",
    "Redactor",
    "logger_for",
    "mask_secret",
    "redact",
    "redact_data",
    "redact_then_cut",
    "register_secret",
    "scrub",
    "secret_forms",
    "stripped_secret",
)
