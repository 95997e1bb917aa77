"""Benchmark: the router's cost against a raw requests call, side by side in one run.

    python3 bench/run.py            # about two minutes
    python3 bench/run.py --quick    # a smoke run of some seconds

Every figure is a ratio of medians measured in the same run, contenders interleaved, against
fake upstreams on 127.0.0.1 in their own process. Targets come from issue 6; they are never
asserted in the test suite.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _scale
import workloads
from workloads import LARGE_MESSAGES, MESSAGES, MODEL, Samples

PLUGINS = (
    "import hypotez_providers, hypotez_gravityengine, hypotez_openai, hypotez_anthropic, "
    "hypotez_ollama"
)


def main() -> int:
    """Run every workload and print the table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args()
    repeats, calls = (2, 30) if arguments.quick else (7, 300)
    print(machine())
    upstream = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "upstream.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(upstream.stdout.readline()) if upstream.stdout else {}
        rows = measure(urls, repeats, calls, arguments.quick)
    finally:
        upstream.kill()
    print_table(rows)
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


def measure(urls: dict[str, str], repeats: int, calls: int, quick: bool) -> list[dict[str, Any]]:
    """All workloads; one row per contender."""
    registry = workloads.registry_for(urls)
    router = Router_(registry)
    direct = registry.provider("fast")
    session = requests.Session()
    rows: list[dict[str, Any]] = []

    single = workloads.per_call(
        {
            "raw requests": lambda: workloads.raw_call(session, urls["fast"]),
            "Router.complete": lambda: router.complete("only-fast", MESSAGES),
            "direct provider call": lambda: direct.complete(MODEL, MESSAGES),
            **optional_clients(urls["fast"]),
        },
        calls,
        repeats,
    )
    rows += ratio_rows(
        "per call, non-streaming",
        single,
        "raw requests",
        "µs",
        lower_is_better=True,
        targets={"Router.complete": 0.90},
    )

    streams = workloads.streaming(
        {
            **optional_streams(urls["stream"]),
            "raw requests SSE": lambda: workloads.raw_stream(session, urls["stream"]),
            "Router.stream": lambda: sum(
                1 for c in router.stream("only-stream", MESSAGES) if c.text
            ),
        },
        repeats,
    )
    rows += ratio_rows(
        "stream, 10,000 chunks",
        streams,
        "raw requests SSE",
        "chunks/s",
        lower_is_better=False,
        targets={"Router.stream": 1.5},
    )

    large = workloads.per_call(
        {
            "raw requests": lambda: workloads.raw_call(session, urls["fast"], LARGE_MESSAGES),
            "Router.complete": lambda: router.complete("only-fast", LARGE_MESSAGES),
        },
        max(5, calls // 10),
        repeats,
    )
    rows += ratio_rows(
        "large conversation (200 messages, 1 MB)",
        large,
        "raw requests",
        "µs",
        lower_is_better=True,
        targets={"Router.complete": 0.9},
    )

    failing = workloads.failover(registry, max(10, calls // 5), repeats)
    base = failing["healthy only"].median
    for name, samples in failing.items():
        target = {"first refuses": 2.0, "first's circuit open": 0.1}.get(name)
        added = samples.median - base
        rows.append(
            row(
                "failover: added latency",
                name,
                samples,
                "ms",
                ratio=None,
                extra=f"+{added:.3f} ms" if name != "healthy only" else "",
                target=f"≤ +{target} ms" if target else "",
                met=(added <= target) if target else None,
            )
        )

    rows += concurrency_rows(router, session, urls, repeats, calls)

    imports = workloads.import_cost(
        {
            "import requests, pydantic": "import requests, pydantic",
            "... + from pydantic import BaseModel": (
                "import requests, pydantic\nfrom pydantic import BaseModel"
            ),
            "hypotez_providers + 4 plugins": PLUGINS,
            "hypotez: Router + Registry": "from hypotez_providers import Registry, Router",
        },
        3 if quick else 7,
    )
    floor = imports["import requests, pydantic"][0].median
    for name, (seconds, memory) in imports.items():
        ratio = seconds.median / floor
        target = 1.5 if name.startswith("hypotez") else None
        rows.append(
            row(
                "import time (peak RSS)",
                name,
                seconds,
                "s",
                ratio=ratio,
                extra=f"{memory.median:.0f} MiB",
                target="≤ 1.50×" if target else "",
                met=(ratio <= target) if target else None,
            )
        )
    rows += scale_rows(urls["fast"], repeats, calls, quick)
    return rows


def concurrency_rows(
    router: Any, session: requests.Session, urls: dict[str, str], repeats: int, calls: int
) -> list[dict[str, Any]]:
    """One Router shared by 1, 4, 16 and 64 threads against one shared requests session, and
    64 streams at once with the client's CPU per chunk (issue 15 item 4)."""
    rows: list[dict[str, Any]] = []
    for count in (1, 4, 16, 64):
        threads = workloads.concurrency(
            {
                "raw requests, shared session": lambda: workloads.raw_call(session, urls["fast"]),
                "Router, shared": lambda: router.complete("only-fast", MESSAGES),
            },
            count,
            max(5, calls // max(count // 4, 1)),
            repeats,
        )
        rows += ratio_rows(
            "1 thread" if count == 1 else f"{count} threads",
            threads,
            "raw requests, shared session",
            "calls/s",
            lower_is_better=False,
            targets={"Router, shared": 1.0} if count >= 16 else {},
        )
    short = urls.get("short", urls["stream"])
    many = workloads.concurrent_streams(
        {
            "raw requests SSE, shared session": lambda: workloads.raw_stream(session, short),
            "Router.stream, shared": lambda: sum(
                1 for c in router.stream("only-short", MESSAGES) if c.text
            ),
        },
        64,
        repeats,
    )
    floor_rate, floor_cpu = many["raw requests SSE, shared session"]
    for name, (rate, cpu) in many.items():
        ratio = cpu.median / floor_cpu.median
        target = None if name.startswith("raw") else 1.0
        rows.append(
            row(
                "64 streams × 1,000 chunks: client CPU a chunk",
                name,
                cpu,
                "µs",
                ratio=ratio,
                extra=f"{ratio:.2f}× ({rate.median / floor_rate.median:.2f}× the chunks/s)",
                target="≤ 1.00×" if target else "",
                met=(ratio <= target) if target else None,
            )
        )
    return rows


def scale_rows(url: str, repeats: int, calls: int, quick: bool) -> list[dict[str, Any]]:
    """Start-up and scale (issue 15 item 5): Registry() with 200 plugins or endpoints,
    ``hypotez --version``, ``router.health()``, a call with 199 candidates after the answer."""
    rows: list[dict[str, Any]] = []
    for name, seconds in _scale.registry_build(2 if quick else 5).items():
        milliseconds = Samples([value * 1000 for value in seconds.values])
        rows.append(
            row(
                "Registry(), fresh interpreter",
                name,
                milliseconds,
                "ms",
                ratio=None,
                target="≤ 150 ms",
                met=milliseconds.median <= 150,
            )
        )
    walls = _scale.version_wall(3 if quick else 7)
    floor_name = "python -c 'import requests, pydantic'"
    rows += ratio_rows(
        "start-up, wall",
        {name: Samples([v * 1000 for v in s.values]) for name, s in walls.items()},
        floor_name,
        "ms",
        lower_is_better=True,
        targets={"hypotez --version": 1.0},
    )
    health = _scale.health_cost(3 if quick else 7)
    rows.append(
        row(
            "router.health(), 200 providers × 1,000 outcomes",
            "Router.health",
            Samples([v * 1e6 for v in health.values]),
            "µs",
            ratio=None,
            target="≤ 1,000 µs",
            met=health.median * 1e6 <= 1000,
        )
    )
    crowd = _scale.candidates_after(url, workloads.per_call, calls, repeats)
    rows += ratio_rows(
        "per call, 199 candidates after the answer",
        crowd,
        "1 candidate",
        "µs",
        lower_is_better=True,
        targets={f"{_scale.COUNT} candidates, the first answers": 1.10},
    )
    return rows


def Router_(registry: Any) -> Any:
    """The router under test."""
    from hypotez_providers import Router

    return Router(registry)


def other_clients(url: str, *, quiet: bool = False) -> dict[str, Any]:
    """The official openai client and LiteLLM's Router on ``url``, those that are installed.

    Each is a function ``ask(stream) -> result``; absent ones are reported as skipped.
    """
    found: dict[str, Any] = {}
    if importlib.util.find_spec("openai"):
        from openai import OpenAI

        client = OpenAI(base_url=url + "/v1", api_key="bench", max_retries=0)
        found["openai client"] = lambda stream: client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=stream
        )
    elif not quiet:
        print("skipped: openai client not installed (pip install openai)")
    if importlib.util.find_spec("litellm"):
        # Otherwise LiteLLM fetches its model price list from the internet on import.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        # The benchmark's stream repeats one piece; LiteLLM aborts such streams by default.
        litellm.REPEATED_STREAMING_CHUNK_LIMIT = 1_000_000
        params = {"model": "openai/" + MODEL, "api_base": url + "/v1", "api_key": "bench"}
        lite = litellm.Router(model_list=[{"model_name": MODEL, "litellm_params": params}])
        found["LiteLLM Router"] = lambda stream: lite.completion(
            model=MODEL, messages=MESSAGES, stream=stream
        )
    elif not quiet:
        print("skipped: LiteLLM not installed (pip install litellm)")
    return found


def optional_clients(url: str) -> dict[str, Any]:
    """Per-call contenders from :func:`other_clients`."""
    return {name: (lambda ask=ask: ask(False)) for name, ask in other_clients(url).items()}


def optional_streams(url: str) -> dict[str, Any]:
    """Stream contenders from :func:`other_clients`: chunks with content, counted."""

    def counting(ask: Any) -> Any:
        return lambda: sum(1 for c in ask(True) if c.choices and c.choices[0].delta.content)

    found = other_clients(url, quiet=True)
    return {f"{name} stream": counting(ask) for name, ask in found.items()}


def ratio_rows(
    workload: str,
    samples: dict[str, Samples],
    floor_name: str,
    unit: str,
    *,
    lower_is_better: bool,
    targets: dict[str, float],
) -> list[dict[str, Any]]:
    """Rows for a workload whose figures compare with the floor as a ratio."""
    floor = samples[floor_name].median
    rows = []
    for name, sample in samples.items():
        ratio = sample.median / floor
        target = targets.get(name)
        met = None if target is None else (ratio <= target if lower_is_better else ratio >= target)
        sign = "≤" if lower_is_better else "≥"
        rows.append(
            row(
                workload,
                name,
                sample,
                unit,
                ratio=ratio,
                target=f"{sign} {target:.2f}×" if target else "",
                met=met,
            )
        )
    return rows


def row(
    workload: str,
    name: str,
    sample: Samples,
    unit: str,
    *,
    ratio: float | None,
    target: str = "",
    met: bool | None = None,
    extra: str = "",
) -> dict[str, Any]:
    """One line of the table, as data."""
    low, high = sample.spread
    return {
        "workload": workload,
        "contender": name,
        "median": sample.median,
        "low": low,
        "high": high,
        "unit": unit,
        "ratio": ratio,
        "extra": extra,
        "target": target,
        "met": met,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """The figures as one aligned table."""
    lines = [("WORKLOAD", "CONTENDER", "MEDIAN", "SPREAD", "VS FLOOR", "TARGET", "MET")]
    for r in rows:
        lines.append(
            (
                r["workload"],
                r["contender"],
                f"{fmt(r['median'])} {r['unit']}",
                f"{fmt(r['low'])}–{fmt(r['high'])}",
                r["extra"] or (f"{r['ratio']:.2f}×" if r["ratio"] is not None else ""),
                r["target"],
                {True: "yes", False: "NO", None: ""}[r["met"]],
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )


def fmt(value: float) -> str:
    """A figure with sensible precision."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.01 else f"{value:.2e}"


def machine() -> str:
    """What the figures were measured on."""
    cpu = "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
