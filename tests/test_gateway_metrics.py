"""The gateway's metrics over real HTTP: attempts, failures by kind and fallbacks counted per
provider, time to first chunk for streams only, circuit state at scrape time, calls in flight
and shed, and several worker processes adding up in one PROMETHEUS_MULTIPROC_DIR."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import values
from prometheus_client.parser import text_string_to_metric_families

from hypotez_providers import Registry, Router
from hypotez_providers.gateway.metrics import GatewayMetrics, worker_exited
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import Fault

from ._routing import MESSAGES, MODEL, Compatible

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def one_process(monkeypatch):
    """Single-process mode unless a test asks otherwise; prometheus_client's value class kept."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)


def router_for(urls):
    """A Router on the real clock (durations are measured) over Compatible providers."""
    environ = {f"HYPOTEZ_{name.upper()}_BASE_URL": url for name, url in urls.items()}
    registry = Registry(settings=parse_settings(""), load_entry_points=False, environ=environ)
    for name in urls:
        registry.register(Compatible(name))
    return Router(registry, sleep=lambda seconds: None)


def scrape(metrics):
    """``{(sample name, frozenset of labels): value}`` from render(), checking its content type."""
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return parse(body.decode())


def parse(text):
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    """The sample with exactly these labels (``None`` when absent)."""
    return samples.get((name, frozenset(labels.items())))


def families(samples):
    return {name for name, _ in samples}


def run_stream(router, metrics, protocol="openai"):
    token = metrics.call_started(protocol, True)
    stream = router.stream(MODEL, MESSAGES)
    text = "".join(chunk.text for chunk in stream)
    metrics.call_finished(token, "ok")
    return text, stream.attempts


def run_complete(router, metrics, protocol="openai"):
    token = metrics.call_started(protocol, False)
    answer = router.complete(MODEL, MESSAGES)
    metrics.call_finished(token, 200)
    return answer.text, list(answer.attempts)


def test_attempts_failures_and_fallbacks_are_counted_as_the_router_recorded_them(fakes):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=503)
    router = router_for({"first": first.url, "second": second.url})
    metrics = GatewayMetrics(router)

    text, attempts = run_stream(router, metrics)
    assert text == "answer from second"
    tried = Counter((a.provider, a.outcome) for a in attempts if a.outcome != "skipped")
    errors = Counter((a.provider, a.error) for a in attempts if a.error)
    assert tried[("first", "failed")] >= 1 and tried[("second", "ok")] == 1

    samples = scrape(metrics)
    for (provider, outcome), count in tried.items():
        assert value(samples, "hypotez_attempts_total", provider=provider, outcome=outcome) == count
    assert value(samples, "hypotez_attempts_total", provider="second", outcome="failed") is None
    for (provider, kind), count in errors.items():
        assert kind == "Overloaded"
        assert value(samples, "hypotez_failures_total", provider=provider, kind=kind) == count
    assert (
        value(samples, "hypotez_fallbacks_total", from_provider="first", to_provider="second") == 1
    )
    assert (
        value(samples, "hypotez_calls_total", protocol="openai", stream="true", outcome="ok") == 1
    )


def test_a_stream_observes_time_to_first_chunk_and_a_whole_answer_does_not(fakes):
    only = fakes("only")
    router = router_for({"only": only.url})
    metrics = GatewayMetrics(router)

    run_complete(router, metrics)
    samples = scrape(metrics)
    assert "hypotez_time_to_first_chunk_seconds_count" not in families(samples)
    assert (
        value(samples, "hypotez_attempt_duration_seconds_count", provider="only", stream="false")
        == 1
    )

    only.faults.append(Fault(delay=0.03))
    run_stream(router, metrics)
    samples = scrape(metrics)
    assert value(samples, "hypotez_time_to_first_chunk_seconds_count", provider="only") == 1
    first_chunk = value(samples, "hypotez_time_to_first_chunk_seconds_sum", provider="only")
    assert 0.03 <= first_chunk < 5
    # The 30 ms wait lands in the 50 ms bucket, not the 25 ms one.
    bucket = "hypotez_time_to_first_chunk_seconds_bucket"
    assert value(samples, bucket, provider="only", le="0.025") == 0
    assert value(samples, bucket, provider="only", le="0.05") == 1
    assert (
        value(samples, "hypotez_attempt_duration_seconds_count", provider="only", stream="true")
        == 1
    )
    whole = value(samples, "hypotez_call_duration_seconds_sum", protocol="openai", stream="true")
    assert whole >= first_chunk


def test_circuit_state_is_read_from_the_router_at_scrape_time(fakes):
    first, second = fakes("first"), fakes("second")
    router = router_for({"first": first.url, "second": second.url})
    metrics = GatewayMetrics(router)

    samples = scrape(metrics)
    for provider in ("first", "second"):
        assert value(samples, "hypotez_circuit_state", provider=provider, state="closed") == 1
        assert value(samples, "hypotez_circuit_state", provider=provider, state="open") == 0

    first.fail_every_request = Fault(status=503)
    run_complete(router, metrics)
    assert {h.provider: h.state.value for h in router.health()}["first"] == "open"
    samples = scrape(metrics)
    assert value(samples, "hypotez_circuit_state", provider="first", state="open") == 1
    assert value(samples, "hypotez_circuit_state", provider="first", state="closed") == 0
    assert value(samples, "hypotez_circuit_state", provider="first", state="half_open") == 0
    assert value(samples, "hypotez_circuit_state", provider="second", state="closed") == 1
    assert value(samples, "hypotez_circuit_consecutive_failures", provider="first") >= 2


def test_calls_in_flight_outcome_classes_and_shed_requests(fakes):
    router = router_for({"only": fakes("only").url})
    metrics = GatewayMetrics(router)

    token = metrics.call_started("anthropic", False)
    assert value(scrape(metrics), "hypotez_calls_in_flight", protocol="anthropic") == 1
    metrics.call_finished(token, 502)
    metrics.call_finished(metrics.call_started("anthropic", True), "disconnected")
    metrics.call_finished(metrics.call_started("anthropic", True), "made up by a bug")
    metrics.shed("openai")
    metrics.shed("openai")

    samples = scrape(metrics)
    assert value(samples, "hypotez_calls_in_flight", protocol="anthropic") == 0
    calls = "hypotez_calls_total"
    assert value(samples, calls, protocol="anthropic", stream="false", outcome="5xx") == 1
    assert value(samples, calls, protocol="anthropic", stream="true", outcome="disconnected") == 1
    assert value(samples, calls, protocol="anthropic", stream="true", outcome="other") == 1
    assert value(samples, "hypotez_requests_shed_total", protocol="openai") == 2
    assert value(samples, "hypotez_requests_shed_total", protocol="anthropic") == 0
    with pytest.raises(ValueError, match="protocol"):
        metrics.call_started("grpc", False)
    with pytest.raises(ValueError, match="protocol"):
        metrics.shed("grpc")
    with pytest.raises(TypeError):
        metrics.call_finished(None, "ok")


def test_labels_never_carry_the_models_or_text_of_a_call(fakes):
    router = router_for({"only": fakes("only").url})
    metrics = GatewayMetrics(router)
    run_complete(router, metrics)
    body = metrics.render()[0].decode()
    assert "hello" not in body and MODEL not in body and "answer from" not in body
    assert all(name.startswith("hypotez_") for name in families(parse(body)))


def test_an_attempt_outside_a_gateway_call_is_counted_with_stream_unknown(fakes):
    router = router_for({"only": fakes("only").url})
    metrics = GatewayMetrics(router)
    list(router.stream(MODEL, MESSAGES))
    samples = scrape(metrics)
    assert value(samples, "hypotez_attempts_total", provider="only", outcome="ok") == 1
    count = "hypotez_attempt_duration_seconds_count"
    assert value(samples, count, provider="only", stream="unknown") == 1
    assert "hypotez_time_to_first_chunk_seconds_count" not in families(samples)


def test_close_stops_hearing_the_router_and_registries_stay_private(fakes):
    router = router_for({"only": fakes("only").url})
    metrics, other = GatewayMetrics(router), GatewayMetrics(router)
    metrics.close()
    run_complete(router, other)
    assert value(scrape(metrics), "hypotez_attempts_total", provider="only", outcome="ok") is None
    assert value(scrape(other), "hypotez_attempts_total", provider="only", outcome="ok") == 1


WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from _routing import MESSAGES, MODEL, Compatible
    from hypotez_providers import Registry, Router
    from hypotez_providers.gateway.metrics import GatewayMetrics
    from hypotez_providers.settings import parse_settings

    tests, urls, name, calls, done = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
    # As `hypotez serve` may: the variable set after prometheus_client was imported.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[6]
    environ = {f"HYPOTEZ_{p.upper()}_BASE_URL": url for p, url in urls.items()}
    registry = Registry(settings=parse_settings(""), load_entry_points=False, environ=environ)
    for provider in urls:
        registry.register(Compatible(provider))
    router = Router(registry, sleep=lambda seconds: None)
    metrics = GatewayMetrics(router)
    assert metrics.multiprocess
    for _ in range(calls):
        token = metrics.call_started("openai", True)
        assert "".join(chunk.text for chunk in router.stream(MODEL, MESSAGES))
        metrics.call_finished(token, "ok")
    metrics.call_started("anthropic", False)  # still in flight when this worker exits
    open(os.path.join(done, name), "w").close()
    deadline = time.monotonic() + 30
    while len(os.listdir(done)) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    sys.stdout.write(metrics.render()[0].decode())
    """
)


def test_workers_in_one_multiproc_dir_report_each_others_counts(fakes, tmp_path, monkeypatch):
    first, second = fakes("first"), fakes("second")
    first.fail_every_request = Fault(status=401)  # not retried, opens no circuit at once
    urls = json.dumps({"first": first.url, "second": second.url})
    directory, done = tmp_path / "prometheus", tmp_path / "done"
    directory.mkdir()
    done.mkdir()
    paths = (str(done), str(directory))
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(TESTS), urls, name, str(calls), *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, calls in (("a", 2), ("b", 3))
    ]
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=60)
        assert worker.returncode == 0, err
        outputs.append(parse(out))

    # Each worker's /metrics reports every worker's counters and histograms.
    for samples in outputs:
        calls = value(
            samples, "hypotez_calls_total", protocol="openai", stream="true", outcome="ok"
        )
        assert calls == 5
        assert value(samples, "hypotez_attempts_total", provider="second", outcome="ok") == 5
        failed = value(
            samples, "hypotez_failures_total", provider="first", kind="AuthenticationFailed"
        )
        assert failed == value(
            samples, "hypotez_attempts_total", provider="first", outcome="failed"
        )
        assert failed >= 2
        assert value(samples, "hypotez_time_to_first_chunk_seconds_count", provider="second") == 5
        assert value(samples, "hypotez_calls_in_flight", protocol="anthropic") == 2

    # This process (a fresh worker) reads the same totals; an exited worker's in-flight
    # calls stop counting once it is marked dead.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
    router = router_for({"first": first.url, "second": second.url})
    metrics = GatewayMetrics(router)
    assert metrics.multiprocess
    samples = scrape(metrics)
    assert value(samples, "hypotez_attempts_total", provider="second", outcome="ok") == 5
    assert value(samples, "hypotez_calls_in_flight", protocol="anthropic") == 2
    worker_exited(workers[0].pid)
    samples = scrape(metrics)
    assert value(samples, "hypotez_calls_in_flight", protocol="anthropic") == 1
    assert value(samples, "hypotez_attempts_total", provider="second", outcome="ok") == 5
    # Circuit state is this worker's own view.
    assert value(samples, "hypotez_circuit_state", provider="first", state="closed") == 1


def test_many_calls_leave_nothing_in_flight(fakes):
    router = router_for({"only": fakes("only").url})
    metrics = GatewayMetrics(router)
    for _ in range(1000):
        metrics.call_finished(metrics.call_started("openai", False), "ok")
    samples = scrape(metrics)
    assert value(samples, "hypotez_calls_in_flight", protocol="openai") == 0
    assert (
        value(samples, "hypotez_calls_total", protocol="openai", stream="false", outcome="ok")
        == 1000
    )
