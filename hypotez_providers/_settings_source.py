"""The settings file as text: decoding it, finding the line of a key, suggesting a close name.

Internal to :mod:`hypotez_providers.settings` and the registry's checks of it.
"""

from __future__ import annotations

import difflib
import re
import sys
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from .errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")
#: Past this many lines the slow, exact search for a key's line is not tried.
_EXACT_SEARCH_LINES = 2000


def decode(data: bytes, where: str) -> str:
    """The text of UTF-8 ``data`` (a BOM is allowed), else :class:`ConfigError` with the line."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"{where}, line {line}: not UTF-8 text (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8",
            path=where,
            line=line,
        ) from None


def parse_toml(text: str, where: str) -> dict[str, Any]:
    """The TOML ``text`` as data, or :class:`ConfigError` naming ``where`` and the line."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        match = re.search(r"line (\d+)", str(error))
        line = int(match.group(1)) if match else None
        raise ConfigError(f"{where}: {error}", path=where, line=line) from None
    except RecursionError:
        raise ConfigError(f"{where}: values are nested too deeply", path=where) from None
    return data


def problem_at(where: str, text: str, loc: Sequence[str], message: str) -> ConfigError:
    """A :class:`ConfigError` for the key at ``loc`` of ``text``: ``file, line N: key: ...``."""
    key = ".".join(loc)
    # A missing key has no line of its own: its table's is the place to add it.
    line = line_of(text, loc) or line_of(text, loc[:-1])
    at = f", line {line}" if line else ""
    return ConfigError(f"{where}{at}: {key}: {message}", path=where, line=line, key=key)


def fields_at(root: type[BaseModel], loc: Sequence[str]) -> list[str]:
    """The keys ``root`` allows where ``loc[-1]`` stands (tables named by ``loc[:-1]``)."""
    model = root
    parts = list(loc[:-1])
    while parts:
        field = model.model_fields.get(parts.pop(0))
        inner = _model_in(field.annotation) if field else None
        if field is None or inner is None:
            return []
        if typing.get_origin(field.annotation) is dict and parts:
            parts.pop(0)  # the table's own name, e.g. the provider's
        model = inner
    return list(model.model_fields)


def _model_in(annotation: object) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def line_of(text: str, loc: Sequence[str]) -> int | None:
    """The line where the key at ``loc`` (table names, then the key) is set, if it can be told.

    A ``[table]`` header or a ``key =`` line is found by reading the text; a key set any other
    way (a dotted key, an inline table) by parsing ever longer beginnings of the file.
    """
    if not loc:
        return None
    return _line_by_reading(text, loc) or _line_by_parsing(text, loc)


def _line_by_reading(text: str, loc: Sequence[str]) -> int | None:
    table, key, whole = ".".join(loc[:-1]), loc[-1], ".".join(loc)
    current = ""
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            current = header.group(1).replace('"', "").replace("'", "").replace(" ", "")
            if current == whole or current.startswith(whole + "."):
                return number
            continue
        stripped = line.strip()
        if current == table and re.match(rf"^[\"']?{re.escape(key)}[\"']?\s*[=.]", stripped):
            return number
    return None


def _line_by_parsing(text: str, loc: Sequence[str]) -> int | None:
    lines = text.splitlines(keepends=True)
    if len(lines) > _EXACT_SEARCH_LINES:
        return None
    for number in range(1, len(lines) + 1):
        try:
            data: object = tomllib.loads("".join(lines[:number]))
        except (ValueError, RecursionError):
            continue  # the beginning stops inside a multi-line value
        for part in loc:
            if not isinstance(data, dict) or part not in data:
                break
            data = data[part]
        else:
            return number
    return None
