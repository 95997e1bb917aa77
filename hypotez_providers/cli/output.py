"""Writing to the terminal: tables, JSON, colour only when it is wanted; never a secret.

Everything the command prints goes through these functions, and each passes its text through
the redactor (:mod:`hypotez_providers.redaction`) before it is written.
"""

from __future__ import annotations

import json
import os
import shutil
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


#: Columns between two cells of a table.
GAP = "  "
#: The narrowest a column is cut to (its header's width if that is less).
MIN_COLUMN = 6


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print rows as aligned columns; the first row is the header; the last column is free.

    On a terminal, or with ``COLUMNS`` set, the rows fit its width: the widest columns are
    narrowed first and a cut cell ends in "…", so the terminal never wraps a line. Piped
    output without ``COLUMNS`` is never cut.
    """
    if not rows:
        return
    rows = [[redact(cell) for cell in row] for row in rows]
    widths = fit_widths(
        [max(len(row[column]) for row in rows) for column in range(len(rows[0]))],
        [len(cell) for cell in rows[0]],
        terminal_width(),
    )
    for row in rows:
        cells = [_cut(cell, width) for cell, width in zip(row, widths, strict=False)]
        padded = [cell.ljust(width) for cell, width in zip(cells[:-1], widths, strict=False)]
        click.echo(GAP.join([*padded, cells[-1]]).rstrip())


def terminal_width() -> int | None:
    """The width tables must fit: the terminal's, or ``COLUMNS``; ``None`` when piped."""
    if os.environ.get("COLUMNS") or sys.stdout.isatty():
        return shutil.get_terminal_size().columns
    return None


def fit_widths(natural: Sequence[int], headers: Sequence[int], limit: int | None) -> list[int]:
    """Column widths that fit ``limit`` characters in all, narrowing the widest column first.

    No column is narrowed below :data:`MIN_COLUMN` (or its header's width, if less), so with
    very many columns the sum may still exceed ``limit``.
    """
    widths = list(natural)
    if limit is None:
        return widths
    floors = [
        min(width, max(MIN_COLUMN, header)) for width, header in zip(widths, headers, strict=True)
    ]
    # One column fewer than the limit: a line exactly as wide as the terminal wraps on some.
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - (limit - 1)
    while excess > 0:
        room = [width - floor for width, floor in zip(widths, floors, strict=True)]
        widest = max(range(len(widths)), key=lambda column: (room[column] > 0, widths[column]))
        if room[widest] <= 0:
            break
        widths[widest] -= 1
        excess -= 1
    return widths


def _cut(cell: str, width: int) -> str:
    """``cell`` in ``width`` characters, ending in "…" if cut.

    The cut falls between words when a space lies in the second half, so no half word shows.
    """
    if len(cell) <= width:
        return cell
    kept = cell[: max(0, width - 1)]
    space = kept.rfind(" ")
    if not cell[len(kept)].isspace() and space >= width // 2:
        kept = kept[:space]
    return kept.rstrip() + "…"


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON."""
    click.echo(json.dumps(redact_data(data), indent=2, default=lambda value: redact(str(value))))


def error(message: str) -> None:
    """A diagnostic on stderr, prefixed with the program name."""
    click.echo(f"hypotez: {redact(message)}", err=True)
