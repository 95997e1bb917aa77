"""Circuits shared on a real redis-server: across OS processes, and when Redis goes away.

The rules themselves run against both breakers in ``test_health.py``; these are what only a
shared store has: other processes, a server that dies and comes back, keys that expire, a
password that must never show. Every test starts its own ``redis-server`` (``tests/_redis.py``)
and skips when it is not installed.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hypotez_providers import Registry, Router
from hypotez_providers.health import CircuitState, HealthPolicy, Permit, Standing
from hypotez_providers.settings import parse_settings
from hypotez_providers.state import (
    RedisCircuitBreaker,
    RedisConnection,
    StateSettings,
    shared_breaker,
    shared_connection,
)
from hypotez_providers.state._circuit_lua import ttl_ms
from hypotez_providers.testing import FakeOpenAI, Fault
from tests._redis import running_redis

MESSAGES = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parent.parent

# One call through a Router built from a settings file; prints who answered and how long.
CALLER = textwrap.dedent(
    """
    import json, sys, time
    from hypotez_providers import Registry, Router
    from hypotez_providers.settings import load_settings

    registry = Registry(settings=load_settings(sys.argv[1]), environ={})
    router = Router(registry)
    for _ in range(int(sys.argv[2])):
        started = time.monotonic()
        answer = router.complete("m", [{"role": "user", "content": "hi"}])
        print(json.dumps({"provider": answer.provider, "seconds": time.monotonic() - started}))
    print(json.dumps({"breaker": type(router.breaker).__name__}))
    """
)

# Waits for a start file, then asks for a permit; prints whether it was a probe.
ADMITTER = textwrap.dedent(
    """
    import json, os, sys, time
    from hypotez_providers.health import HealthPolicy
    from hypotez_providers.state import RedisCircuitBreaker, RedisConnection

    breaker = RedisCircuitBreaker(
        RedisConnection(sys.argv[1], timeout=1.0), HealthPolicy(cooldown=0.5, probe_lease=60)
    )
    breaker.standing("warm-up")  # the script is loaded and the socket open before the race
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.001)
    permit = breaker.admit("flaky")
    print(json.dumps(None if permit is None else {"probe": permit.probe, "token": permit.token}))
    """
)


@pytest.fixture
def redis(tmp_path):
    with running_redis(tmp_path) as server:
        yield server


def settings_text(url: str, dead: str, alive: str) -> str:
    return textwrap.dedent(
        f"""
        [state]
        url = "{url}"
        timeout = 0.05

        [retry]
        attempts = 1

        [health]
        failure_threshold = 1
        cooldown = 60

        [endpoints.dead]
        base_url = "{dead}/v1"
        models = ["m"]
        priority = 10

        [endpoints.alive]
        base_url = "{alive}/v1"
        models = ["m"]
        """
    )


def run_caller(settings: Path, calls: int) -> list[dict]:
    result = subprocess.run(
        [sys.executable, "-c", CALLER, str(settings), str(calls)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "HYPOTEZ_STATE_URL": ""},
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# Across processes --------------------------------------------------------------------------


def test_a_circuit_opened_by_one_process_is_honoured_by_a_fresh_process(redis, tmp_path):
    with FakeOpenAI(models=None) as dead, FakeOpenAI(models=None, reply="alive") as alive:
        dead.fail_every_request = Fault(status=500)
        settings = tmp_path / "config.toml"
        settings.write_text(settings_text(redis.url, dead.url, alive.url))

        first = run_caller(settings, 3)
        assert first[-1] == {"breaker": "RedisCircuitBreaker"}
        assert {line["provider"] for line in first[:-1]} == {"alive"}
        assert len(dead.requests) == 1, "its first failure opened the circuit"

        fresh = run_caller(settings, 3)
        assert [line["provider"] for line in fresh[:-1]] == ["alive"] * 3
        assert len(dead.requests) == 1, "the fresh process asked the dead provider nothing"
        assert len(alive.requests) == 6


def test_without_a_state_url_each_process_finds_the_dead_provider_alone(tmp_path):
    with FakeOpenAI(models=None) as dead, FakeOpenAI(models=None) as alive:
        dead.fail_every_request = Fault(status=500)
        settings = tmp_path / "config.toml"
        text = settings_text("redis://unused", dead.url, alive.url)
        settings.write_text(text.replace('url = "redis://unused"\n', ""))
        assert run_caller(settings, 3)[-1] == {"breaker": "MemoryCircuitBreaker"}
        run_caller(settings, 3)
        assert len(dead.requests) == 2, "the control: without Redis nothing is shared"


def test_only_one_process_gets_the_half_open_probe(redis, tmp_path):
    opener = RedisCircuitBreaker(
        RedisConnection(redis.url, timeout=1.0), HealthPolicy(cooldown=0.5, probe_lease=60)
    )
    opener.failed(opener.admit("flaky") or pytest.fail("closed circuit refused"), open_now=True)
    assert opener.admit("flaky") is None
    go = tmp_path / "go"
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", ADMITTER, redis.url, str(go)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(4)
    ]
    time.sleep(1.5)  # the cooldown is over and every racer is waiting for the start
    go.touch()
    answers = [json.loads(racer.communicate(timeout=30)[0]) for racer in racers]
    probes = [answer for answer in answers if answer is not None]
    assert probes == [{"probe": True, "token": 1}], "exactly one probe across four processes"
    assert opener.admit("flaky") is None, "the probe is out: this process waits too"
    breaker = RedisCircuitBreaker(RedisConnection(redis.url), HealthPolicy(cooldown=0.5))
    breaker.succeeded(Permit("flaky", probe=True, token=1), 0.2)  # the probe's holder answers
    assert opener.health("flaky").state is CircuitState.CLOSED


def test_breakers_on_two_connections_share_every_transition(redis):
    policy = HealthPolicy(failure_threshold=2, cooldown=60)
    one = RedisCircuitBreaker(RedisConnection(redis.url), policy)
    two = RedisCircuitBreaker(RedisConnection(redis.url), policy)
    one.failed(one.admit("p") or pytest.fail())
    assert two.standing("p") is Standing.DEMOTED
    two.failed(two.admit("p") or pytest.fail())
    assert one.admit("p") is None
    health = one.health("p")
    assert (health.state, health.failures, health.consecutive_failures) == (
        CircuitState.OPEN,
        2,
        2,
    )


def test_successes_kept_locally_still_count_in_the_shared_failure_rate(redis):
    policy = HealthPolicy(failure_threshold=100, min_calls=10, failure_rate=0.5)
    healthy = RedisCircuitBreaker(RedisConnection(redis.url), policy)
    failing = RedisCircuitBreaker(RedisConnection(redis.url), policy)
    for _ in range(6):
        healthy.succeeded(healthy.admit("p") or pytest.fail(), 0.01)
    healthy.standing("p")  # no round trip: the successes are still this process's
    healthy.admit("p")  # nor for a healthy admit: they wait for a batch, or a second
    assert RedisConnection(redis.url).client.hget("hypotez:circuit:p", "s") is None
    healthy.health("p")  # any other script hands them over
    for _ in range(5):
        failing.failed(failing.admit("p") or pytest.fail())
    health = failing.health("p")
    assert (health.successes, health.failures) == (6, 5)
    assert health.state is CircuitState.CLOSED, "5 failures in 11 calls is under 0.5"
    failing.failed(failing.admit("p") or pytest.fail())
    assert failing.health("p").state is CircuitState.OPEN, "6 in 12 is 0.5"


def test_an_admit_hands_waiting_successes_over_after_a_batch_or_a_while(redis):
    breaker = RedisCircuitBreaker(RedisConnection(redis.url), HealthPolicy(), note_seconds=0.2)
    client = RedisConnection(redis.url).client
    for _ in range(64):
        breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.01)
    breaker.admit("p")
    assert client.hget("hypotez:circuit:p", "s") == b"64", "a full batch"
    breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.01)
    breaker.admit("p")
    assert client.hget("hypotez:circuit:p", "s") == b"64"
    time.sleep(0.25)
    breaker.admit("p")
    assert client.hget("hypotez:circuit:p", "s") == b"65", "the oldest waited note_seconds"


# Cost --------------------------------------------------------------------------------------


class CountingConnection(RedisConnection):
    """A real connection that counts its round trips."""

    trips = 0

    def run(self, operation):  # type: ignore[override]
        self.trips += 1
        return super().run(operation)


def _round_trips(client) -> int:
    """Scripts the real redis-server has run (each one round trip): its own count."""
    stats = client.info("commandstats")
    return sum(stats.get(f"cmdstat_{name}", {}).get("calls", 0) for name in ("evalsha", "eval"))


def test_a_healthy_call_costs_no_round_trip_while_the_note_is_fresh(redis):
    breaker = RedisCircuitBreaker(RedisConnection(redis.url), HealthPolicy(), fresh_for=60)
    client = RedisConnection(redis.url).client
    breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.1)  # asks Redis: no note yet
    breaker.health("warm-up")  # Redis loads the read script (NOSCRIPT, then EVALSHA again)
    before = _round_trips(client)
    for _ in range(50):
        for name in ("p", "q", "r"):
            breaker.standing(name)
        breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.1)
    assert _round_trips(client) - before == 2, "none for p's calls; q and r read once, then noted"
    breaker.failed(breaker.admit("p") or pytest.fail())
    before = _round_trips(client)
    breaker.admit("p")
    assert _round_trips(client) - before == 1, "after a failure, every admit asks Redis"


def test_with_fresh_for_zero_every_admit_asks_redis(redis):
    connection = CountingConnection(redis.url)
    breaker = RedisCircuitBreaker(connection, HealthPolicy(), fresh_for=0)
    breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.1)
    connection.trips = 0
    for _ in range(50):
        for name in ("p", "q", "r"):
            breaker.standing(name)
        breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.1)
    assert connection.trips == 50 + 2, "one admit per call; q and r read once, then noted"


# Opens the circuit of "p" from another OS process.
OPENER = textwrap.dedent(
    """
    import sys
    from hypotez_providers.health import HealthPolicy
    from hypotez_providers.state import RedisCircuitBreaker, RedisConnection

    breaker = RedisCircuitBreaker(RedisConnection(sys.argv[1], timeout=1.0), HealthPolicy())
    breaker.failed(breaker.admit("p"), open_now=True)
    assert breaker.admit("p") is None
    """
)


def test_a_circuit_another_process_opens_is_honoured_once_the_note_ages_out(redis):
    breaker = RedisCircuitBreaker(RedisConnection(redis.url), HealthPolicy(), fresh_for=0.3)
    breaker.succeeded(breaker.admit("p") or pytest.fail(), 0.1)
    noted = time.monotonic()
    subprocess.run([sys.executable, "-c", OPENER, redis.url], check=True, cwd=ROOT, timeout=60)
    if time.monotonic() - noted < 0.3:
        assert breaker.admit("p") is not None, "the trade-off: up to fresh_for late"
    time.sleep(max(0.0, noted + 0.3 - time.monotonic()))
    assert breaker.admit("p") is None, "the note aged out: Redis says open"
    assert breaker.admit("p") is None, "an open circuit's note is never trusted"


def test_fresh_for_comes_from_the_state_settings(redis):
    default = shared_breaker(parse_settings(f'[state]\nurl = "{redis.url}"\n'), {})
    assert default is not None and default.fresh_for == 0.25
    settings = parse_settings(f'[state]\nurl = "{redis.url}"\nfresh_for = 0\n')
    breaker = Router(Registry(settings=settings, environ={})).breaker
    assert isinstance(breaker, RedisCircuitBreaker) and breaker.fresh_for == 0


# Redis going away ----------------------------------------------------------------------------


def test_calls_go_on_when_redis_is_killed_and_shared_state_resumes_when_it_is_back(redis, caplog):
    caplog.set_level(logging.WARNING, logger="hypotez_providers.state")
    with FakeOpenAI(models=None) as dead, FakeOpenAI(models=None, reply="alive") as alive:
        settings = parse_settings(settings_text(redis.url, dead.url, alive.url))
        router = Router(Registry(settings=settings, environ={}))
        assert isinstance(router.breaker, RedisCircuitBreaker)
        router.breaker.connection.retry_interval = 0.2
        assert router.complete("m", MESSAGES).provider == "dead"

        redis.stop()
        dead.fail_every_request = Fault(status=500)
        durations = []
        for _ in range(6):
            started = time.monotonic()
            assert router.complete("m", MESSAGES).provider == "alive"
            durations.append(time.monotonic() - started)
        assert max(durations) < 0.5, durations
        assert len(dead.requests) == 2, "the local circuit opened on its first failure"
        warnings = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(warnings) == 1, "logged once"

        redis.start()  # an empty Redis: the dead provider's circuit there is closed
        time.sleep(0.25)
        assert router.complete("m", MESSAGES).provider == "alive"
        assert any("is back" in r.getMessage() for r in caplog.records)
        assert len(dead.requests) == 3, "shared circuits again, not the local one"
        assert router.complete("m", MESSAGES).provider == "alive"
        other = RedisCircuitBreaker(RedisConnection(redis.url), settings.health)
        assert other.admit("dead") is None, "opened on Redis for every process"


def test_a_frozen_redis_delays_a_call_by_at_most_its_timeout(redis):
    with FakeOpenAI(models=None) as fake:
        settings = parse_settings(settings_text(redis.url, fake.url, fake.url))
        router = Router(Registry(settings=settings, environ={}))
        router.complete("m", MESSAGES)
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:
            durations = []
            for _ in range(5):
                started = time.monotonic()
                router.complete("m", MESSAGES)
                durations.append(time.monotonic() - started)
        finally:
            redis.process.send_signal(signal.SIGCONT)
        assert durations[0] < 0.05 + 0.2, "one 50 ms timeout, then memory"
        assert max(durations[1:]) < 0.2, "marked down: no more waiting"


def test_a_permit_from_the_memory_fallback_is_answered_to_it(redis):
    breaker = RedisCircuitBreaker(
        RedisConnection(redis.url, retry_interval=0.0), HealthPolicy(failure_threshold=1)
    )
    redis.stop()
    permit = breaker.admit("p")
    assert permit is not None
    redis.start()
    breaker.failed(permit)
    assert breaker.fallback.health("p").state is CircuitState.OPEN
    assert breaker.health("p").state is CircuitState.CLOSED, "Redis never heard of it"


# Keys ----------------------------------------------------------------------------------------


def test_keys_are_namespaced_and_expire(redis):
    policy = HealthPolicy(cooldown=10, max_cooldown=300, window=60, probe_lease=30)
    connection = RedisConnection(redis.url, namespace="fleet-a")
    breaker = RedisCircuitBreaker(connection, policy)
    breaker.failed(breaker.admit("openai") or pytest.fail())
    keys = sorted(key.decode() for key in connection.client.keys("*"))
    assert keys == ["fleet-a:circuit:openai", "fleet-a:circuit:openai:recent"]
    for key in keys:
        assert 0 < connection.client.pttl(key) <= ttl_ms(policy)
    assert ttl_ms(policy) == 2 * (300 + 60 + 30) * 1000
    other = RedisCircuitBreaker(RedisConnection(redis.url, namespace="fleet-b"), policy)
    assert other.standing("openai") is Standing.READY, "another namespace, another fleet"


# Settings and secrets --------------------------------------------------------------------


def test_the_state_url_comes_from_the_file_or_the_environment_which_wins():
    settings = parse_settings('[state]\nurl = "redis://file:6379/0"\nnamespace = "x"\n')
    assert settings.state.effective_url({}) == "redis://file:6379/0"
    env = {"HYPOTEZ_STATE_URL": "redis://env:6379/1"}
    assert settings.state.effective_url(env) == "redis://env:6379/1"
    assert parse_settings("").state.effective_url({}) is None
    assert shared_connection(parse_settings(""), {}) is None


def test_one_connection_per_process_for_the_same_store(redis):
    settings = parse_settings(f'[state]\nurl = "{redis.url}"\n')
    first = shared_connection(settings, {})
    assert first is not None and shared_connection(settings, {}) is first
    breaker = shared_breaker(settings, {})
    assert breaker is not None and breaker.connection is first


def test_a_bad_state_url_is_a_config_error_that_does_not_show_it():
    from hypotez_providers import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_settings('[state]\nurl = "http://:hunter2@example.com"\n')
    assert "hunter2" not in str(caught.value)
    assert "redis://" in str(caught.value)


def test_the_password_never_shows_in_reprs_errors_or_logs(redis, caplog):
    caplog.set_level(logging.DEBUG)
    RedisConnection(redis.url).client.config_set("requirepass", "secret-pw")
    url = f"redis://:secret-pw@127.0.0.1:{redis.port}/0"
    settings = parse_settings(f'[state]\nurl = "{url}"\n')
    assert "secret-pw" not in repr(settings)
    assert "secret-pw" not in str(settings.model_dump())
    assert "secret-pw" not in settings.model_dump_json()
    assert settings.state.shown_url({}) == f"redis://***@127.0.0.1:{redis.port}/0"
    router = Router(Registry(settings=settings, environ={}))
    assert "secret-pw" not in repr(router.breaker)
    router.breaker.failed(router.breaker.admit("p") or pytest.fail())
    assert router.breaker.connection.client.exists("hypotez:circuit:p"), "authenticated"

    wrong = parse_settings(f'[state]\nurl = "redis://:wrong-pw@127.0.0.1:{redis.port}/0"\n')
    breaker = shared_breaker(wrong, {})
    assert breaker is not None and breaker.admit("p") is not None, "memory took over"
    refused = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert refused == [
        f"Redis at redis://***@127.0.0.1:{redis.port}/0 is unreachable "
        "(AuthenticationError); using this process's memory until it is back"
    ]
    assert "secret-pw" not in caplog.text and "wrong-pw" not in caplog.text
    assert StateSettings().url is None


def test_importing_the_library_does_not_import_redis():
    code = (
        "import sys, hypotez_providers\n"
        "from hypotez_providers import Registry, Router\n"
        "Router(Registry(environ={}))\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr


# Threads -------------------------------------------------------------------------------------


def test_concurrent_callers_on_redis_are_all_counted(redis):
    breaker = RedisCircuitBreaker(
        RedisConnection(redis.url, timeout=2.0),
        HealthPolicy(failure_threshold=3, cooldown=0, min_calls=5, probe_lease=60),
    )
    tallies = {"succeeded": 0, "failed": 0}
    lock = threading.Lock()

    def work(seed: int) -> None:
        for index in range(100):
            permit = breaker.admit("p")
            if permit is None:
                continue
            outcome = "failed" if (index + seed) % 3 == 0 else "succeeded"
            if outcome == "failed":
                breaker.failed(permit)
            else:
                breaker.succeeded(permit, 0.01)
            with lock:
                tallies[outcome] += 1

    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    health = breaker.health("p")
    assert (health.successes, health.failures) == (tallies["succeeded"], tallies["failed"])


# docs/scaling.md -----------------------------------------------------------------------------


def test_the_scaling_page_settings_parse_and_its_example_shares_circuits(redis, tmp_path):
    import re

    page = (ROOT / "docs" / "scaling.md").read_text(encoding="utf-8")
    toml = re.findall(r"```toml\n(.*?)```", page, re.S)[0]  # the [state] table comes first
    state = parse_settings(toml).state
    assert (state.shown_url({}), state.namespace, state.timeout, state.fresh_for) == (
        "redis://redis.internal:6379/0",
        "hypotez",
        0.05,
        0.25,
    )
    example = re.findall(r"```python\n(.*?)```", page, re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(example)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYPOTEZ_")}
    env.update(HYPOTEZ_STATE_URL=redis.url, XDG_CONFIG_HOME=str(tmp_path / "config-home"))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "RedisCircuitBreaker\nTrue\n"
    client = RedisConnection(redis.url).client
    assert not client.exists("hypotez:circuit:gravityengine"), (
        "admitting a healthy one writes nothing"
    )
