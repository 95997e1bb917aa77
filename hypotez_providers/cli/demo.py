"""``hypotez demo``: the main job with no keys and no network."""

from __future__ import annotations

import sys
from contextlib import ExitStack

import click

from ..errors import HypotezError
from ..registry import Registry
from ..router import Router
from ..settings import EndpointSettings, RetryPolicy, Settings
from .output import style

MODEL = "demo-model"
ROUTE = ("refusing", "limited", "healthy")


@click.command(epilog="Example: hypotez demo")
def demo() -> None:
    """Route real calls across three local fake upstreams: refusing, rate-limited, healthy.

    Starts the upstreams on 127.0.0.1, declares them as OpenAI-compatible endpoints, and
    sends several calls (streamed and not) through the real Router, showing which provider
    answered each and why. Needs no key and no network.
    """
    from ..testing import FakeOpenAI, Fault, closed_port_url

    with ExitStack() as stack:
        healthy = stack.enter_context(FakeOpenAI(models=None, reply="Hello from the healthy one."))
        limited = stack.enter_context(FakeOpenAI(models=None))
        limited.fail_every_request = Fault(status=429, headers={"Retry-After": "0"})
        urls = {"refusing": closed_port_url(), "limited": limited.url, "healthy": healthy.url}
        settings = Settings(
            endpoints={
                name: EndpointSettings(base_url=url + "/v1", models=(MODEL,))
                for name, url in urls.items()
            },
            routes={MODEL: ROUTE},
            retry=RetryPolicy(attempts=2, initial_backoff=0.05, jitter=0.0),
        )
        router = Router(Registry(settings=settings, load_entry_points=False, environ={}))
        _say("Three local upstreams, tried in this order for model 'demo-model':")
        for name in ROUTE:
            _say(f"  {name:<9} {urls[name]}")
        calls = [
            ("non-streamed", False, "What is a router?"),
            ("streamed", True, "Say hello."),
            ("streamed", True, "And once more."),
        ]
        for number, (kind, streamed, prompt) in enumerate(calls, start=1):
            _say(f"\nCall {number} ({kind}): {prompt}")
            messages = [{"role": "user", "content": prompt}]
            try:
                if streamed:
                    stream = router.stream(MODEL, messages)
                    click.echo("  answer: ", nl=False)
                    for chunk in stream:
                        click.echo(chunk.text, nl=False)
                        sys.stdout.flush()
                    click.echo()
                    attempts, answered = stream.attempts, stream.provider
                else:
                    answer = router.complete(MODEL, messages)
                    click.echo(f"  answer: {answer.text}")
                    attempts, answered = list(answer.attempts), answer.provider
            except HypotezError as problem:
                click.echo(f"  failed: {problem}")
                raise click.exceptions.Exit(1) from None
            click.echo(f"  answered by {style(str(answered), fg='green')}, after:")
            for attempt in attempts:
                click.echo(f"    {attempt.describe()}")
        _say("\nHealth after the calls:")
        for health in router.health():
            click.echo(
                f"  {health.provider:<9} {health.state.value:<9} "
                f"successes={health.successes} failures={health.failures}"
            )


def _say(text: str) -> None:
    click.echo(text)


def register(cli: click.Group) -> None:
    """Add ``demo`` to ``cli``."""
    cli.add_command(demo)
