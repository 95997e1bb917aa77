"""Start ``hypotez serve`` as a real process on 127.0.0.1 for the gateway tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from hypotez_providers.testing.server import free_port


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def clean_environ(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment minus anything that could reach a real provider or a user's settings."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HYPOTEZ_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
        and "PROXY" not in name.upper()
    }
    environ.update(HOME=str(tmp), XDG_CONFIG_HOME=str(tmp / "config"), NO_PROXY="*")
    environ.update(extra)
    return environ


@contextmanager
def running_gateway(
    tmp: Path, config: str, *, args: tuple[str, ...] = (), **environ: str
) -> Iterator[Gateway]:
    """``hypotez serve`` with ``config`` as its settings file, until the block ends."""
    settings = tmp / "gateway.toml"
    settings.write_text(config)
    port = free_port()
    log = tmp / f"gateway-{port}.log"
    env = clean_environ(tmp, HYPOTEZ_CONFIG=str(settings), **environ)
    command = [sys.executable, "-m", "hypotez_providers", "serve", "--port", str(port), *args]
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    gateway = Gateway(f"http://127.0.0.1:{port}", process, log)
    try:
        _wait_until_up(gateway)
        yield gateway
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # a quick stop: graceful is tested on its own
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(gateway: Gateway) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if gateway.process.poll() is not None:
            raise AssertionError(f"the gateway exited early:\n{gateway.log_text()}")
        try:
            if requests.get(gateway.url + "/health", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the gateway did not come up in 30 s:\n{gateway.log_text()}")
