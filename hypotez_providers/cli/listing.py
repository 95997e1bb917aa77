"""``hypotez providers``, ``models`` and ``plugins``: what is installed, and in what state."""

from __future__ import annotations

from typing import Any

import click

from .._settings_secrets import hide_userinfo
from ..errors import UnknownModel
from ..registry import Registry
from ..router import Router
from ..selection import plan
from .output import print_json, table


def register(cli: click.Group) -> None:
    """Add the listing commands to ``cli``."""
    cli.add_command(providers)
    cli.add_command(models)
    cli.add_command(plugins)


@click.command(epilog="Example: hypotez providers --json | jq -r '.[].name'")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def providers(registry: Registry, as_json: bool) -> None:
    """List installed providers: models, streaming, auth, key set, health."""
    health = {h.provider: h for h in Router(registry).health()}
    rows: list[dict[str, Any]] = []
    for info in registry.providers():
        provider = registry.provider(info.name)
        rows.append(
            {
                **info.model_dump(mode="json"),
                "url": hide_userinfo(info.url),
                "enabled": provider.settings.enabled,
                "key_set": provider.context.api_key is not None,
                "health": health[info.name].state.value,
            }
        )
    if as_json:
        print_json(rows)
        return
    lines = [("NAME", "STREAM", "AUTH", "KEY", "HEALTH", "MODELS")]
    for row in rows:
        key = "set" if row["key_set"] else ("missing" if row["needs_auth"] else "-")
        lines.append(
            (
                row["name"] + ("" if row["enabled"] else " (disabled)"),
                "yes" if row["supports_stream"] else "no",
                "yes" if row["needs_auth"] else "no",
                key,
                row["health"],
                ", ".join(row["models"]),
            )
        )
    table(lines)


@click.command(epilog="Example: hypotez models --json")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def models(registry: Registry, as_json: bool) -> None:
    """List every model name and alias with its providers, in routing order."""
    names = sorted({m for info in registry.providers() for m in info.models})
    aliases = sorted(registry.settings.aliases)
    rows: list[dict[str, Any]] = []
    for name in [*names, *aliases]:
        try:
            candidates, skipped = plan(name, registry.by_name, registry.settings)
        except UnknownModel:
            candidates, skipped = [], []
        route = [
            f"{c.provider.name}:{c.model}" if c.model != name else c.provider.name
            for c in candidates
        ]
        rows.append(
            {
                "model": name,
                "alias": name in registry.settings.aliases,
                "providers": route,
                "skipped": {a.provider: a.message for a in skipped},
            }
        )
    if as_json:
        print_json(rows)
        return
    lines = [("MODEL", "KIND", "PROVIDERS (ROUTING ORDER)")]
    for row in rows:
        passed_over = [f"{name} (skipped)" for name in row["skipped"]]
        order = ", ".join([*row["providers"], *passed_over]) or "(none)"
        lines.append((row["model"], "alias" if row["alias"] else "model", order))
    table(lines)


@click.command(epilog="Example: HYPOTEZ_LOAD_PLUGINS=gravityengine hypotez plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def plugins(registry: Registry, as_json: bool) -> None:
    """List plugins, working and broken (with the reason), and their hooks."""
    records = registry.plugins()
    if as_json:
        print_json([record.model_dump(mode="json") for record in records])
        return
    lines = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS / REASON")]
    for record in records:
        status = "broken" if record.broken else "ok"
        detail = record.error if record.broken else ", ".join(record.hooks)
        lines.append(
            (record.name, record.distribution or "-", record.version or "-", status, detail or "")
        )
    table(lines)
