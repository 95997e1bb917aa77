"""``hypotez keys``: store API keys in a file only the user can read, list their names.

A stored key is used after the environment and the settings file. No command prints a key.
"""

from __future__ import annotations

import sys

import click

from .._key_file import key_file_path, read_keys, write_keys
from ..provider_settings import secret_problem
from .output import echo


def register(cli: click.Group) -> None:
    """Add ``keys`` to ``cli``."""
    cli.add_command(keys)


@click.group(epilog="Example: hypotez keys set openai  (then paste the key)")
def keys() -> None:
    """Store API keys (used after the environment and the settings file)."""


@keys.command(name="set")
@click.argument("name")
def set_key(name: str) -> None:
    """Store the key for provider NAME, read from a hidden prompt or standard input."""
    if sys.stdin.isatty():
        key = click.prompt(f"Key for {name}", hide_input=True, err=True)
    else:
        key = sys.stdin.readline().rstrip("\r\n")
    if not key:
        raise click.UsageError("no key given (type it at the prompt, or pipe it in)")
    problem = secret_problem(key)
    if problem:
        raise click.UsageError(f"the key {problem}")
    path = key_file_path()
    stored = read_keys(path)
    stored[name] = key
    write_keys(path, stored)
    echo(f"stored the key for {name} in {path}", err=True)


@keys.command(name="list")
def list_keys() -> None:
    """The names that have a stored key (never the keys)."""
    for name in sorted(read_keys(key_file_path())):
        echo(name)


@keys.command(name="path")
def keys_path() -> None:
    """Print the keys file's path."""
    echo(str(key_file_path()))
