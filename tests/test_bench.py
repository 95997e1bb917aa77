"""The benchmark command still runs (its figures are never asserted: they are not tests)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_bench_quick_run_prints_the_table(tmp_path):
    figures = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "WORKLOAD" in result.stdout and "Router.stream" in result.stdout
    assert {"per call, non-streaming", "16 threads"} <= {
        row["workload"] for row in __import__("json").loads(figures.read_text())
    }


def test_gateway_bench_quick_run_prints_the_table(tmp_path):
    figures = tmp_path / "gateway.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gateway.py"), "--smoke", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "WORKLOAD" in result.stdout and "TARGET" in result.stdout
    assert "gateway, 1 worker" in result.stdout


def test_shared_state_bench_quick_run_prints_the_table(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    figures = tmp_path / "state.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "state.py"), "--quick", "--json", str(figures)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "WORKLOAD" in result.stdout and "TARGET" in result.stdout
    assert "Redis breaker + rpm" in result.stdout
