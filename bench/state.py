"""Benchmark: what shared state on Redis costs a call, against memory and a raw request.

    python3 bench/state.py            # about a minute and a half
    python3 bench/state.py --quick    # a smoke run of some seconds
    python3 bench/state.py --json state.json

It starts a redis-server of its own on a free port of 127.0.0.1 (and says so and stops when
there is none: ``apt-get install redis-server``) and the fake upstreams (``upstream.py``).
Contenders: a raw ``requests`` POST, ``Router.complete`` with the in-memory breaker, with
``[state] url`` (the Redis breaker; also with ``fresh_for = 0``, asking Redis on every admit),
and with an ``rpm`` set too (the Redis rate limiter).
Figures are ratios of medians to raw measured in the same run, contenders interleaved; round
trips per call are Redis' own count of commands processed; then 4 processes x 4 threads
hammer the one Redis through Routers sharing it (issue 14 item 7). Targets: issue 14 item 1
(at most one round trip a call, within 1.25x raw). They are never asserted in the test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared_state
import redis
import workloads
from _shared_state import CONTENDERS, Fleet, RedisProcess
from run import machine, print_table, ratio_rows, row
from workloads import Samples

REDIS_ROWS = ("Redis breaker, fresh_for 0", "Redis breaker", "Redis breaker + rpm")
#: One round trip a call on the common path, with room for the breaker's refresh of a healthy
#: circuit's note besides (once per ``[state] fresh_for``, or per 64 calls: about 0.016).
ONE_TRIP = 1.05
#: Commands only a client sends (a script cannot): each is one round trip.
TOP_LEVEL = {"eval", "evalsha", "eval_ro", "evalsha_ro", "script", "fcall", "fcall_ro", "exec"}


def main() -> int:
    """Run the workloads and print the table; exit 0 (also when redis-server is missing)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repeats: a smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    arguments = parser.parse_args()
    binary = RedisProcess.binary()
    if binary is None:
        print("skipped: redis-server is not installed (apt-get install redis-server)")
        return 0
    print(machine())
    server = RedisProcess(binary)
    upstream = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "upstream.py")],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        urls = json.loads(upstream.stdout.readline()) if upstream.stdout else {}
        rows = measure(server, urls["fast"], arguments.quick)
    finally:
        upstream.kill()
        server.stop()
    print_table(rows)
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


def measure(server: RedisProcess, upstream: str, quick: bool) -> list[dict[str, Any]]:
    """Per call, round trips per call, and the 4 x 4 hammer; one row per contender."""
    repeats, calls = (2, 30) if quick else (7, 400)
    calls_of = _shared_state.contenders(upstream, server.url)
    single = workloads.per_call(calls_of, calls, repeats)
    targets = dict.fromkeys(REDIS_ROWS, 1.25)
    rows = ratio_rows(
        "per call, one thread", single, "raw requests", "µs", lower_is_better=True, targets=targets
    )
    rows += round_trip_rows(server, calls_of, 100 if quick else 2000)
    rows += hammer_rows(server, upstream, repeats=1 if quick else 5, seconds=0.5 if quick else 3)
    return rows


def round_trip_rows(
    server: RedisProcess, calls_of: dict[str, Any], calls: int
) -> list[dict[str, Any]]:
    """Round trips to Redis per call, counted by Redis itself (``INFO commandstats``) around
    ``calls`` calls: the commands a client sends that a script cannot run (``EVALSHA``,
    ``EVAL``, ``SCRIPT``; our code sends no plain command on these paths), and, for scale,
    every command Redis ran, those inside the scripts included."""
    client = redis.Redis.from_url(server.url)

    def counts() -> tuple[int, int]:
        stats = client.info("commandstats")
        trips = sum(
            value["calls"]
            for key, value in stats.items()
            if key.removeprefix("cmdstat_").split("|")[0] in TOP_LEVEL
        )
        return trips, sum(value["calls"] for value in stats.values())

    rows = []
    for name in CONTENDERS[1:]:
        call = calls_of[name]
        trips, commands = counts()
        for _ in range(calls):
            call()
        after_trips, after_commands = counts()
        per_call = (after_trips - trips) / calls
        run = (after_commands - commands - 1) / calls  # less our own INFO
        target = name in REDIS_ROWS
        rows.append(
            row(
                "Redis round trips per call",
                name,
                Samples([per_call]),
                "",
                ratio=None,
                extra=f"{per_call:.3f} ({run:.2f} commands run, {calls:,} calls)",
                target=f"≤ {ONE_TRIP:.2f}" if target else "",
                met=per_call <= ONE_TRIP if target else None,
            )
        )
    client.close()
    return rows


def hammer_rows(
    server: RedisProcess, upstream: str, *, repeats: int, seconds: float
) -> list[dict[str, Any]]:
    """4 processes x 4 threads on one Redis: calls/s of each contender (interleaved), as a
    ratio to raw and to the memory breaker, with Redis' CPU while it ran."""
    fleet = Fleet(server.url, upstream, processes=4, threads=4)
    rates = {name: Samples() for name in CONTENDERS}
    cpu = {name: Samples() for name in CONTENDERS}  # Redis' CPU, µs a call
    load = {name: Samples() for name in CONTENDERS}  # Redis' CPU, share of one core
    fallbacks = dict.fromkeys(CONTENDERS, 0)
    try:
        for name in CONTENDERS:
            fleet.run(name, min(seconds, 0.5))  # warm: connections, scripts loaded
        for _ in range(repeats):
            for name in CONTENDERS:
                used, started = server.cpu_seconds(), time.perf_counter()
                rate, fell = fleet.run(name, seconds)
                fallbacks[name] += fell
                used, wall = server.cpu_seconds() - used, time.perf_counter() - started
                rates[name].values.append(rate)
                cpu[name].values.append(used / (rate * wall) * 1e6)
                load[name].values.append(used / wall)
    finally:
        fleet.stop()
    rows = ratio_rows(
        "4 processes × 4 threads, one Redis",
        rates,
        "raw requests",
        "calls/s",
        lower_is_better=False,
        targets={},
    )
    memory = rates["memory breaker"].median
    for line in rows:
        name = line["contender"]
        if name in REDIS_ROWS:
            line["extra"] = (
                f"{line['ratio']:.2f}× ({rates[name].median / memory:.2f}× memory); Redis CPU "
                f"{load[name].median:.0%} of a core, {cpu[name].median:.2f} µs a call"
            )
            if fallbacks[name]:
                line["extra"] += f"; Redis unreachable {fallbacks[name]}×: memory meanwhile"
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
