"""``hypotez check``: which providers work today, measured."""

from __future__ import annotations

import queue
import re
import sys
import threading
import time
from collections.abc import Sequence

import click
from pydantic import BaseModel

from .._deadline import Watch
from ..errors import ProviderError
from ..options import CompletionOptions
from ..provider import Provider
from ..redaction import redact
from ..registry import Registry
from .output import error, print_json, style, table

PROMPT = [{"role": "user", "content": "Reply with the single word OK."}]
#: Name parts that suggest a small (cheap, widely accessible) model, for the default check.
SMALL_MARKERS = ("nano", "mini", "haiku", "small", "8b")
#: How many providers are checked at once.
PARALLEL = 16


class CheckResult(BaseModel):
    """One provider's check: did it answer, how fast, and if not, why."""

    provider: str
    model: str
    outcome: str
    latency: float | None = None
    first_chunk: float | None = None
    error: str | None = None


def register(cli: click.Group) -> None:
    """Add ``check`` to ``cli``."""
    cli.add_command(check)


def smallest_model(models: Sequence[str]) -> str:
    """The model ``check`` probes by default: the first listed whose name suggests a small one.

    A name suggests it when one of its parts (split at ``-``, ``:``, ``.`` and ``_``) is one of
    :data:`SMALL_MARKERS` (``gpt-5-mini``, ``claude-haiku-4-5``, ``llama3.1:8b``); with none,
    the first listed (the provider's own default). A key without access to a flagship model
    should not make its provider look broken.
    """
    for model in models:
        if set(re.split(r"[-:._]", model.lower())) & set(SMALL_MARKERS):
            return model
    return models[0]


def check_provider(provider: Provider, timeout: float, model: str | None = None) -> CheckResult:
    """Send the tiny prompt to ``model`` (default :func:`smallest_model`) and time it."""
    model = model or smallest_model(provider.models)
    if model not in provider.models:
        return CheckResult(
            provider=provider.name,
            model=model,
            outcome="not served",
            error=f"serves {', '.join(provider.models)}",
        )
    if provider.info.needs_auth and not provider.context.api_key:
        return CheckResult(provider=provider.name, model=model, outcome="no key")
    started = time.monotonic()
    first: float | None = None
    watch = Watch(started + timeout, f"--timeout {timeout:g}s")
    context = provider.context.for_attempt(watch)
    options = CompletionOptions(max_tokens=16)
    try:
        for _ in provider.chunks(model, PROMPT, True, options, context=context):
            if first is None:
                first = time.monotonic() - started
    except ProviderError as problem:
        return CheckResult(
            provider=provider.name,
            model=model,
            outcome="failed",
            latency=time.monotonic() - started,
            error=redact(
                f"{type(problem).__name__}: {problem.upstream_message}"
                + (f" (HTTP {problem.status})" if problem.status else ""),
                provider.context.secrets,
            ),
        )
    finally:
        watch.close()
    return CheckResult(
        provider=provider.name,
        model=model,
        outcome="ok",
        latency=time.monotonic() - started,
        first_chunk=first,
    )


@click.command(
    epilog=(
        "Examples:\n\n  hypotez check\n\n  hypotez check openai ollama --timeout 5 --json"
        "\n\n  hypotez check --model gpt-4o-mini"
    )
)
@click.argument("names", nargs=-1, metavar="[PROVIDER]...")
@click.option(
    "--timeout", type=float, default=20.0, show_default=True, help="Seconds per provider."
)
@click.option(
    "-m",
    "--model",
    default=None,
    help="The model to probe (default: each provider's smallest listed model).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(
    registry: Registry,
    names: tuple[str, ...],
    timeout: float,
    model: str | None,
    as_json: bool,
) -> None:
    """Send a tiny prompt to each provider (or those named) at once; report what works.

    Each provider is probed with --model, else with its smallest listed model: the first
    whose name has a part nano, mini, haiku, small or 8b, else its first. With --model and
    no provider named, only the providers serving that model are checked. Ctrl-C stops at once.
    """
    if timeout <= 0:
        raise click.BadParameter("must be positive", param_hint="--timeout")
    chosen = [registry.provider(name) for name in names] or [
        registry.provider(info.name) for info in registry.providers()
    ]
    if model is not None and not names:
        chosen = [provider for provider in chosen if model in provider.models]
        if not chosen:
            raise click.BadParameter(f"no provider serves {model!r}", param_hint="--model")
    results = _run_checks(chosen, timeout, model)
    if as_json:
        print_json([result.model_dump() for result in results])
    else:
        lines = [("PROVIDER", "MODEL", "RESULT", "LATENCY", "FIRST CHUNK", "ERROR")]
        for result in results:
            lines.append(
                (
                    result.provider,
                    result.model,
                    result.outcome,
                    _ms(result.latency),
                    _ms(result.first_chunk),
                    result.error or "",
                )
            )
        table(lines)
    failed = [result.provider for result in results if result.outcome == "failed"]
    if failed:
        error(style(f"not working: {', '.join(failed)}", fg="red", stream=sys.stderr))
        raise click.exceptions.Exit(1)


def _run_checks(chosen: Sequence[Provider], timeout: float, model: str | None) -> list[CheckResult]:
    """Check every provider at once, on daemon threads, so Ctrl-C never waits for one."""
    finished: queue.Queue[tuple[int, CheckResult]] = queue.Queue()
    slots = threading.BoundedSemaphore(PARALLEL)

    def probe(index: int, provider: Provider) -> None:
        with slots:
            finished.put((index, check_provider(provider, timeout, model)))

    for index, provider in enumerate(chosen):
        threading.Thread(target=probe, args=(index, provider), daemon=True).start()
    arrived: list[CheckResult] = []
    done = threading.Event()
    progress = threading.Thread(target=_progress, args=(arrived, len(chosen), done), daemon=True)
    progress.start()
    by_index: dict[int, CheckResult] = {}
    try:
        while len(by_index) < len(chosen):
            # A bounded wait keeps the main thread responsive to Ctrl-C on every platform.
            try:
                index, result = finished.get(timeout=0.1)
            except queue.Empty:
                continue
            by_index[index] = result
            arrived.append(result)
    finally:
        done.set()
    progress.join()
    return [by_index[index] for index in range(len(chosen))]


def _progress(results: list[CheckResult], total: int, done: threading.Event) -> None:
    """A live line on a terminal's stderr: how many providers have answered."""
    if not sys.stderr.isatty():
        return
    spinner = "|/-\\"
    turn = 0
    while not done.wait(0.1):
        sys.stderr.write(f"\rchecking {len(results)}/{total} {spinner[turn % 4]}")
        sys.stderr.flush()
        turn += 1
    sys.stderr.write("\r" + " " * 30 + "\r")
    sys.stderr.flush()


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"
