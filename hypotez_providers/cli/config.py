"""``hypotez config``: where the settings file is, and what is in effect (secrets masked)."""

from __future__ import annotations

import re
from typing import Any

import click

from .._settings_secrets import shown_settings
from ..redaction import mask_secret
from ..registry import Registry
from ..settings import default_config_path
from .output import echo, error, print_json

EXAMPLE = """\
# hypotez settings. Environment variables beat this file:
#   HYPOTEZ_<NAME>_BASE_URL, HYPOTEZ_<NAME>_API_KEY, and the vendor's own (OPENAI_API_KEY, ...).

# Settings of an installed provider.
# [providers.gravityengine]
# base_url = "http://127.0.0.1:8080"
# timeout = 30            # seconds per read
# connect_timeout = 5
# priority = 0            # higher is tried first
# enabled = true

# An OpenAI-compatible endpoint, registered as a provider named "groq".
# [endpoints.groq]
# base_url = "https://api.groq.com/openai/v1"
# api_key_env = "GROQ_API_KEY"
# models = ["llama-3.3-70b-versatile"]

# A name that routes to different models at different providers, in this order.
# [aliases]
# fast = ["groq:llama-3.3-70b-versatile", "openai:gpt-4o-mini"]

# [retry]
# attempts = 2
# initial_backoff = 0.25

# [health]
# failure_threshold = 2
# cooldown = 10
"""


def register(cli: click.Group) -> None:
    """Add ``config`` to ``cli``."""
    cli.add_command(config)


@click.group(invoke_without_command=True, epilog="Example: hypotez config --json")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def config(context: click.Context, as_json: bool) -> None:
    """Show the settings file's path and every setting in effect, secrets masked.

    Keys and header values show as ``***`` and their last four characters at most, a password
    in a URL as ``***@``, and an unknown setting that looks like a key (``api_kye``) is masked.
    """
    if context.invoked_subcommand is not None:
        return
    registry: Registry = context.obj
    path = default_config_path()
    effective = effective_settings(registry)
    if as_json:
        print_json({"path": str(path), "exists": path.exists(), **effective})
        return
    echo(f"# {path}{'' if path.exists() else ' (not created yet: hypotez config init)'}")
    for section in ("providers", "endpoints"):
        for name, shown in effective[section].items():
            echo(f"\n[{section}.{name}]")
            for key, value in shown.items():
                echo(f"{key} = {_toml(value)}")
    for section in ("aliases", "routes", "retry", "health", "balancing", "state", "gateway"):
        if effective[section]:
            echo(f"\n[{section}]")
            for key, value in effective[section].items():
                echo(f"{key} = {_toml(value)}")


def effective_settings(registry: Registry) -> dict[str, Any]:
    """Every setting in effect, as JSON-ready data with every secret masked.

    ``providers`` holds each installed provider's effective settings (file and environment
    merged), ``endpoints`` the ``[endpoints.NAME]`` tables, then the routing tables and policies.
    """
    settings = registry.settings
    return {
        "providers": {
            info.name: {
                **shown_settings(registry.provider(info.name).settings),
                "api_key": mask_secret(registry.provider(info.name).context.api_key),
            }
            for info in registry.providers()
        },
        "endpoints": {
            name: shown_settings(endpoint) for name, endpoint in sorted(settings.endpoints.items())
        },
        "aliases": {name: list(targets) for name, targets in settings.aliases.items()},
        "routes": {name: list(order) for name, order in settings.routes.items()},
        "retry": shown_settings(settings.retry),
        "health": shown_settings(settings.health),
        "balancing": shown_settings(settings.balancing),
        "state": {
            **shown_settings(settings.state),
            "url": settings.state.shown_url(registry.environ),
        },
        "gateway": shown_settings(settings.gateway),
    }


@config.command(epilog='Example: hypotez config init && $EDITOR "$(hypotez config path)"')
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(force: bool) -> None:
    """Write a commented example settings file."""
    path = default_config_path()
    if path.exists() and not force:
        error(f"{path} exists; use --force to overwrite it")
        raise click.exceptions.Exit(1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(EXAMPLE, encoding="utf-8")
    click.echo(str(path))


@config.command(epilog="Example: hypotez config path")
def path() -> None:
    """Print the settings file's path."""
    click.echo(str(default_config_path()))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml(name)
