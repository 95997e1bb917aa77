"""``hypotez fake``: a local fake upstream in the foreground, and the lines that point at it.

Something always answers: with no key and no network, a provider pointed at the fake gets
real HTTP answers in its vendor's wire format (the fakes of :mod:`hypotez_providers.testing`).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._fake_announcement import Announcement, announce, announcements_dir, withdraw

if TYPE_CHECKING:
    from ..testing import FakeUpstream, Fault

#: The provider each format serves, and the path under the fake's URL its base URL needs.
FORMATS = {
    "gravityengine": ("gravityengine", ""),
    # The openai plugin joins /chat/completions to its base URL, which therefore ends in /v1.
    "openai": ("openai", "/v1"),
    "anthropic": ("anthropic", ""),
    "ollama": ("ollama", ""),
}
#: The model ``hypotez chat`` asks a live fake of each format when no model is named.
MODELS = {
    "gravityengine": "gpt-3.5-turbo-16k",
    "openai": "gpt-4o-mini",
    "anthropic": "claude-haiku-4-5",
    "ollama": "llama3.2",
}
#: Gravityengine's chat path (its plugin's ``CHAT_PATH``; the core never imports a provider).
GRAVITYENGINE_PATH = "/api/openai/v1/chat/completions"
#: A placeholder key for providers that refuse to send without one; the fake accepts any.
DUMMY_KEY = "fake-key"
#: The providers that refuse to send without a key.
KEYED = ("openai", "anthropic")
#: The Fault fields ``--fault`` sets, and how each value is read.
FAULT_FIELDS: dict[str, Callable[[str], object]] = {
    "status": int,
    "delay": float,
    "drop_after": int,
    "truncate_after": int,
    "error_event_after": int,
    "stall_after": int,
    "stall_for": float,
    "trickle": float,
    "slow_headers": float,
    "drop_on_connect": lambda text: _flag(text),
    "html": lambda text: _flag(text),
    "malformed": lambda text: _flag(text),
}


def register(cli: click.Group) -> None:
    """Add ``fake`` to ``cli``."""
    cli.add_command(fake)


def parse_faults(specs: Sequence[str]) -> Fault | None:
    """One :class:`~hypotez_providers.testing.Fault` from ``NAME=VALUE`` items, or ``None``.

    Raises :class:`click.BadParameter` (a usage error, exit 2) for an unknown name, a value of
    the wrong type, or a combination the Fault refuses.
    """
    from ..testing import Fault

    if not specs:
        return None
    values: dict[str, object] = {}
    for spec in specs:
        name, equals, text = spec.partition("=")
        name = name.strip()
        if not equals or name not in FAULT_FIELDS:
            raise click.BadParameter(
                f"{spec!r}: expected NAME=VALUE with NAME one of {', '.join(FAULT_FIELDS)}",
                param_hint="--fault",
            )
        try:
            values[name] = FAULT_FIELDS[name](text.strip())
        except ValueError as problem:
            raise click.BadParameter(f"{spec!r}: {problem}", param_hint="--fault") from None
    try:
        return Fault(**values)  # type: ignore[arg-type]
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--fault") from None


def build_upstream(form: str, reply: str) -> FakeUpstream:
    """The fake for wire format ``form``, accepting any model where the fake can."""
    from ..testing import FakeAnthropic, FakeOllama, FakeOpenAI

    upstream: FakeUpstream
    if form == "gravityengine":
        upstream = FakeOpenAI(path=GRAVITYENGINE_PATH, models=None, reply=reply)
    elif form == "openai":
        upstream = FakeOpenAI(models=None, reply=reply)
    elif form == "anthropic":
        upstream = FakeAnthropic(models=None, reply=reply)
    else:
        # Ollama lists its installed models, so the fake needs names: the common small ones.
        upstream = FakeOllama(models=("llama3.2:latest", "llama3.1:latest"), reply=reply)
    return upstream


def pointing_lines(form: str, url: str) -> tuple[list[str], list[str]]:
    """The environment lines and settings-file lines that point ``form``'s provider at ``url``."""
    provider, suffix = FORMATS[form]
    prefix = "HYPOTEZ_" + provider.upper() + "_"
    base_url = url + suffix
    exports = [f"export {prefix}BASE_URL={base_url}"]
    toml = [f"[providers.{provider}]", f'base_url = "{base_url}"']
    if provider in KEYED:
        exports.append(f"export {prefix}API_KEY={DUMMY_KEY}")
        toml.append(f'api_key = "{DUMMY_KEY}"')
    return exports, toml


@click.command(
    epilog=(
        "Examples:\n\n  hypotez fake --format gravityengine\n\n"
        "  hypotez fake --format anthropic --port 8787 --fault status=529\n\n"
        "Then, in another terminal:\n\n  hypotez chat 'hi'"
    )
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="0: any free port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--format",
    "form",
    type=click.Choice(sorted(FORMATS)),
    default="gravityengine",
    show_default=True,
    help="The wire format (and provider) to fake.",
)
@click.option("--reply", default="Hello from the fake upstream!", help="The answer it gives.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="NAME=VALUE",
    help="Misbehave on every request: status=503, delay=2, drop_after=3, ...",
)
@click.option("--toml", "as_toml", is_flag=True, help="Print settings-file lines on stdout.")
def fake(
    port: int, host: str, form: str, reply: str, faults: tuple[str, ...], as_toml: bool
) -> None:
    """Run a fake upstream of one wire format in the foreground until Ctrl-C.

    While it runs, the hypotez command in any terminal of this user sends the provider to it
    (unless the environment or the settings file give that provider a base_url), and
    hypotez chat with no -m and no default model asks the model it serves. Prints on stdout
    the lines that point the provider at it elsewhere (environment variables, or the settings
    file's table with --toml; the other form goes to stderr). Any model name is accepted,
    except by the Ollama fake, which serves llama3.2 and llama3.1.
    """
    fault = parse_faults(faults)
    upstream = build_upstream(form, reply)
    upstream.host = host
    upstream.port = port
    upstream.fail_every_request = fault
    # Before the lines are printed: whoever reads them may stop the fake at once.
    _stop_on_signals()
    try:
        upstream.start()
    except OSError as problem:
        raise click.UsageError(f"cannot listen on {host}:{port}: {problem.strerror}") from None
    try:
        announced = _announce(form, upstream.url)
        exports, toml = pointing_lines(form, upstream.url)
        shown, other = (toml, exports) if as_toml else (exports, toml)
        click.echo("\n".join(shown))
        click.echo(
            ("# or, in the settings file:\n" if not as_toml else "# or:\n") + "\n".join(other),
            err=True,
        )
        click.echo(f"# fake {form} upstream on {upstream.url}; Ctrl-C to stop", err=True)
        if announced is not None:
            click.echo(
                f'# in another terminal, hypotez chat "hi" now answers from it ({MODELS[form]});'
                " no export needed",
                err=True,
            )
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        # Whatever the moment the signal came: the file, if written, is this process's.
        withdraw(announcements_dir() / f"{form}.json", os.getpid())
        upstream.stop()


def _announce(form: str, url: str) -> Path | None:
    """Announce the fake to other hypotez commands; ``None`` (with a warning) if it cannot."""
    provider, suffix = FORMATS[form]
    announcement = Announcement(
        form=form,
        url=url,
        base_url=url + suffix,
        provider=provider,
        model=MODELS[form],
        pid=os.getpid(),
        api_key=DUMMY_KEY if provider in KEYED else None,
    )
    try:
        return announce(announcement)
    except OSError as problem:
        click.echo(
            f"# warning: cannot announce the fake ({problem}); other terminals need the"
            " printed lines instead",
            err=True,
        )
        return None


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (its terminal closed) end the command quietly, exit 0.

    A shell starts a background job with SIGINT ignored; the fake is meant to be stopped with
    it even so (``hypotez fake &`` then ``kill -INT``), hence the explicit handler.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, interrupt)


def _flag(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on", ""):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {text!r}")


__all__ = [
    "FORMATS",
    "MODELS",
    "build_upstream",
    "fake",
    "parse_faults",
    "pointing_lines",
    "register",
]
