"""``hypotez chat``: send a prompt, stream the answer to stdout.

Tool calls the model makes are printed as one JSON document; ``--tool`` offers tools,
``--schema`` asks for JSON following a schema, ``-a`` attaches images. Every option is read
and checked before anything is sent: a bad one is a usage error (exit 2) naming it.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import AllProvidersFailed, InvalidInput, ProviderError, StreamInterrupted
from ..options import validate_options
from ..redaction import redact
from ..registry import Registry
from ..results import Attempt
from ..router import Router
from ..tools import ToolCall, ToolCallAssembler
from .output import echo, error, style

#: The name structured output is asked under (OpenAI requires one; the model sees it).
SCHEMA_NAME = "answer"


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


def read_json(text: str, option: str) -> Any:
    """Inline JSON (it starts with ``{`` or ``[``) or the JSON in the file named ``text``."""
    inline = text.lstrip().startswith(("{", "["))
    if inline:
        source, where = text, "the inline value"
    else:
        path = Path(text).expanduser()
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as problem:
            reason = "no such file" if isinstance(problem, FileNotFoundError) else str(problem)
            raise click.BadParameter(
                f"{text!r}: {reason} (give a JSON file, or inline JSON starting with {{ or [)",
                param_hint=option,
            ) from None
        where = str(path)
    try:
        return json.loads(source)
    except ValueError as problem:
        raise click.BadParameter(
            f"{where} is not valid JSON: {problem}", param_hint=option
        ) from None


def read_tools(values: tuple[str, ...]) -> list[Any]:
    """The tools of every ``--tool``: each one tool in OpenAI's shape, or a list of them."""
    tools: list[Any] = []
    for value in values:
        data = read_json(value, "'--tool'")
        tools.extend(data if isinstance(data, list) else [data])
    try:
        validate_options({"tools": tools})
    except InvalidInput as problem:
        raise click.BadParameter(
            f'{redact(str(problem))} (a tool is {{"type": "function", "function": '
            '{"name": ..., "parameters": {...}}})',
            param_hint="'--tool'",
        ) from None
    return tools


def read_schema(value: str) -> dict[str, Any]:
    """``response_format`` asking for JSON that follows the JSON Schema ``value`` names."""
    schema = read_json(value, "'--schema'")
    if not isinstance(schema, dict):
        raise click.BadParameter(
            f'a JSON Schema is an object ({{"type": "object", ...}}), got {type(schema).__name__}',
            param_hint="'--schema'",
        )
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "schema": schema, "strict": True},
    }


def image_url(value: str) -> str:
    """An ``https``/``http`` URL as is; a local image file as a ``data:`` URL with its type."""
    if value.startswith(("https://", "http://")):
        return value
    path = Path(value).expanduser()
    media_type, _ = mimetypes.guess_type(path.name)
    if media_type is None or not media_type.startswith("image/"):
        raise click.BadParameter(
            f"{value!r} is not an image (by its extension: {media_type or 'unknown'}); attach "
            ".png, .jpg, .gif or .webp files, or an https:// URL",
            param_hint="'-a' / '--attach'",
        )
    try:
        data = path.read_bytes()
    except OSError as problem:
        reason = "no such file" if isinstance(problem, FileNotFoundError) else str(problem)
        raise click.BadParameter(f"{value!r}: {reason}", param_hint="'-a' / '--attach'") from None
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def user_message(prompt: str, attachments: tuple[str, ...]) -> dict[str, Any]:
    """The prompt as a user message; with attachments, a text part and one image part each."""
    if not attachments:
        return {"role": "user", "content": prompt}
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    parts += [{"type": "image_url", "image_url": {"url": image_url(a)}} for a in attachments]
    return {"role": "user", "content": parts}


def calls_as_json(calls: tuple[ToolCall, ...] | list[ToolCall]) -> str:
    """The calls as one JSON document: id, name, and the arguments parsed (raw if not JSON)."""
    listed = []
    for call in calls:
        parsed = call.parsed
        arguments = call.arguments if parsed is None and call.arguments != "null" else parsed
        listed.append({"id": call.id, "name": call.name, "arguments": arguments})
    return json.dumps(listed, indent=2, ensure_ascii=False)


@click.command(
    epilog="Examples:\n\n"
    "  hypotez chat -m gpt-4o-mini 'Name three rivers'\n\n"
    "  echo 'Summarise this' | hypotez chat -m fast -s 'Be brief' -o temperature=0.2 -v\n\n"
    "  hypotez chat -m gpt-4o-mini --tool weather.json 'Weather in Paris?'\n\n"
    "  hypotez chat -m gpt-4o-mini --schema '{\"type\": \"object\"}' -a photo.png 'Describe it'",
)
@click.argument("prompt", required=False)
@click.option("-m", "--model", required=True, help="Model name or alias.")
@click.option("-s", "--system", help="A system message sent before the prompt.")
@click.option("--provider", help="Ask this provider only.")
@click.option(
    "-o", "--option", "options", multiple=True, help="An option as key=value (repeatable)."
)
@click.option(
    "--tool",
    "tools",
    multiple=True,
    metavar="FILE_OR_JSON",
    help="Offer a tool (OpenAI's shape), or a list of them; a JSON file or inline (repeatable).",
)
@click.option(
    "--schema",
    metavar="FILE_OR_JSON",
    help="Answer JSON following this JSON Schema (a file or inline).",
)
@click.option(
    "-a",
    "--attach",
    "attachments",
    multiple=True,
    metavar="FILE_OR_URL",
    help="Attach an image: a local file or an https URL (repeatable).",
)
@click.option("--no-stream", is_flag=True, help="Wait for the whole answer.")
@click.option("--timeout", type=float, help="Seconds for the whole call, failover included.")
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show who answered, every attempt, and a finish reason other than stop (stderr).",
)
@click.pass_obj
def chat(
    registry: Registry,
    prompt: str | None,
    model: str,
    system: str | None,
    provider: str | None,
    options: tuple[str, ...],
    tools: tuple[str, ...],
    schema: str | None,
    attachments: tuple[str, ...],
    no_stream: bool,
    timeout: float | None,
    verbose: bool,
) -> None:
    """Send PROMPT (or standard input) to MODEL and print the answer as it arrives.

    Tool calls the model makes are printed as a JSON list of {id, name, arguments}.
    """
    if prompt is None or prompt == "-":
        if sys.stdin.isatty():
            raise click.UsageError("give a PROMPT or pipe one on standard input")
        prompt = sys.stdin.read()
    extra = dict(parse_option(text) for text in options)
    if tools:
        _not_also_an_option(extra, "tools", "--tool")
        extra["tools"] = read_tools(tools)
    if schema is not None:
        _not_also_an_option(extra, "response_format", "--schema")
        extra["response_format"] = read_schema(schema)
    messages = ([{"role": "system", "content": system}] if system else []) + [
        user_message(prompt, attachments)
    ]
    router = Router(registry)
    answered: str | None
    calls: tuple[ToolCall, ...] | list[ToolCall]
    try:
        if no_stream:
            answer = router.complete(model, messages, provider=provider, timeout=timeout, **extra)
            calls, reason = answer.tool_calls, answer.finish_reason
            if answer.text or not calls:
                click.echo(answer.text)  # the answer itself is printed as sent, never redacted
            attempts, answered = list(answer.attempts), answer.provider
        else:
            stream = router.stream(model, messages, provider=provider, timeout=timeout, **extra)
            calls, pieces, reason, printed = [], ToolCallAssembler(), None, False
            try:
                for chunk in stream:
                    if chunk.rescue == "restart":
                        calls, pieces = [], ToolCallAssembler()
                    click.echo(chunk.text, nl=False)
                    sys.stdout.flush()
                    printed = printed or bool(chunk.text)
                    calls.extend(chunk.tool_calls)
                    for delta in chunk.tool_call_deltas:
                        pieces.add(delta)
                    reason = chunk.finish_reason or reason
            finally:
                if printed:
                    click.echo()
            calls = calls or list(pieces.finish())
            if not (printed or calls):
                click.echo()  # an empty answer is still one line
            attempts, answered = stream.attempts, stream.provider
    except InvalidInput as problem:
        raise click.UsageError(redact(str(problem))) from None
    except (AllProvidersFailed, StreamInterrupted, ProviderError) as problem:
        error(str(problem))
        raise click.exceptions.Exit(1) from None
    if calls:
        click.echo(calls_as_json(calls))  # what the model wrote, never redacted
    if verbose:
        _report(answered, attempts, reason)


def _not_also_an_option(extra: dict[str, Any], name: str, option: str) -> None:
    if name in extra:
        raise click.UsageError(f"give {name} either with {option} or with -o {name}=..., not both")


def _report(answered: str | None, attempts: list[Attempt], reason: str | None) -> None:
    echo(style(f"answered by {answered}", fg="green", stream=sys.stderr), err=True)
    if reason not in (None, "stop"):
        echo(style(f"finish reason: {reason}", fg="yellow", stream=sys.stderr), err=True)
    for attempt in attempts:
        colour = {"ok": "green", "failed": "red"}.get(attempt.outcome, "yellow")
        echo(style(f"  {attempt.describe()}", fg=colour, stream=sys.stderr), err=True)
