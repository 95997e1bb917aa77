"""``hypotez chat``: send a prompt, stream the answer to stdout.

The prompt is the argument, piped standard input, or both (the argument, a blank line, then
the piped text, as simonw's llm joins them). ``-m`` defaults to the settings' ``default_model``,
else to the model of a running ``hypotez fake`` the provider is pointed at;
``-c``/``--cid`` carry on a conversation from the local log, where every call is recorded.
With no prompt and a terminal on standard input, each line typed is the next turn of one
conversation until ``exit``, ``quit``, EOF or Ctrl-C.

Tool calls the model makes are printed as one JSON document; ``--tool`` offers tools,
``--schema`` asks for JSON following a schema, ``-a`` attaches images. Every option is read
and checked before anything is sent: a bad one is a usage error (exit 2) naming it.
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import stat
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..errors import AllProvidersFailed, InvalidInput, ProviderError, StreamInterrupted
from ..options import validate_options
from ..redaction import redact
from ..registry import Registry
from ..results import Attempt, Usage
from ..router import Router
from ..tools import ToolCall, ToolCallAssembler
from ._fake_announcement import serving_fake
from .logs import LoggedCall, conversation_so_far, record
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
    "  cat notes.txt | hypotez chat 'Summarise this'   (the prompt, a blank line, the notes)\n\n"
    "  hypotez chat -c 'And the longest?'   (carries on the last conversation)\n\n"
    "  hypotez chat -m gpt-4o-mini --tool weather.json 'Weather in Paris?'\n\n"
    "  hypotez chat -m gpt-4o-mini --schema '{\"type\": \"object\"}' -a photo.png 'Describe it'",
)
@click.argument("prompt", required=False)
@click.option(
    "-m",
    "--model",
    help="Model name or alias (default: the settings' default_model, else a running hypotez "
    "fake's model).",
)
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
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds for the whole call, failover included (more than 0).",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show who answered, every attempt, and a finish reason other than stop (stderr).",
)
@click.option(
    "-u", "--usage", "show_usage", is_flag=True, help="Show token usage and finish reason (stderr)."
)
@click.option(
    "-c",
    "--continue",
    "continue_",
    is_flag=True,
    help="Carry on the last conversation in the log.",
)
@click.option("--cid", help="Carry on this conversation (an id from hypotez logs).")
@click.option("--no-log", is_flag=True, help="Do not record this call in the log.")
@click.pass_obj
def chat(
    registry: Registry,
    prompt: str | None,
    model: str | None,
    system: str | None,
    provider: str | None,
    options: tuple[str, ...],
    tools: tuple[str, ...],
    schema: str | None,
    attachments: tuple[str, ...],
    no_stream: bool,
    timeout: float | None,
    verbose: bool,
    show_usage: bool,
    continue_: bool,
    cid: str | None,
    no_log: bool,
) -> None:
    """Send PROMPT to MODEL and print the answer as it arrives.

    Piped standard input is sent too: after PROMPT and a blank line when both are given, as
    llm does, or alone. Tool calls the model makes are printed as a JSON list of
    {id, name, arguments}. With no PROMPT and standard input a terminal, each line typed
    (after "> " on stderr) is the next turn of one conversation; exit, quit, Ctrl-D or
    Ctrl-C end it. Every call is recorded in the local log (see hypotez logs) unless
    --no-log or [logs] enabled = false.
    """
    interactive = prompt is None and _stdin_is_a_terminal()
    prompt = None if interactive else _prompt_text(prompt)
    model = model or registry.settings.default_model
    if not model:
        model, provider = _the_fakes_model(registry, provider)
    extra = dict(parse_option(text) for text in options)
    if tools:
        _not_also_an_option(extra, "tools", "--tool")
        extra["tools"] = read_tools(tools)
    if schema is not None:
        _not_also_an_option(extra, "response_format", "--schema")
        extra["response_format"] = read_schema(schema)
    history: list[dict[str, Any]] = []
    conversation = uuid.uuid4().hex
    if continue_ or cid:
        conversation, history = conversation_so_far(cid)
    if system and not any(message.get("role") == "system" for message in history):
        history.insert(0, {"role": "system", "content": system})
    turns = _Conversation(
        registry=registry,
        model=model,
        provider=provider,
        timeout=timeout,
        extra=extra,
        no_stream=no_stream,
        verbose=verbose,
        show_usage=show_usage,
        log=registry.settings.logs.enabled and not no_log,
        conversation=conversation,
    )
    if prompt is None:
        _repl(turns, history, attachments)
    else:
        turns.send(prompt, [*history, user_message(prompt, attachments)])


def _the_fakes_model(registry: Registry, provider: str | None) -> tuple[str, str]:
    """The model and provider of the live ``hypotez fake`` (noted on stderr), else exit 2."""
    fake = serving_fake(registry)
    if fake is None or provider not in (None, fake.provider):
        raise click.UsageError(
            "no model: give -m/--model MODEL, or set a default with hypotez models default "
            "MODEL; or, for something that answers with no key, run hypotez fake in another "
            "terminal"
        )
    echo(f"hypotez: no model named and no default: asking {fake.model} (the fake's)", err=True)
    return fake.model, fake.provider


def _stdin_is_a_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (OSError, ValueError, AttributeError):
        return False


def _repl(
    turns: _Conversation, history: list[dict[str, Any]], attachments: tuple[str, ...]
) -> None:
    """Read lines from the terminal, each the next turn, until exit, quit, EOF or Ctrl-C."""
    echo("Type a message and press Enter; exit, quit or Ctrl-D ends the chat.", err=True)
    while True:
        try:
            echo("> ", nl=False, err=True)
            line = sys.stdin.readline()
            if not line or line.strip() in ("exit", "quit"):
                return
            if not line.strip():
                continue
            text = line.rstrip("\n")
            messages = [*history, user_message(text, attachments)]
            attachments = ()  # attached to the first turn only
            try:
                answer = turns.send(text, messages)
            except click.exceptions.Exit:
                continue  # the error is shown and logged; the conversation goes on without it
            except click.ClickException as problem:
                problem.show()  # bad input for this turn only; the next line may be fine
                continue
            history = [*messages, {"role": "assistant", "content": answer}]
        except KeyboardInterrupt:
            echo(err=True)
            return


@dataclass(frozen=True)
class _Conversation:
    """What stays the same for every turn of one ``hypotez chat``: where and how it is sent."""

    registry: Registry
    model: str
    provider: str | None
    timeout: float | None
    extra: dict[str, Any]
    no_stream: bool
    verbose: bool
    show_usage: bool
    log: bool
    conversation: str

    def send(self, prompt: str, messages: list[dict[str, Any]]) -> str:
        """Send ``messages``, print the answer, record the call; return the answer as logged.

        A provider failure is shown, recorded as failed, and raised as exit status 1.
        """
        registry, model, provider = self.registry, self.model, self.provider
        timeout, extra, no_stream, conversation = (
            self.timeout,
            self.extra,
            self.no_stream,
            self.conversation,
        )
        router = Router(registry)
        answered: str | None
        usage: Usage | None
        parts: list[str]
        calls: tuple[ToolCall, ...] | list[ToolCall]
        started = time.monotonic()
        stream: Any = None
        try:
            if no_stream:
                answer = router.complete(
                    model, messages, provider=provider, timeout=timeout, **extra
                )
                calls, reason, usage = answer.tool_calls, answer.finish_reason, answer.usage
                text = answer.text
                if answer.text or not calls:
                    click.echo(answer.text)  # the answer itself is printed as sent, never redacted
                attempts, answered = list(answer.attempts), answer.provider
            else:
                stream = router.stream(model, messages, provider=provider, timeout=timeout, **extra)
                calls, pieces, reason, printed = [], ToolCallAssembler(), None, False
                usage, parts = None, []
                try:
                    for chunk in stream:
                        if chunk.rescue == "restart":
                            calls, pieces, parts = [], ToolCallAssembler(), []
                        click.echo(chunk.text, nl=False)
                        sys.stdout.flush()
                        parts.append(chunk.text)
                        printed = printed or bool(chunk.text)
                        calls.extend(chunk.tool_calls)
                        for delta in chunk.tool_call_deltas:
                            pieces.add(delta)
                        reason = chunk.finish_reason or reason
                        usage = chunk.usage or usage
                finally:
                    if printed:
                        click.echo()
                calls = calls or list(pieces.finish())
                if not (printed or calls):
                    click.echo()  # an empty answer is still one line
                text = "".join(parts)
                attempts, answered = stream.attempts, stream.provider
        except InvalidInput as problem:
            raise click.UsageError(redact(str(problem))) from None
        except (AllProvidersFailed, StreamInterrupted, ProviderError) as problem:
            error(str(problem))
            if self.log:
                failed = LoggedCall(
                    conversation_id=conversation,
                    model=model,
                    provider=problem.provider if isinstance(problem, StreamInterrupted) else None,
                    prompt=prompt,
                    messages=messages,
                    answer=problem.text if isinstance(problem, StreamInterrupted) else "",
                    attempts=_attempts_of(problem, stream),
                    latency=time.monotonic() - started,
                    usage=None,
                    finish_reason=None,
                    outcome="failed",
                    error_kind=type(problem).__name__,
                    error_message=str(problem),
                )
                record(failed, _keys(registry))
            raise click.exceptions.Exit(1) from None
        latency = time.monotonic() - started
        if calls:
            click.echo(calls_as_json(calls))  # what the model wrote, never redacted
        if self.verbose:
            _report(answered, attempts, reason)
        if self.show_usage:
            _report_usage(usage, reason)
        logged = text if not calls else text + calls_as_json(calls)
        if self.log:
            call = LoggedCall(
                conversation_id=conversation,
                model=model,
                provider=answered,
                prompt=prompt,
                messages=messages,
                answer=logged,
                attempts=attempts,
                latency=latency,
                usage=usage,
                finish_reason=reason,
            )
            record(call, _keys(registry))
        return logged


def _prompt_text(prompt: str | None) -> str:
    """The prompt argument and piped standard input, joined as llm does; never empty."""
    if prompt == "-":
        prompt = None
    piped = _piped_stdin()
    if prompt is None and piped is None:
        raise click.UsageError("give a PROMPT or pipe one on standard input")
    text = "\n\n".join(part for part in (prompt, piped) if part)
    if not text.strip():
        raise click.UsageError("the prompt is empty: give a PROMPT or pipe some text")
    return text


def _piped_stdin() -> str | None:
    """What is piped or redirected in, if anything; a terminal or /dev/null gives ``None``."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return None
    # A terminal or a character device (/dev/null) has nothing to send; waiting would hang.
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)):
        return None
    return sys.stdin.read()


def _attempts_of(problem: Exception, stream: Any) -> list[Attempt]:
    """Every attempt of a failed call: the error's own list, else the stream's, if any."""
    if isinstance(problem, AllProvidersFailed):
        return [a for a in problem.attempts if isinstance(a, Attempt)]
    return list(getattr(stream, "attempts", None) or [])


def _keys(registry: Registry) -> list[str | None]:
    return [provider.settings.api_key_value for provider in registry.by_name.values()]


def _report_usage(usage: Usage | None, reason: str | None) -> None:
    tokens = (
        f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion = "
        f"{usage.total_tokens} tokens"
        if usage
        else "not reported"
    )
    echo(f"usage: {tokens}; finish reason: {reason or 'unknown'}", err=True)


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
