"""Benchmark: what ``hypotez serve`` adds on top of calling the upstream directly.

    python3 bench/gateway.py            # about 2.5 minutes on 2 cores (4 with LiteLLM)
    python3 bench/gateway.py --quick    # a smoke run of about 30 seconds

Fake upstreams (bench/upstream.py) and each gateway run in their own processes on 127.0.0.1.
Latency is measured open-loop at a fixed request rate, direct and through each gateway in
alternating blocks so machine noise hits them alike; throughput figures are medians of
interleaved repeats. Targets come from issue 13; they are never asserted in the test suite.
LiteLLM's proxy runs on the same upstream when its ``litellm`` command is found (on ``PATH``
or ``--litellm PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _openloop
import _servers
from _openloop import Run, percentile
from _servers import MODEL, STREAM_MODEL, Server
from run import machine

DIRECT = "direct"


@dataclass(frozen=True)
class Plan:
    """How long and how often: the full run or the smoke run."""

    rate: float = 200.0
    light_rate: float = 20.0  # well below what any contender can serve: overhead, no queue
    seconds: float = 10.0  # per contender, in blocks of ``block`` seconds
    block: float = 1.0
    threads: int = 8
    stream_repeats: int = 7
    streams: int = 64
    stream_chunks: int = 1_000  # each of the concurrent streams
    concurrent_repeats: int = 5


QUICK = Plan(seconds=2.0, block=0.5, stream_repeats=2, stream_chunks=200, concurrent_repeats=1)
#: The test suite's run: every workload once, figures meaningless, only that it all works.
SMOKE = Plan(
    seconds=0.5, block=0.25, stream_repeats=1, streams=8, stream_chunks=50, concurrent_repeats=1
)


def main() -> int:
    """Start the servers, run every workload, print the table; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument("--smoke", action="store_true", help="shortest runs (the test suite's)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--litellm", help="LiteLLM's proxy command (default: litellm on PATH)")
    arguments = parser.parse_args()
    plan = SMOKE if arguments.smoke else QUICK if arguments.quick else Plan()
    print(machine())
    ours: dict[tuple[str, float], float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="hypotez-bench-") as home,
        _servers.upstreams() as (urls, upstream),
    ):
        with ExitStack() as stack:
            gateways = [
                stack.enter_context(_servers.gateway(urls, workers, Path(home)))
                for workers in (1, 2)
            ]
            rows = measure(urls, upstream.pid, gateways, plan, ours)
        # LiteLLM's proxy runs alone, after ours have stopped: its background work must not
        # land in our figures, nor ours in its.
        rows += measure_litellm(arguments.litellm, urls, upstream.pid, Path(home), plan, ours)
    print_table(rows)
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


def measure(
    urls: dict[str, str],
    upstream_pid: int,
    gateways: list[Server],
    plan: Plan,
    ours: dict[tuple[str, float], float],
) -> list[dict[str, Any]]:
    """Every workload on the gateways; rows of the table. Fills ``ours`` (added latencies)."""
    fast = {DIRECT: urls["fast"], **{g.name: g.url for g in gateways}}
    pids = {DIRECT: [upstream_pid], **{g.name: g.pids() for g in gateways}}
    rows = latency_workloads(fast, pids, plan, ours)
    stream = {DIRECT: urls["stream"], **{g.name: g.url for g in gateways}}
    rows += throughput_rows(stream, plan)
    rows += concurrent_rows(stream, upstream_pid, gateways, plan)
    return rows


def measure_litellm(
    explicit: str | None,
    urls: dict[str, str],
    upstream_pid: int,
    home: Path,
    plan: Plan,
    ours: dict[tuple[str, float], float],
) -> list[dict[str, Any]]:
    """The latency workloads through LiteLLM's proxy, direct interleaved again; none if absent."""
    command = _servers.find_litellm(explicit)
    if not command:
        print("LiteLLM proxy: not installed (pip install 'litellm[proxy]', or --litellm PATH)")
        return []
    try:
        with _servers.litellm_proxy(command, urls, home, _openloop.KEY) as litellm:
            targets = {DIRECT: urls["fast"], litellm.name: litellm.url}
            pids = {DIRECT: [upstream_pid], litellm.name: litellm.pids()}
            rows = latency_workloads(targets, pids, plan, ours)
    except RuntimeError as failed:
        print(f"LiteLLM proxy: could not run ({failed}); its rows are left out")
        return []
    for figure in rows:
        if figure["contender"].startswith(DIRECT):
            figure["contender"] = figure["contender"].replace(DIRECT, "direct, LiteLLM's run")
    return rows


def latency_workloads(
    targets: dict[str, str],
    pids: dict[str, list[int]],
    plan: Plan,
    ours: dict[tuple[str, float], float],
) -> list[dict[str, Any]]:
    """Whole answers at the target rate and at a light rate, and streams' first byte."""
    rows = []
    for rate, stream in ((plan.rate, False), (plan.rate, True), (plan.light_rate, False)):
        kind = "streams (first byte)" if stream else "whole answers"
        workload = f"latency, {rate:.0f} req/s, {kind}"
        runs = latency(targets, pids, _openloop.body(MODEL, stream=stream), rate, plan)
        targeted = rate == plan.rate and not stream
        rows += latency_rows(workload, runs, ours, first_byte=stream, targeted=targeted)
    return rows


def latency(
    targets: dict[str, str],
    pids: dict[str, list[int]],
    payload: bytes,
    rate: float,
    plan: Plan,
) -> dict[str, Run]:
    """Open-loop runs of every target, in alternating blocks; one :class:`Run` each.

    Each run also counts the CPU its server (the processes in ``pids``) spent.
    """
    pools = {
        name: [_openloop.connect(url) for _ in range(plan.threads)] for name, url in targets.items()
    }
    for pool in pools.values():  # open the connections, warm every server
        _openloop.open_loop(pool, payload, rate, max(0.3, plan.threads / rate))
    runs = {name: Run() for name in targets}
    for _ in range(round(plan.seconds / plan.block)):
        for name, pool in pools.items():
            before = _servers.cpu_seconds(pids[name])
            block = _openloop.open_loop(pool, payload, rate, plan.block)
            block.cpu = _servers.cpu_seconds(pids[name]) - before
            runs[name].extend(block)
    for pool in pools.values():
        for connection in pool:
            connection.close()
    return runs


def latency_rows(
    workload: str,
    runs: dict[str, Run],
    ours: dict[tuple[str, float], float],
    *,
    first_byte: bool,
    targeted: bool,
) -> list[dict[str, Any]]:
    """p50 and p99 of each target, and what each adds to direct (gateways' kept in ``ours``)."""
    rows = []
    base: dict[float, float] = {}
    for name, run in runs.items():
        values = run.first_bytes if first_byte else run.latencies
        late = percentile(run.lateness, 0.99) * 1000
        cpu = run.cpu / max(1, len(run.latencies)) * 1000
        whose = "upstream" if name == DIRECT else "its"
        note = (
            f"{run.rate:.0f} req/s answered, {run.errors} errors, sent late p99 {late:.2f} ms, "
            f"{whose} CPU {cpu:.2f} ms/req"
        )
        for share, label, target in ((0.5, "p50", 1.0), (0.99, "p99", 5.0)):
            ms = percentile(values, share) * 1000
            figure = row(workload, f"{name}: {label}", ms, "ms", note=note)
            rows.append(figure)
            if name == DIRECT:
                base[share] = ms
                continue
            added = ms - base[share]
            figure["added"] = added
            figure["vs"] = f"+{added:.2f} ms"
            if name.startswith("gateway"):
                ours.setdefault((workload, share), added)
                if targeted:
                    figure["target"] = f"≤ +{target:.0f} ms"
                    figure["met"] = added <= target
            elif ours.get((workload, share), 0) > 0:
                times = added / ours[workload, share]
                figure["vs"] += f" ({times:.0f}× ours)"
                if not first_byte and share == 0.5:  # the target, at any rate
                    figure["target"] = "≥ 10× ours"
                    figure["met"] = times >= 10
    return rows


def throughput_rows(targets: dict[str, str], plan: Plan) -> list[dict[str, Any]]:
    """One 10,000-chunk stream read direct and through each gateway: chunks/s, interleaved."""
    payload = _openloop.body(STREAM_MODEL, stream=True)
    samples: dict[str, list[float]] = {name: [] for name in targets}
    connections = {name: _openloop.connect(url) for name, url in targets.items()}
    for connection in connections.values():
        _openloop.read_stream(connection, payload)
    for _ in range(plan.stream_repeats):
        for name, connection in connections.items():
            pieces, seconds = _openloop.read_stream(connection, payload)
            if pieces != 10_000:
                raise RuntimeError(f"{name}: the stream had {pieces} pieces, not 10,000")
            samples[name].append(pieces / seconds)
    for connection in connections.values():
        connection.close()
    workload = "stream, 10,000 chunks"
    return ratio_rows(workload, samples, "chunks/s", target=0.8)


def concurrent_rows(
    targets: dict[str, str], upstream_pid: int, gateways: list[Server], plan: Plan
) -> list[dict[str, Any]]:
    """``plan.streams`` streams at once: aggregate chunks/s and server CPU per 1,000 chunks."""
    payload = _openloop.body(STREAM_MODEL, stream=True, max_tokens=plan.stream_chunks)
    pids = {DIRECT: [upstream_pid], **{g.name: g.pids() for g in gateways}}
    samples: dict[str, list[float]] = {name: [] for name in targets}
    cpu: dict[str, list[float]] = {name: [] for name in targets}
    client: dict[str, list[float]] = {name: [] for name in targets}
    complete = {name: 0 for name in targets}
    failures: dict[str, list[str]] = {name: [] for name in targets}
    pools = {
        name: [_openloop.connect(url) for _ in range(plan.streams)] for name, url in targets.items()
    }
    for pool in pools.values():
        for connection in pool:  # one after another: opens the connections, warms the servers
            _openloop.read_stream(connection, payload)
        # Then more at once, step by step, so the gateway's own connections to the upstream
        # grow in steps too: the fake upstream's accept queue is short (5), and a burst of 64
        # connects can drop some, which opens the gateway's circuit (see the performance page).
        size = 8
        while size < len(pool):
            _openloop.concurrent_streams(pool[:size], payload)
            size *= 2
        _openloop.concurrent_streams(pool, payload)
    for _ in range(plan.concurrent_repeats):
        for name, pool in pools.items():
            before, ours_before = _servers.cpu_seconds(pids[name]), _own_cpu()
            pieces, seconds, failed = _openloop.concurrent_streams(pool, payload)
            failures[name] += failed
            spent = _servers.cpu_seconds(pids[name]) - before
            own = _own_cpu() - ours_before
            complete[name] += sum(1 for count in pieces if count == plan.stream_chunks)
            read = sum(max(count, 0) for count in pieces)
            samples[name].append(read / seconds)
            cpu[name].append(spent / read * 1000 if read else float("nan"))
            client[name].append(own / read * 1000 if read else float("nan"))
    for pool in pools.values():
        for connection in pool:
            connection.close()
    workload = f"{plan.streams} streams × {plan.stream_chunks:,} chunks"
    rows = ratio_rows(workload, samples, "chunks/s", target=None)
    total = plan.streams * plan.concurrent_repeats
    for figure in rows:
        name = figure["contender"]
        figure["note"] = f"{complete[name]}/{total} complete"
        if failures[name]:
            figure["note"] += f"; {len(failures[name])} failed, first: {failures[name][0][:120]}"
        figure["target"], figure["met"] = f"{total}/{total} complete", complete[name] == total
    for name, values in cpu.items():
        whose = "upstream" if name == DIRECT else "gateway"
        ms = statistics.median(values) * 1000
        reader = statistics.median(client[name]) * 1000
        note = f"the benchmark's reader: {reader:.1f} ms/1k chunks"
        rows.append(row(workload, f"{name}: {whose} CPU", ms, "ms/1k chunks", note=note))
    base = rows[-len(cpu)]["value"]
    for figure in rows[-len(cpu) + 1 :]:
        # A smoke run can be too short for the upstream's CPU to register a tick.
        figure["vs"] = f"{figure['value'] / base:.2f}× upstream's" if base else "n/a"
    return rows


def _own_cpu() -> float:
    """CPU seconds this process (the benchmark's client) has spent."""
    times = os.times()
    return times.user + times.system


def ratio_rows(
    workload: str, samples: dict[str, list[float]], unit: str, *, target: float | None
) -> list[dict[str, Any]]:
    """Median of each contender against direct's."""
    base = statistics.median(samples[DIRECT])
    rows = []
    for name, values in samples.items():
        value = statistics.median(values)
        figure = row(workload, name, value, unit, note=f"{min(values):,.0f}–{max(values):,.0f}")
        figure["vs"] = f"{value / base:.2f}×"
        if target is not None and name != DIRECT:
            figure["target"], figure["met"] = f"≥ {target:.2f}×", value / base >= target
        rows.append(figure)
    return rows


def row(workload: str, contender: str, value: float, unit: str, note: str = "") -> dict[str, Any]:
    """One line of the table, as data."""
    return {
        "workload": workload,
        "contender": contender,
        "value": value,
        "unit": unit,
        "note": note,
        "vs": "",
        "target": "",
        "met": None,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """The figures as one aligned table."""
    lines = [("WORKLOAD", "CONTENDER", "FIGURE", "VS DIRECT", "TARGET", "MET", "NOTE")]
    for r in rows:
        lines.append(
            (
                r["workload"],
                r["contender"],
                f"{fmt(r['value'])} {r['unit']}",
                r["vs"],
                r["target"],
                {True: "yes", False: "NO", None: ""}[r["met"]],
                r["note"],
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
    return f"{value:.3g}"


if __name__ == "__main__":
    raise SystemExit(main())
