"""``hypotez models default [MODEL]``: show or set the model ``hypotez chat`` uses without -m.

``models`` becomes a group: with no subcommand it runs the listing as before.
"""

from __future__ import annotations

import difflib
import re

import click

from ..errors import ConfigError
from ..registry import Registry
from ..settings import default_config_path, parse_settings
from .grouping import with_subcommands
from .output import echo

_TABLE = re.compile(r"^\s*\[", re.MULTILINE)
_DEFAULT = re.compile(r"^default_model\s*=.*$", re.MULTILINE)


def register(cli: click.Group) -> None:
    """Turn ``cli``'s ``models`` command into a group with ``default`` beside the listing."""
    with_subcommands(
        cli,
        "models",
        "Examples: hypotez models --json; hypotez models default gpt-4o-mini",
        default,
    )


def known_models(registry: Registry) -> set[str]:
    """Every model an installed provider lists, and every alias."""
    served = {model for provider in registry.by_name.values() for model in provider.models}
    return served | set(registry.settings.aliases)


def with_default_model(text: str, model: str) -> str:
    """The settings file's text with ``default_model`` set to ``model`` (a top-level key)."""
    line = f"default_model = {_toml_string(model)}"
    first_table = _TABLE.search(text)
    top = text[: first_table.start()] if first_table else text
    if _DEFAULT.search(top):
        return _DEFAULT.sub(lambda _: line, top, count=1) + text[len(top) :]
    # Top-level keys must come before the first table.
    return line + "\n" + text


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@click.command(epilog="Example: hypotez models default gpt-4o-mini")
@click.argument("model", required=False)
@click.pass_obj
def default(registry: Registry, model: str | None) -> None:
    """Print the default model, or set it to MODEL in the settings file (creating it)."""
    if model is None:
        current = registry.settings.default_model
        if current is None:
            raise click.ClickException(
                "no default model: set one with hypotez models default MODEL"
            )
        echo(current)
        return
    known = known_models(registry)
    if model not in known:
        close = difflib.get_close_matches(model, sorted(known), n=3, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise click.UsageError(f"no provider serves model {model!r}{hint}")
    path = default_config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    updated = with_default_model(text, model)
    try:
        parse_settings(updated, path=path)
    except ConfigError as problem:
        raise click.ClickException(f"cannot set the default model: {problem}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated, encoding="utf-8")
    echo(f"default model: {model} (in {path})", err=True)
