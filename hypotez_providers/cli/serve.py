"""``hypotez serve``: the router as an OpenAI- and Anthropic-compatible HTTP gateway."""

from __future__ import annotations

import click

from ..registry import Registry
from .output import error


@click.command(
    epilog="Example: hypotez serve --port 4000, then point an OpenAI client at "
    "http://127.0.0.1:4000/v1 (or an Anthropic client at http://127.0.0.1:4000)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=4000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Worker processes (each keeps its own circuits and runs [gateway] max_concurrency "
    "calls at once).",
)
@click.option("--access-log", is_flag=True, help="Log every request on stderr.")
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.pass_obj
def serve(
    registry: Registry, host: str, port: int, workers: int, access_log: bool, log_level: str
) -> None:
    """Serve /v1/chat/completions, /v1/messages and /v1/models over the router."""
    from ..gateway.server import check_exposure, run

    keyed = check_exposure(host, registry)
    if not keyed:
        click.echo(
            f"hypotez: no gateway keys are set, so only this machine may call it ({host})",
            err=True,
        )
    url = f"http://{host}:{port}"

    def ready() -> None:
        click.echo(f"hypotez gateway on {url}", err=True)
        click.echo(f"  OpenAI clients:    base_url={url}/v1", err=True)
        click.echo(f"  Anthropic clients: base_url={url}", err=True)

    try:
        run(
            registry,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=access_log,
            on_ready=ready,
        )
    except SystemExit as stop:
        if stop.code not in (0, None):
            error(f"the gateway stopped (exit {stop.code}); see the messages above")
            raise


def register(cli: click.Group) -> None:
    """Add ``serve`` to the ``hypotez`` command."""
    cli.add_command(serve)
