"""Rate limits per provider: the sliding window, the router skipping a provider at its limit,
429s and tokens feeding the limiter, and an rpm held across processes on a real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hypotez_providers import Registry, Router, Usage
from hypotez_providers.rate_limits import (
    Held,
    MemoryRateLimiter,
    RateLimiter,
    RateLimits,
    limits_of,
)
from hypotez_providers.settings import parse_settings
from hypotez_providers.state.connection import RedisConnection
from hypotez_providers.state.redis_limits import RedisRateLimiter
from hypotez_providers.testing import FakeOpenAI, Fault
from hypotez_providers.testing.server import FakeUpstream
from tests._gateway import running_gateway
from tests._redis import RedisServer, running_redis

MODEL = "m"
HI = [{"role": "user", "content": "hi"}]


class Clock:
    """Injected wall time for the memory limiter."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with running_redis(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def limiter(request: pytest.FixtureRequest) -> Iterator[RateLimiter]:
    """Each implementation, fresh (a namespace of its own on the shared test Redis)."""
    if request.param == "memory":
        yield MemoryRateLimiter()
        return
    server = request.getfixturevalue("redis_server")
    connection = RedisConnection(server.url, namespace=f"t{id(request)}", timeout=1.0)
    yield RedisRateLimiter(connection)
    connection.close()


def _seen(held: Held | None) -> tuple[str, int, float] | None:
    return None if held is None else (held.limit, held.value, round(held.wait, 6))


# -- the window -------------------------------------------------------------------------------


def test_no_settings_means_no_limits_and_no_limiter_asked() -> None:
    assert limits_of(None, None) is None
    assert limits_of(6, None) == RateLimits(rpm=6)


def test_rpm_admits_that_many_then_says_which_limit_and_when(limiter: RateLimiter) -> None:
    limits = RateLimits(rpm=2)
    assert limiter.acquire("p", limits) is None
    assert limiter.acquire("p", limits) is None
    held = limiter.acquire("p", limits)
    assert held is not None and (held.limit, held.value) == ("rpm", 2)
    assert 59 < held.wait <= 60
    assert held.reason.startswith("rate limit: rpm 2 reached; a slot frees in ")
    assert limiter.usage("p", limits) == 1.0
    assert limiter.acquire("other", limits) is None  # per provider


def test_a_refused_request_takes_no_slot(limiter: RateLimiter) -> None:
    limits = RateLimits(rpm=1)
    assert limiter.acquire("p", limits) is None
    for _ in range(5):
        assert limiter.acquire("p", limits) is not None
    assert limiter.usage("p", limits) == 1.0


def test_tokens_used_in_the_window_hold_the_next_request(limiter: RateLimiter) -> None:
    limits = RateLimits(rpm=100, tpm=50)
    assert limiter.acquire("p", limits) is None
    limiter.add_tokens("p", limits, 30)
    assert limiter.usage("p", limits) == pytest.approx(0.6)
    assert limiter.acquire("p", limits) is None  # 30 < 50: the cost of a call is not known
    limiter.add_tokens("p", limits, 30)
    held = limiter.acquire("p", limits)
    assert held is not None and (held.limit, held.value) == ("tpm", 50)
    assert limiter.usage("p", limits) == pytest.approx(1.2)


def test_a_429_holds_the_provider_for_the_longest_wait_asked(limiter: RateLimiter) -> None:
    limits = RateLimits(rpm=100)
    limiter.penalise("p", 2.0)
    limiter.penalise("p", 0.5)  # a shorter ask does not shorten the hold
    held = limiter.acquire("p", limits)
    assert held is not None and held.limit == "429" and 1.5 < held.wait <= 2.0
    assert "answered 429" in held.reason
    assert limiter.usage("p", limits) == 1.0


def test_the_window_slides_a_slot_frees_60s_after_its_request() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = RateLimits(rpm=2)
    assert limiter.acquire("p", limits) is None
    clock.now += 30
    assert limiter.acquire("p", limits) is None
    clock.now += 20
    assert _seen(limiter.acquire("p", limits)) == ("rpm", 2, 10.0)
    clock.now += 10  # the first request leaves the window; the second stays 30 s more
    assert limiter.acquire("p", limits) is None
    assert _seen(limiter.acquire("p", limits)) == ("rpm", 2, 30.0)


def test_tokens_leave_the_window_and_the_wait_says_when_enough_have() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limits = RateLimits(tpm=100)
    limiter.add_tokens("p", limits, 60)
    clock.now += 10
    limiter.add_tokens("p", limits, 60)
    assert _seen(limiter.acquire("p", limits)) == ("tpm", 100, 50.0)
    clock.now += 50  # the first 60 left: 60 remain, under 100
    assert limiter.acquire("p", limits) is None
    assert limiter.usage("p", limits) == pytest.approx(0.6)


def test_a_penalty_ends_on_time() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    limiter.penalise("p", 3.0)
    assert _seen(limiter.acquire("p", RateLimits(rpm=5))) == ("429", 0, 3.0)
    clock.now += 3.0
    assert limiter.acquire("p", RateLimits(rpm=5)) is None


# -- the router over real HTTP ----------------------------------------------------------------


def _endpoints(first: FakeUpstream, second: FakeUpstream, limits: str) -> str:
    return (
        f'[endpoints.first]\nbase_url = "{first.url}/v1"\nmodels = ["{MODEL}"]\npriority = 1\n'
        f"{limits}\n"
        f'[endpoints.second]\nbase_url = "{second.url}/v1"\nmodels = ["{MODEL}"]\n'
    )


def _router(config: str, limiter: RateLimiter | None = None) -> Router:
    registry = Registry(settings=parse_settings(config), load_entry_points=False, environ={})
    return Router(registry, limiter=limiter, sleep=lambda seconds: None)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_provider_at_its_rpm_is_skipped_and_the_attempts_say_why(streamed: bool) -> None:
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, "rpm = 2"))
        answered = []
        for _ in range(3):
            if streamed:
                stream = router.stream(MODEL, HI)
                list(stream)
                answered.append((stream.provider, stream.attempts))
            else:
                answer = router.complete(MODEL, HI)
                answered.append((answer.provider, list(answer.attempts)))
    assert [provider for provider, _ in answered] == ["first", "first", "second"]
    skipped, served = answered[2][1]
    assert (skipped.provider, skipped.outcome, skipped.error) == ("first", "skipped", "RateLimited")
    assert skipped.message is not None
    assert skipped.message.startswith("rate limit: rpm 2 reached; a slot frees in ")
    assert skipped.retry_after is not None and 59 < skipped.retry_after <= 60
    assert (served.provider, served.outcome) == ("second", "ok")
    assert (len(first.requests), len(second.requests)) == (2, 1)
    assert router.breaker.health("first").state.value == "closed"  # a limit is no failure


def test_a_429_with_retry_after_holds_the_provider_for_that_long() -> None:
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, "rpm = 100"))
        first.faults.append(Fault(status=429, headers={"Retry-After": "7"}))
        answer = router.complete(MODEL, HI, max_attempts=1)
        assert answer.provider == "second"
        held = router.limiter.acquire("first", RateLimits(rpm=100))
        assert held is not None and held.limit == "429" and 6 < held.wait <= 7
        assert len(first.requests) == 1


def test_a_retry_in_place_takes_a_slot_too_or_moves_on() -> None:
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, "rpm = 2"))
        first.faults.append(Fault(status=500))
        assert router.complete(MODEL, HI, max_attempts=2).provider == "first"  # 500, then ok
        answer = router.complete(MODEL, HI)
        assert answer.provider == "second"  # the retry used the second slot
        assert len(first.requests) == 2
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, "rpm = 1"))
        first.faults.append(Fault(status=500))
        answer = router.complete(MODEL, HI, max_attempts=3)
        assert answer.provider == "second"
        assert [(a.provider, a.outcome, a.error) for a in answer.attempts] == [
            ("first", "failed", "ServerError"),
            ("first", "skipped", "RateLimited"),
            ("second", "ok", None),
        ]
        assert len(first.requests) == 1


def test_a_provider_without_limits_never_reaches_the_limiter() -> None:
    class Refusing:
        def acquire(self, provider: str, limits: RateLimits) -> Held | None:
            raise AssertionError("asked about a provider without limits")

        add_tokens = penalise = usage = acquire

    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, ""), limiter=Refusing())  # type: ignore[arg-type]
        first.faults.append(Fault(status=429, headers={"Retry-After": "1"}))
        assert router.complete(MODEL, HI, max_attempts=1).provider == "second"
        assert list(router.stream(MODEL, HI))


@pytest.mark.parametrize("streamed", [False, True])
def test_tokens_are_charged_from_the_answers_usage(streamed: bool) -> None:
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        router = _router(_endpoints(first, second, "tpm = 8"))
        used: Usage | None
        if streamed:
            stream = router.stream(MODEL, HI)
            chunks = list(stream)
            used = next(chunk.usage for chunk in reversed(chunks) if chunk.usage)
            assert stream.provider == "first"
        else:
            answer = router.complete(MODEL, HI)
            used = answer.usage
            assert answer.provider == "first"
        assert used is not None and used.total_tokens == 8  # the fake's reply: 1 + 7 tokens
        assert router.limiter.usage("first", RateLimits(tpm=8)) == 1.0
        answer = router.complete(MODEL, HI)
        assert answer.provider == "second"
        assert answer.attempts[0].message is not None
        assert answer.attempts[0].message.startswith("rate limit: tpm 8 reached")


def test_a_stream_closed_early_still_charges_what_it_reported() -> None:
    with FakeOpenAI(models=None, reply="one two three") as first, FakeOpenAI() as second:
        router = _router(_endpoints(first, second, "tpm = 1000"))
        stream = router.stream(MODEL, HI)
        next(iter(stream))
        stream.close()  # no usage arrived: nothing to charge, nothing leaked
        assert router.limiter.usage("first", RateLimits(tpm=1000)) == 0.0
        list(router.stream(MODEL, HI))
        assert router.limiter.usage("first", RateLimits(tpm=1000)) > 0.0


def test_the_gateway_answers_429_with_the_shortest_wait_when_every_provider_is_limited(
    tmp_path: Path,
) -> None:
    with FakeOpenAI(models=None) as first, FakeOpenAI(models=None) as second:
        config = _endpoints(first, second, "").replace(
            f'models = ["{MODEL}"]\n', f'models = ["{MODEL}"]\nrpm = 1\n'
        )
        # One worker: without a [state] url each worker process counts on its own.
        with running_gateway(tmp_path, config, args=("--workers", "1")) as gateway:

            def ask() -> requests.Response:
                return requests.post(
                    gateway.url + "/v1/chat/completions",
                    json={"model": MODEL, "messages": HI},
                    timeout=10,
                )

            assert [ask().status_code for _ in range(2)] == [200, 200]
            refused = ask()
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 55 <= int(refused.headers["Retry-After"]) <= 60
    assert "rate limit: rpm 1 reached" in refused.json()["error"]["message"]
    assert (len(first.requests), len(second.requests)) == (1, 1)


# -- across processes on Redis ----------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import json, sys
    from hypotez_providers import Registry, Router
    from hypotez_providers.settings import parse_settings

    config, calls = sys.argv[1], int(sys.argv[2])
    registry = Registry(settings=parse_settings(config), load_entry_points=False, environ={})
    router = Router(registry)  # [state] url: the limiter is on Redis
    assert type(router.limiter).__name__ == "RedisRateLimiter"
    seen = []
    for _ in range(calls):
        answer = router.complete("m", [{"role": "user", "content": "hi"}])
        seen.append([answer.provider, [a.message for a in answer.attempts if a.message]])
    print(json.dumps(seen))
    """
)


def _workers(config: str, count: int, calls: int) -> list[subprocess.Popen[str]]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, config, str(calls)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


def test_an_rpm_of_6_holds_across_two_processes_of_10_calls(tmp_path: Path) -> None:
    with (
        running_redis(tmp_path) as server,
        FakeOpenAI(models=None) as first,
        FakeOpenAI(models=None) as second,
    ):
        config = _endpoints(first, second, "rpm = 6") + f'[state]\nurl = "{server.url}"\n'
        workers = _workers(config, 2, 10)
        results = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers)
    calls = [call for result in results for call in result]
    assert len(calls) == 20
    assert len(first.requests) == 6  # across both processes, within the minute
    assert len(second.requests) == 14
    skipped = [call for call in calls if call[0] == "second"]
    assert all(call[1][0].startswith("rate limit: rpm 6 reached") for call in skipped)


def test_calls_are_answered_when_redis_is_killed_mid_run(tmp_path: Path) -> None:
    with (
        running_redis(tmp_path) as server,
        FakeOpenAI(models=None) as first,
        FakeOpenAI(models=None) as second,
    ):
        connection = RedisConnection(server.url, timeout=0.05)
        router = _router(_endpoints(first, second, "rpm = 3"), RedisRateLimiter(connection))
        assert [router.complete(MODEL, HI).provider for _ in range(2)] == ["first"] * 2
        server.stop()
        # Memory takes over, counting from zero in this process: held to 3 again, not lost.
        providers = [router.complete(MODEL, HI).provider for _ in range(5)]
        assert providers == ["first"] * 3 + ["second"] * 2
        server.start()
        connection = RedisConnection(server.url, timeout=1.0)
        restarted = _router(_endpoints(first, second, "rpm = 3"), RedisRateLimiter(connection))
        assert restarted.complete(MODEL, HI).provider == "first"  # a fresh Redis, a fresh window


def test_the_scaling_page_rate_limit_settings_parse() -> None:
    import re

    page = (Path(__file__).resolve().parent.parent / "docs" / "scaling.md").read_text()
    section = page.split("## Rate limits", 1)[1]
    settings = parse_settings(re.findall(r"```toml\n(.*?)```", section, re.S)[0])
    assert (settings.providers["openai"].rpm, settings.providers["openai"].tpm) == (500, 200000)
    assert settings.endpoints["groq"].provider_settings().rpm == 30
