"""Provider addresses: checking a base URL at load, and appending a request path to it.

A base URL may carry a query that every request needs (Azure's ``?api-version=...``); the
request path goes before it, not after::

    >>> join_url("https://h/openai/deployments/x?api-version=2024-02-01", "/chat/completions")
    'https://h/openai/deployments/x/chat/completions?api-version=2024-02-01'
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit, urlunsplit

_SCHEMES = ("http", "https")


def check_base_url(url: str) -> str:
    """Return ``url`` if it can be a provider's address, else raise :class:`ValueError`.

    It needs an ``http`` or ``https`` scheme and a host; a query is kept, a ``#fragment`` is
    refused (it never reaches the server, so it is always a mistake). The message never repeats
    the URL, which may carry a password.
    """
    if any(not character.isprintable() or character.isspace() for character in url):
        raise ValueError("the URL contains whitespace or a control character")
    if "#" in url:
        raise ValueError("the URL has a '#' fragment, which never reaches the server: remove it")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks the port is a number in range
    except ValueError as error:
        raise ValueError(f"the URL cannot be parsed: {error}") from None
    if parts.scheme.lower() not in _SCHEMES:
        shown = f"{parts.scheme!r}" if parts.scheme else "none"
        raise ValueError(
            f"the URL's scheme is {shown}, not http or https (write e.g. 'https://host/v1')"
        )
    if not parts.hostname:
        raise ValueError("the URL has no host (write e.g. 'https://host/v1')")
    return url


def join_url(base_url: str, path: str) -> str:
    """``base_url`` with ``path`` appended to its path, its query (if any) kept at the end.

    Exactly one ``/`` joins the two; a query in ``path`` is added after the base's own.
    Plugins build every request address with it: ``join_url(context.base_url, "/v1/messages")``.
    """
    base = urlsplit(base_url)
    if not path:
        return urlunsplit(base._replace(fragment=""))
    # Not urlsplit: a path is never an address ('//x' is not a host, 'a:b' not a scheme).
    extra_path, _, extra_query = path.partition("#")[0].partition("?")
    joined = base.path.rstrip("/") + "/" + extra_path.lstrip("/")
    query = "&".join(part for part in (base.query, extra_query) if part)
    return urlunsplit(SplitResult(base.scheme, base.netloc, joined, query, ""))


__all__ = ("check_base_url", "join_url")
