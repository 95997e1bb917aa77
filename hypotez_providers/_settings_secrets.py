"""Where secrets hide in settings, and settings shown or repr'd with them masked (internal).

A key is a ``SecretStr`` field; every value of a ``headers`` table is a secret; so is the
``user:password@`` part of any URL; and so is an unknown (extra) setting that looks like one,
by its name (``api_kye`` is one letter from *key*) or by its value (``sk-...``, a long run of
letters mixed with digits).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from .redaction import MASK, MIN_SECRET_LENGTH, mask_secret, redact, stripped_secret

# An unknown setting whose name contains one of these, or is one letter away from one, is secret.
_SECRET_WORDS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "credential",
    "bearer",
    "signature",
)
_SECRET_PREFIXES = ("sk-", "sk_", "pk-", "rk-", "gsk_", "xai-", "hf_", "ghp_", "AKIA", "eyJ")
# A run of letters and digits this long, with both in it, reads as a generated token.
_TOKEN_RUN = re.compile(r"[A-Za-z0-9]{16,}")


def url_secrets(url: str) -> list[str]:
    """The secrets of a URL's ``user:password@`` part: the password and the whole userinfo.

    Both as written and percent-decoded, and the ``Basic`` credentials requests derives from
    them (base64 of ``user:password``), which an upstream may echo back.
    """
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:
        return []
    userinfo, at, _ = parts.netloc.rpartition("@")
    if not at or not userinfo:
        return []
    found = [userinfo, unquote(userinfo)]
    if password is not None:
        user = unquote(parts.username or "")
        found += [password, unquote(password)]
        basic = f"{user}:{unquote(password)}".encode("latin-1", "replace")
        found.append(base64.b64encode(basic).decode("ascii"))
    return found


def hide_userinfo(url: str) -> str:
    """``url`` with its ``user:password@`` part (if any) shown as ``***@``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    _, at, host = parts.netloc.rpartition("@")
    if not at:
        return url
    return urlunsplit(parts._replace(netloc=f"{MASK}@{host}"))


def looks_like_secret(name: str, value: object) -> bool:
    """Whether a setting named ``name`` (not one the package defines) holds a secret.

    Either its name is, or is close to, a word like *key*, *token* or *password* (``api_kye``
    is), or its value looks generated: a known key prefix (``sk-``, ``gsk_``, ...) or a long run
    of letters mixed with digits.
    """
    if not isinstance(value, str):
        return False
    value = stripped_secret(value)
    if len(value) < MIN_SECRET_LENGTH:
        return False
    if _secret_name(name):
        return True
    if value.startswith(_SECRET_PREFIXES) and len(value) >= 8:
        return True
    return any(
        re.search(r"\d", run) and re.search(r"[A-Za-z]", run) for run in _TOKEN_RUN.findall(value)
    )


def _secret_name(name: str) -> bool:
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    return any(
        secret in word or _one_edit_apart(word, secret)
        for word in words
        for secret in _SECRET_WORDS
    )


def _one_edit_apart(word: str, target: str) -> bool:
    """One letter changed, added, dropped, or two neighbours swapped (``kye`` for ``key``)."""
    if abs(len(word) - len(target)) > 1 or word == target:
        return word == target
    if len(word) == len(target):
        differ = [i for i, (a, b) in enumerate(zip(word, target, strict=True)) if a != b]
        swapped = (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and word[differ[0]] == target[differ[1]]
            and word[differ[1]] == target[differ[0]]
        )
        return len(differ) == 1 or swapped
    short, long = sorted((word, target), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _is_headers(name: str) -> bool:
    return "header" in name.lower()


def settings_secrets(settings: BaseModel) -> list[str]:
    """Every secret a settings model holds, as given.

    Its keys (``SecretStr`` fields), every header value, the userinfo of every URL, and any
    value of an unknown (extra) setting that :func:`looks_like_secret`.
    """
    found: list[str] = []
    extra = settings.model_extra or {}
    for name, value in [*settings.__dict__.items(), *extra.items()]:
        found.extend(_secrets_in(name, value, unknown=name in extra, headers=_is_headers(name)))
    return found


def _secrets_in(name: str, value: Any, *, unknown: bool, headers: bool) -> Iterator[str]:
    if isinstance(value, SecretStr):
        yield value.get_secret_value()
    elif isinstance(value, str):
        if headers or (unknown and looks_like_secret(name, value)):
            yield value
        if "@" in value and "://" in value:
            yield from url_secrets(value)
    elif isinstance(value, BaseModel):
        yield from settings_secrets(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _secrets_in(
                str(key), item, unknown=unknown, headers=headers or _is_headers(str(key))
            )
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _secrets_in(name, item, unknown=unknown, headers=headers)


def shown_settings(settings: BaseModel) -> dict[str, Any]:
    """``settings`` as JSON-ready data to show, with every secret masked.

    Keys, header values and secret-looking unknown settings are shown by :func:`mask_secret`,
    a URL's ``user:password@`` part as ``***@``; any other text is redacted.
    """
    extra = settings.model_extra or {}
    secrets = settings_secrets(settings)
    shown: dict[str, Any] = {}
    data = settings.model_dump(mode="json", exclude_none=True)
    for name, value in data.items():
        raw = getattr(settings, name, None)
        if isinstance(raw, SecretStr):
            shown[name] = mask_secret(raw.get_secret_value())
        else:
            shown[name] = _shown(
                name, value, unknown=name in extra, headers=_is_headers(name), secrets=secrets
            )
    return shown


def _shown(name: str, value: Any, *, unknown: bool, headers: bool, secrets: list[str]) -> Any:
    if isinstance(value, str):
        if headers or (unknown and looks_like_secret(name, value)):
            return mask_secret(value)
        return redact(hide_userinfo(value), secrets)
    if isinstance(value, Mapping):
        return {
            redact(str(key), secrets): _shown(
                str(key),
                item,
                unknown=unknown,
                headers=headers or _is_headers(str(key)),
                secrets=secrets,
            )
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [
            _shown(name, item, unknown=unknown, headers=headers, secrets=secrets) for item in value
        ]
    return value


def redacted_repr_args(
    settings: BaseModel, args: Iterable[tuple[str | None, Any]]
) -> Iterator[tuple[str | None, Any]]:
    """A settings model's ``__repr_args__`` with every value that holds a secret redacted.

    Override ``__repr_args__`` with it, and ``repr()`` and ``str()`` of the model (and of
    anything that contains it) never show a secret.
    """
    secrets = settings_secrets(settings)
    for name, value in args:
        text = repr(value)
        shown = redact(text, secrets)
        yield name, (value if shown == text else _Redacted(shown))


class _Redacted:
    """Stands in for a value in a repr: shows the redacted text it was given."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


__all__ = (
    "hide_userinfo",
    "looks_like_secret",
    "redacted_repr_args",
    "settings_secrets",
    "shown_settings",
    "url_secrets",
)
