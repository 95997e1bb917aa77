"""Writing to the terminal: tables, JSON, colour only when it is wanted; never a secret.

Everything the command prints goes through these functions, and each passes its text through
the redactor (:mod:`hypotez_providers.redaction`) before it is written.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

import click

from ..redaction import redact, redact_data


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def style(text: str, *, fg: str, stream: IO[str] | None = None) -> str:
    """``text`` in colour ``fg`` when ``stream`` (stdout by default) wants colour."""
    return click.style(text, fg=fg) if use_colour(stream or sys.stdout) else text


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` (redacted) to stdout, or to stderr with ``err``."""
    click.echo(redact(text), err=err, nl=nl)


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns; the first row is the header; the last column is free."""
    if not rows:
        return
    rows = [[redact(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    click.echo(json.dumps(redact_data(data), indent=2, default=lambda value: redact(str(value))))


def error(message: str) -> None:
    """A diagnostic on stderr, prefixed with the program name."""
    click.echo(f"hypotez: {redact(message)}", err=True)
