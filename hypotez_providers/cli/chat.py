"""``hypotez chat``: send a prompt, stream the answer to stdout."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import AllProvidersFailed, InvalidInput, ProviderError, StreamInterrupted
from ..redaction import redact
from ..registry import Registry
from ..results import Attempt
from ..router import Router
from .output import echo, error, style


def register(cli: click.Group) -> None:
    """Add ``chat`` to ``cli``."""
    cli.add_command(chat)


def parse_option(text: str) -> tuple[str, Any]:
    """``key=value`` -> ``(key, value)``; the value is read as JSON when it is JSON, else text."""
    key, equals, raw = text.partition("=")
    if not equals or not key:
        raise click.BadParameter(f"{text!r} is not key=value (e.g. -o temperature=0.2)")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


@click.command(
    epilog="Examples:\n\n"
    "  hypotez chat -m gpt-4o-mini 'Name three rivers'\n\n"
    "  echo 'Summarise this' | hypotez chat -m fast -s 'Be brief' -o temperature=0.2 -v",
)
@click.argument("prompt", required=False)
@click.option("-m", "--model", required=True, help="Model name or alias.")
@click.option("-s", "--system", help="A system message sent before the prompt.")
@click.option("--provider", help="Ask this provider only.")
@click.option(
    "-o", "--option", "options", multiple=True, help="An option as key=value (repeatable)."
)
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer.")
@click.option("--timeout", type=float, help="Seconds for the whole call, failover included.")
@click.option("-v", "--verbose", is_flag=True, help="Show who answered and every attempt (stderr).")
@click.pass_obj
def chat(
    registry: Registry,
    prompt: str | None,
    model: str,
    system: str | None,
    provider: str | None,
    options: tuple[str, ...],
    no_stream: bool,
    timeout: float | None,
    verbose: bool,
) -> None:
    """Send PROMPT (or standard input) to MODEL and print the answer as it arrives."""
    if prompt is None or prompt == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give a PROMPT or pipe one on standard input")
        prompt = sys.stdin.read()
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    extra = dict(parse_option(text) for text in options)
    router = Router(registry)
    answered: str | None
    try:
        if no_stream:
            answer = router.complete(model, messages, provider=provider, timeout=timeout, **extra)
            click.echo(answer.text)  # the answer itself is printed as sent, never redacted
            attempts, answered = list(answer.attempts), answer.provider
        else:
            stream = router.stream(model, messages, provider=provider, timeout=timeout, **extra)
            try:
                for chunk in stream:
                    click.echo(chunk.text, nl=False)
                    sys.stdout.flush()
            finally:
                click.echo()
            attempts, answered = stream.attempts, stream.provider
    except InvalidInput as problem:
        raise click.UsageError(redact(str(problem))) from None
    except (AllProvidersFailed, StreamInterrupted, ProviderError) as problem:
        error(str(problem))
        raise click.exceptions.Exit(1) from None
    if verbose:
        _report(answered, attempts)


def _report(answered: str | None, attempts: list[Attempt]) -> None:
    echo(style(f"answered by {answered}", fg="green", stream=sys.stderr), err=True)
    for attempt in attempts:
        colour = {"ok": "green", "failed": "red"}.get(attempt.outcome, "yellow")
        echo(style(f"  {attempt.describe()}", fg=colour, stream=sys.stderr), err=True)
