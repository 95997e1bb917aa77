"""``hypotez plugins check NAME``: run the conformance battery against an installed provider.

``plugins`` becomes a group: with no subcommand it lists plugins as before.
"""

from __future__ import annotations

import click

from ..registry import Registry
from ..testing.conformance import WIRE_FORMATS, run_conformance
from .grouping import with_subcommands
from .output import echo


def register(cli: click.Group) -> None:
    """Turn ``cli``'s ``plugins`` command into a group with ``check`` beside the listing."""
    with_subcommands(
        cli, "plugins", "Examples: hypotez plugins --json; hypotez plugins check openai", check
    )


@click.command(epilog="Example: hypotez plugins check my-provider --format openai --model m1")
@click.argument("name")
@click.option(
    "--format",
    "wire_format",
    type=click.Choice(WIRE_FORMATS),
    help="Wire format of the fake upstream (default: NAME, for a first-party provider).",
)
@click.option("--model", help="A model the provider lists (default: the format's usual one).")
@click.pass_obj
def check(registry: Registry, name: str, wire_format: str | None, model: str | None) -> None:
    """Check provider NAME against a local fake upstream; print PASS or FAIL per property.

    Exits 0 when every property holds, 1 when any fails, 2 for a usage error.
    """
    if name not in registry.by_name:
        raise click.UsageError(f"no provider named {name!r} is installed")
    if wire_format is None and name not in WIRE_FORMATS:
        raise click.UsageError(f"say which wire format {name!r} speaks with --format")
    results = run_conformance(name, wire_format=wire_format, model=model)
    for result in results:
        echo(f"{'PASS' if result.passed else 'FAIL'}  {result.name}: {result.reason}")
    if not all(result.passed for result in results):
        raise click.exceptions.Exit(1)
