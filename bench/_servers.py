"""The processes bench/gateway.py measures: the fake upstreams, ``hypotez serve``, LiteLLM's proxy.

Each runs in its own process on 127.0.0.1 (the benchmark's client must not share their GIL);
:func:`cpu_seconds` reads what a process and its children have spent from ``/proc``.
"""

from __future__ import annotations

import json
import os
import shutil
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

BENCH = Path(__file__).resolve().parent
#: The model the whole-answer workloads ask for, and the one routed to the long stream.
MODEL = "bench-model"
STREAM_MODEL = "bench-stream"


@dataclass
class Server:
    """A server process: its base URL and the process."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        """The process and its children (gunicorn's workers, uvicorn's)."""
        return [self.process.pid, *_children(self.process.pid)]


def quiet_environ(home: Path, **extra: str) -> dict[str, str]:
    """Our environment minus proxies, provider keys and user settings."""
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HYPOTEZ_", "OPENAI_", "ANTHROPIC_", "OLLAMA_"))
        and "PROXY" not in name.upper()
    }
    environ.update(HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), NO_PROXY="*")
    environ.update(extra)
    return environ


@contextmanager
def upstreams() -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """bench/upstream.py's fakes in their own process: their URLs and the process.

    Their accept queue is made 128 deep, as a real server's is: Python's default of 5 drops
    some of a burst of 64 connects, and the gateway opens a connection per stream.
    """
    start = (
        "import runpy, socketserver\n"
        "socketserver.TCPServer.request_queue_size = 128\n"
        f"runpy.run_path({str(BENCH / 'upstream.py')!r}, run_name='__main__')\n"
    )
    process = subprocess.Popen([sys.executable, "-c", start], stdout=subprocess.PIPE, text=True)
    try:
        urls = json.loads(process.stdout.readline()) if process.stdout else {}
        yield urls, process
    finally:
        process.kill()
        process.wait()


def gateway_settings(urls: dict[str, str]) -> str:
    """A settings file for ``hypotez serve``: one endpoint per fake, no keys."""
    return (
        f'[endpoints.fast]\nbase_url = "{urls["fast"]}/v1"\nmodels = ["{MODEL}"]\n'
        "include_usage = false\n\n"
        f'[endpoints.stream]\nbase_url = "{urls["stream"]}/v1"\nmodels = ["{STREAM_MODEL}"]\n'
        "include_usage = false\n"
    )


@contextmanager
def gateway(urls: dict[str, str], workers: int, home: Path) -> Iterator[Server]:
    """``hypotez serve --workers N`` on a free loopback port, until the block ends."""
    settings = home / "gateway.toml"
    settings.write_text(gateway_settings(urls))
    port = free_port()
    command = [sys.executable, "-m", "hypotez_providers", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    environ = quiet_environ(home, HYPOTEZ_CONFIG=str(settings))
    with _running(command, environ, home / f"gateway-{workers}.log") as process:
        server = Server(f"gateway, {workers} worker{'s' * (workers > 1)}", "", process)
        server.url = f"http://127.0.0.1:{port}"
        _wait_until_up(server, "/health", 30)
        while len(server.pids()) < workers + 1:  # the workers are forked after /health answers
            time.sleep(0.05)
        yield server


def find_litellm(explicit: str | None) -> str | None:
    """The ``litellm`` command (its proxy's CLI): ``--litellm PATH`` or on ``PATH``."""
    if explicit:
        return explicit
    return shutil.which("litellm")


@contextmanager
def litellm_proxy(command: str, urls: dict[str, str], home: Path, key: str) -> Iterator[Server]:
    """LiteLLM's proxy with one OpenAI-compatible model on the same fake upstream.

    ``key`` is its master key (it refuses to start without one); clients send it as a bearer.
    """
    config = home / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {urls['fast']}/v1\n"
        "      api_key: bench\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        # The benchmark's streams repeat one piece; LiteLLM aborts such streams by default.
        "  REPEATED_STREAMING_CHUNK_LIMIT: 1000000\n"
    )
    port = free_port()
    environ = quiet_environ(
        home,
        LITELLM_LOCAL_MODEL_COST_MAP="True",  # otherwise it fetches its price list on start
        LITELLM_LOG="ERROR",
        LITELLM_MASTER_KEY=key,
    )
    args = [command, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    with _running(args, environ, home / "litellm.log") as process:
        server = Server("LiteLLM proxy", f"http://127.0.0.1:{port}", process)
        _wait_until_up(server, "/health/liveliness", 120)
        yield server


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU seconds the processes have spent so far (0 where unreadable)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / ticks


@contextmanager
def _running(
    command: list[str], environ: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=environ, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield process
    except BaseException:
        print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
        raise
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(server: Server, path: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited early (exit {server.process.returncode})")
        try:
            if requests.get(server.url + path, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} did not answer {path} within {seconds:.0f} s")


def _children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(child) for child in found]
