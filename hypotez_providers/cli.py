"""The ``hypotez`` command (and ``python -m hypotez_providers``): list providers and plugins.

Exit codes: 0 done, 1 a provider or plugin failed, 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import HypotezError
from .registry import Registry

_EXAMPLES = {
    "providers": "example: hypotez providers --json | jq '.[].name'",
    "plugins": "example: HYPOTEZ_LOAD_PLUGINS=gravityengine hypotez plugins",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="hypotez",
        description="Many LLM providers behind one interface.",
        epilog="example: hypotez providers",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    providers = commands.add_parser(
        "providers",
        help="list installed providers and their metadata",
        epilog=_EXAMPLES["providers"],
    )
    providers.add_argument("--json", action="store_true", help="print JSON instead of a table")
    plugins = commands.add_parser(
        "plugins", help="list plugins, working and broken", epilog=_EXAMPLES["plugins"]
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    arguments = parser.parse_args(argv)
    try:
        registry = Registry()
    except HypotezError as error:
        print(f"hypotez: {error}", file=sys.stderr)
        return 2
    if arguments.command == "providers":
        return _providers(registry, arguments.json)
    return _plugins(registry, arguments.json)


def _providers(registry: Registry, as_json: bool) -> int:
    infos = registry.providers()
    if as_json:
        print(json.dumps([info.model_dump(mode="json") for info in infos], indent=2))
        return 0
    rows = [("NAME", "STREAM", "AUTH", "KEY SET", "MODELS")]
    for info in infos:
        key_set = registry.provider(info.name).context.api_key is not None
        rows.append(
            (
                info.name,
                "yes" if info.supports_stream else "no",
                "yes" if info.needs_auth else "no",
                "yes" if key_set else "-",
                ", ".join(info.models),
            )
        )
    _table(rows)
    for record in registry.broken():
        print(f"hypotez: plugin {record.name!r} is broken: {record.error}", file=sys.stderr)
    return 0


def _plugins(registry: Registry, as_json: bool) -> int:
    records = registry.plugins()
    if as_json:
        print(json.dumps([record.model_dump(mode="json") for record in records], indent=2))
        return 1 if registry.broken() else 0
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS / REASON")]
    for record in records:
        status = "broken" if record.broken else "ok"
        detail = record.error if record.broken else ", ".join(record.hooks)
        rows.append(
            (record.name, record.distribution or "-", record.version or "-", status, detail or "")
        )
    _table(rows)
    return 1 if registry.broken() else 0


def _table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())
