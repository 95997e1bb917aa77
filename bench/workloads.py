"""The benchmark's workloads: each returns samples for its contenders, measured interleaved."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import requests

from hypotez_providers import Registry, Router
from hypotez_providers.settings import EndpointSettings, Settings
from hypotez_providers.testing import closed_port_url

MODEL = "bench-model"
MESSAGES = [{"role": "user", "content": "What is the answer?"}]
#: The large conversation: 200 messages, about 1 MB of JSON (non-ASCII text included).
LARGE_MESSAGES = [
    {
        "role": "user" if turn % 2 == 0 else "assistant",
        "content": f"Turn {turn}: " + "a sentence with an accent, déjà vu; " * 140,
    }
    for turn in range(200)
]
#: Raw calls carry the same timeouts as the providers' defaults: a production call has one.
TIMEOUT = (10.0, 60.0)


@dataclass
class Samples:
    """Per-repeat measurements of one contender (unit given by the workload)."""

    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median sample."""
        return statistics.median(self.values)

    @property
    def spread(self) -> tuple[float, float]:
        """The smallest and largest sample."""
        return min(self.values), max(self.values)


def registry_for(urls: dict[str, str]) -> Registry:
    """Endpoints on the fake upstreams, plus aliases fixing each workload's route."""

    def endpoint(url: str) -> EndpointSettings:
        return EndpointSettings(base_url=url + "/v1", models=(MODEL,), include_usage=False)

    settings = Settings(
        endpoints={
            "fast": endpoint(urls["fast"]),
            "stream": endpoint(urls["stream"]),
            "failing": endpoint(urls["failing"]),
            "short": endpoint(urls.get("short", urls["stream"])),
            "refusing": endpoint(closed_port_url()),
        },
        aliases={
            "only-fast": ("fast:" + MODEL,),
            "only-stream": ("stream:" + MODEL,),
            "only-short": ("short:" + MODEL,),
            "refusing-first": ("refusing:" + MODEL, "fast:" + MODEL),
            "failing-first": ("failing:" + MODEL, "fast:" + MODEL),
        },
    )
    return Registry(settings=settings, load_entry_points=False, environ={})


def raw_call(session: requests.Session, url: str, messages: list[dict[str, str]] = MESSAGES) -> str:
    """The floor: one POST with requests, the answer's text read out."""
    response = session.post(
        url + "/v1/chat/completions", json={"model": MODEL, "messages": messages}, timeout=TIMEOUT
    )
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def raw_stream(session: requests.Session, url: str) -> int:
    """The floor for streams: requests' iter_lines, json.loads of each data line, to [DONE]."""
    count = 0
    payload = {"model": MODEL, "messages": MESSAGES, "stream": True}
    with session.post(
        url + "/v1/chat/completions", json=payload, stream=True, timeout=TIMEOUT
    ) as r:
        for line in r.iter_lines():
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                break
            delta = json.loads(data)["choices"]
            if delta and delta[0]["delta"].get("content"):
                count += 1
    return count


def per_call(
    contenders: dict[str, Callable[[], object]], calls: int, repeats: int
) -> dict[str, Samples]:
    """Microseconds per call for each contender, repeats interleaved (A B C A B C ...)."""
    for call in contenders.values():
        for _ in range(max(10, calls // 10)):
            call()
    samples = {name: Samples() for name in contenders}
    for _ in range(repeats):
        for name, call in contenders.items():
            started = time.perf_counter()
            for _ in range(calls):
                call()
            samples[name].values.append((time.perf_counter() - started) / calls * 1e6)
    return samples


def streaming(contenders: dict[str, Callable[[], int]], repeats: int) -> dict[str, Samples]:
    """Chunks per second for each contender reading the 10,000-chunk answer."""
    samples = {name: Samples() for name in contenders}
    for call in contenders.values():
        call()
    for _ in range(repeats):
        for name, call in contenders.items():
            started = time.perf_counter()
            chunks = call()
            samples[name].values.append(chunks / (time.perf_counter() - started))
    return samples


def failover(registry: Registry, calls: int, repeats: int) -> dict[str, Samples]:
    """Milliseconds per call: healthy only, after a refusal, after a 503, past an open circuit."""

    def fresh(model: str, **options: object) -> Callable[[], object]:
        # A new Router each call: its health is empty, so the failure really happens.
        return lambda: Router(registry).complete(model, MESSAGES, **options)

    tripped = Router(registry)
    tripped.complete("refusing-first", MESSAGES)  # opens the refusing provider's circuit
    contenders: dict[str, Callable[[], object]] = {
        "healthy only": fresh("only-fast"),
        "first refuses": fresh("refusing-first"),
        "first returns 503": fresh("failing-first", max_attempts=1),
        "first's circuit open": lambda: tripped.complete("refusing-first", MESSAGES),
    }
    samples = per_call(contenders, calls, repeats)
    for value in samples.values():
        value.values = [micro / 1000 for micro in value.values]
    return samples


def concurrency(
    contenders: dict[str, Callable[[], object]], threads: int, calls: int, repeats: int
) -> dict[str, Samples]:
    """Calls per second with ``threads`` threads each making ``calls`` calls."""
    samples = {name: Samples() for name in contenders}

    def run(call: Callable[[], object]) -> float:
        failures: list[Exception] = []

        def worker() -> None:
            try:
                for _ in range(calls):
                    call()
            except Exception as error:  # noqa: BLE001 - a figure from fewer calls is wrong
                failures.append(error)

        pool = [threading.Thread(target=worker) for _ in range(threads)]
        started = time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if failures:
            raise RuntimeError(f"{len(failures)} of {threads} threads failed") from failures[0]
        return threads * calls / (time.perf_counter() - started)

    for call in contenders.values():
        run(call)
    for _ in range(repeats):
        for name, call in contenders.items():
            samples[name].values.append(run(call))
    return samples


def concurrent_streams(
    contenders: dict[str, Callable[[], int]], streams: int, repeats: int
) -> dict[str, tuple[Samples, Samples]]:
    """``streams`` streams read at once, each by its own thread: (chunks/s, client CPU µs a chunk).

    The CPU is this process's (every thread's), so the upstream's own work is not in it.
    """
    results = {name: (Samples(), Samples()) for name in contenders}

    def run(call: Callable[[], int]) -> tuple[float, float]:
        counts = [0] * streams

        failures: list[Exception] = []

        def worker(index: int) -> None:
            try:
                counts[index] = call()
            except Exception as error:  # noqa: BLE001 - a figure from fewer streams is wrong
                failures.append(error)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(streams)]
        cpu, wall = time.process_time(), time.perf_counter()
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if failures:
            raise RuntimeError(f"{len(failures)} of {streams} streams failed") from failures[0]
        chunks = sum(counts)
        return chunks / wall, cpu / max(chunks, 1) * 1e6

    for call in contenders.values():
        run(call)
    for _ in range(repeats):
        for name, call in contenders.items():
            rate, cpu = run(call)
            results[name][0].values.append(rate)
            results[name][1].values.append(cpu)
    return results


def import_cost(statements: dict[str, str], repeats: int) -> dict[str, tuple[Samples, Samples]]:
    """Seconds to import, and peak memory (MiB), each in a fresh interpreter."""
    # ru_maxrss survives exec (it would report the forking parent's peak); VmHWM does not.
    probe = (
        "import resource, time\nstarted = time.perf_counter()\n{statement}\n"
        "elapsed = time.perf_counter() - started\n"
        "try:\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    peak = int(next(l for l in lines if l.startswith('VmHWM')).split()[1]) / 1024\n"
        "except OSError:\n"
        "    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(elapsed, peak)"
    )
    results = {name: (Samples(), Samples()) for name in statements}
    # Bytecode cached, as after a pip install (which compiles it): with PYTHONDONTWRITEBYTECODE
    # set, the checkout's modules would be compiled from source on every run, and the floor's
    # installed ones would not. The cache goes to a directory of its own, warmed by a first run.
    with tempfile.TemporaryDirectory() as cache:
        environ = {
            **{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
            "PYTHONPYCACHEPREFIX": cache,
        }
        for warming in [True] + [False] * repeats:
            for name, statement in statements.items():
                output = subprocess.run(
                    [sys.executable, "-c", probe.format(statement=statement)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=environ,
                ).stdout.split()
                if not warming:
                    results[name][0].values.append(float(output[0]))
                    results[name][1].values.append(float(output[1]))
    return results
