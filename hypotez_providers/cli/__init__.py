"""The ``hypotez`` command (also ``python -m hypotez_providers``).

Text goes to stdout, diagnostics to stderr. Exit codes: 0 done, 1 a provider failed (or
every provider did), 2 a usage or settings error. Plugins add subcommands through the
``register_commands`` hook.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from .output import error

if TYPE_CHECKING:
    from ..errors import HypotezError
    from ..registry import Registry


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Example: hypotez chat -m gpt-4o-mini 'Say hello'\n\n"
    "Commands that plugins add are not listed here (no plugin is loaded for this help).",
)
@click.version_option(package_name="hypotez-providers", prog_name="hypotez")
def cli() -> None:
    """Many LLM providers behind one interface: chat, list, check, demo."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    ``hypotez``, ``hypotez --version`` and ``hypotez --help`` load no plugin and read no
    settings (so they work while the settings are broken); the top-level help then lists the
    built-in commands only. Any command loads the plugins first: it may be one of theirs.
    """
    arguments = list(argv) if argv is not None else sys.argv[1:]
    command = next((argument for argument in arguments if not argument.startswith("-")), None)
    if arguments != ["--version"]:
        _add_builtin_commands(cli)
    registry = None
    if command is not None:
        registry = _registry_for(arguments)
        if registry is None:
            return 2
    try:
        # Without standalone mode click returns an Exit's code instead of raising it.
        code = cli.main(
            args=arguments,
            prog_name="hypotez",
            standalone_mode=False,
            obj=registry,
        )
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except click.ClickException as problem:
        problem.show()
        return problem.exit_code
    except click.exceptions.Abort:
        error("aborted")
        return 130
    except _hypotez_error() as problem:  # evaluated only for an exception not caught above
        error(str(problem))
        return 2
    finally:
        if registry is not None:
            registry.close()
    return code if isinstance(code, int) else 0


def _hypotez_error() -> type[HypotezError]:
    """:class:`HypotezError`, imported only when an error is being handled.

    ``hypotez --version`` needs none, and the errors module brings pydantic with it.
    """
    from ..errors import HypotezError

    return HypotezError


def _add_builtin_commands(group: click.Group) -> None:
    """Add the built-in subcommands to ``group``."""
    from . import chat, checks, config, demo, fake, listing

    for module in (chat, checks, config, demo, fake, listing):
        module.register(group)
    # After listing: ``models default`` and ``plugins check`` turn those commands into groups.
    from . import keys, logs, models_default, plugins_check, serve

    for module in (keys, logs, models_default, plugins_check, serve):
        module.register(group)


def _registry_for(arguments: list[str]) -> Registry | None:
    """The plugins and settings a command runs with, plugin commands added; ``None``: reported."""
    from ..errors import HypotezError
    from ..registry import Registry
    from ..settings import Settings
    from ._fake_announcement import environ_with_fakes, note_fakes

    # A running ``hypotez fake`` stands in for its provider unless one is configured.
    environ, fakes = environ_with_fakes(os.environ)
    try:
        registry = Registry(environ=environ)
    except HypotezError as problem:
        if arguments[:2] not in (["config", "init"], ["config", "path"]):
            error(str(problem))
            return None
        # Writing or locating the settings file must work while it, or the environment
        # (HYPOTEZ_LOAD_PLUGINS, a key), is wrong: no plugin is needed for that.
        registry = Registry(settings=Settings(), load_entry_points=False)
    note_fakes(registry, fakes, arguments)
    add_plugin_commands(registry, cli)
    return registry


def add_plugin_commands(registry: Registry, group: click.Group) -> None:
    """Let each plugin's ``register_commands`` add its subcommands to ``group``, one by one.

    A plugin whose hook raises (``SystemExit`` included) loses the commands it added, with a
    warning on stderr; one that replaces a command already there keeps the original. Every
    other command, the plugins' included, works as usual.
    """
    for implementation in registry.plugin_manager.hook.register_commands.get_hookimpls():
        plugin = implementation.plugin_name
        before = dict(group.commands)
        try:
            implementation.function(*[{"cli": group}[name] for name in implementation.argnames])
        except KeyboardInterrupt:
            raise
        except BaseException as problem:  # noqa: BLE001 - one plugin must not stop the command
            group.commands = before
            reason = f"{type(problem).__name__}: {problem}".rstrip(": ")
            error(f"warning: plugin {plugin!r} failed to add its commands ({reason}); skipped")
            continue
        replaced = sorted(name for name in before if group.commands.get(name) is not before[name])
        if replaced:
            group.commands.update({name: before[name] for name in replaced})
            error(
                f"warning: plugin {plugin!r} may not replace the command(s) "
                f"{', '.join(replaced)}; kept the ones already there"
            )


def run() -> None:
    """The console script's entry point: exit with :func:`main`'s code."""
    raise SystemExit(main())
