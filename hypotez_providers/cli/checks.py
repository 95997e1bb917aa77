"""``hypotez check``: which providers work today, measured."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

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


def check_provider(provider: Provider, timeout: float) -> CheckResult:
    """Send the tiny prompt to ``provider``'s first model and time it."""
    model = provider.models[0]
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
    epilog="Examples:\n\n  hypotez check\n\n  hypotez check openai ollama --timeout 5 --json"
)
@click.argument("names", nargs=-1, metavar="[PROVIDER]...")
@click.option(
    "--timeout", type=float, default=20.0, show_default=True, help="Seconds per provider."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check(registry: Registry, names: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Send a tiny prompt to each provider (or those named) at once; report what works."""
    chosen = [registry.provider(name) for name in names] or [
        registry.provider(info.name) for info in registry.providers()
    ]
    results: list[CheckResult] = []
    done = threading.Event()
    progress = threading.Thread(target=_progress, args=(results, len(chosen), done), daemon=True)
    progress.start()
    with ThreadPoolExecutor(max_workers=max(1, min(16, len(chosen)))) as pool:
        for result in pool.map(lambda provider: check_provider(provider, timeout), chosen):
            results.append(result)
    done.set()
    progress.join()
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
