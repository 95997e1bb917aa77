"""Writing to the terminal: tables, JSON, colour only when it is wanted."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import IO, Any

import click


def use_colour(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never with ``NO_COLOR`` set (https://no-color.org)."""
    return stream.isatty() and not os.environ.get("NO_COLOR")


def style(text: str, *, fg: str, stream: IO[str] | None = None) -> str:
    """``text`` in colour ``fg`` when ``stream`` (stdout by default) wants colour."""
    return click.style(text, fg=fg) if use_colour(stream or sys.stdout) else text


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns; the first row is the header; the last column is free."""
    if not rows:
        return
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    click.echo(json.dumps(data, indent=2, default=str))


def error(message: str) -> None:
    """A diagnostic on stderr, prefixed with the program name."""
    click.echo(f"hypotez: {message}", err=True)
