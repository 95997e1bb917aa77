"""Turning a listing command into a group, so subcommands can stand beside the listing."""

from __future__ import annotations

from collections.abc import Callable

import click


def with_subcommands(cli: click.Group, name: str, epilog: str, *commands: click.Command) -> None:
    """Replace ``cli``'s command ``name`` by a group of ``commands`` that, given none, lists.

    ``hypotez models`` and ``hypotez plugins`` keep their options and behaviour when called
    alone; ``hypotez models default`` and ``hypotez plugins check`` sit beside them.
    """
    listing = cli.commands[name]
    group = click.Group(
        name=name,
        params=listing.params,
        help=listing.help,
        epilog=epilog,
        invoke_without_command=True,
        callback=click.pass_context(_list_unless_subcommand(listing)),
    )
    for command in commands:
        group.add_command(command)
    cli.add_command(group)


def _list_unless_subcommand(listing: click.Command) -> Callable[..., None]:
    def run(context: click.Context, **values: object) -> None:
        if context.invoked_subcommand is None:
            context.invoke(listing, **values)

    return run
