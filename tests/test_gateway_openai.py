"""The gateway's OpenAI side, driven by the official ``openai`` client over 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests

from hypotez_providers.testing import FakeOpenAI, Fault
from tests._gateway import Gateway, running_gateway

GATEWAY_KEY = "gw-test-key-7d1f0c2a9b"
UPSTREAM_KEY = "sk-upstream-secret-4b8e2f61a0c9"
REPLY = "Hello from the steady upstream, word by word."


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeOpenAI]]:
    made = {
        "steady": FakeOpenAI(models=None, reply=REPLY, api_key=UPSTREAM_KEY),
        "flaky": FakeOpenAI(models=None, reply="from flaky"),
        "breaking": FakeOpenAI(models=None, reply="one two three four five six seven"),
        "slow": FakeOpenAI(models=None, chunk_count=100_000),
        "tools": FakeOpenAI(
            models=None,
            tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}],
        ),
    }
    for fake in made.values():
        fake.start()
    yield made
    for fake in made.values():
        fake.stop()


def _config(fakes: dict[str, FakeOpenAI], extra: str = "") -> str:
    def endpoint(name: str, models: str, more: str = "") -> str:
        return (
            f'[endpoints.{name}]\nbase_url = "{fakes[name].url}/v1"\nmodels = [{models}]\n'
            f"tools = true\nstructured_output = true\n{more}\n"
        )

    return (
        endpoint("steady", '"gw-model", "gw-backup"', f'api_key = "{UPSTREAM_KEY}"')
        + endpoint("flaky", '"gw-backup"')
        + endpoint("breaking", '"gw-breaking"')
        + endpoint("slow", '"gw-slow"')
        + endpoint("tools", '"gw-tools"')
        + '[aliases]\nresilient = ["flaky:gw-backup", "steady:gw-backup"]\n'
        + extra
    )


@pytest.fixture(scope="module")
def gateway(
    fakes: dict[str, FakeOpenAI], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    with running_gateway(tmp, _config(fakes), HYPOTEZ_GATEWAY_API_KEYS=GATEWAY_KEY) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)


HI = [{"role": "user", "content": "hi"}]


def test_whole_answer_in_openais_shape(client: openai.OpenAI, fakes: dict[str, FakeOpenAI]) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gw-model", messages=HI)
    answer = raw.parse()
    assert answer.choices[0].message.content == REPLY
    assert answer.choices[0].finish_reason == "stop"
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-")
    assert answer.usage is not None and answer.usage.total_tokens > 0
    assert raw.headers["x-hypotez-provider"] == "steady"
    sent = fakes["steady"].requests[-1]
    assert sent.json["messages"] == HI
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"  # the upstream's key, not ours


def test_streamed_answer_arrives_in_pieces_with_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gw-model", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(texts) == REPLY
    assert len(texts) > 3  # streamed, not one lump
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_models_lists_models_and_aliases(client: openai.OpenAI) -> None:
    listed = {model.id: model.owned_by for model in client.models.list()}
    assert listed["gw-model"] == "steady"
    assert listed["resilient"] == "alias"
    assert "gw-slow" in listed


def test_wrong_or_missing_key_is_401_and_never_echoed(gateway: Gateway) -> None:
    wrong = "gw-wrong-key-0000aaaa"
    with pytest.raises(openai.AuthenticationError) as caught:
        openai.OpenAI(base_url=gateway.url + "/v1", api_key=wrong, max_retries=0).models.list()
    assert caught.value.status_code == 401
    assert wrong not in str(caught.value.body) and GATEWAY_KEY not in str(caught.value.body)
    bare = requests.post(gateway.url + "/v1/chat/completions", json={"model": "gw-model"})
    assert bare.status_code == 401
    assert bare.json()["error"]["type"] == "authentication_error"
    assert "Authorization: Bearer" in bare.json()["error"]["message"]


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="gw-nonesuch", messages=HI)
    assert "gw-nonesuch" in caught.value.message


def test_bad_input_is_400_naming_the_field(
    client: openai.OpenAI, fakes: dict[str, FakeOpenAI]
) -> None:
    before = len(fakes["steady"].requests)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gw-model", messages=HI, temperature=7)
    assert "temperature" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gw-model", messages=[{"role": "wizard", "content": "x"}]
        )
    assert "role" in caught.value.message
    assert len(fakes["steady"].requests) == before  # nothing was sent upstream


def test_failover_behind_an_alias(client: openai.OpenAI, fakes: dict[str, FakeOpenAI]) -> None:
    fakes["flaky"].faults.extend([Fault(status=500)] * 3)
    raw = client.chat.completions.with_raw_response.create(model="resilient", messages=HI)
    assert raw.parse().choices[0].message.content == REPLY
    assert raw.headers["x-hypotez-provider"] == "steady"
    assert int(raw.headers["x-hypotez-attempts"]) >= 2


def test_failure_mid_stream_is_an_error_never_a_clean_end(
    client: openai.OpenAI, fakes: dict[str, FakeOpenAI]
) -> None:
    fakes["breaking"].faults.append(Fault(drop_after=3))
    stream = client.chat.completions.create(model="gw-breaking", messages=HI, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received  # the first pieces arrived before the break
    assert "breaking" in str(caught.value)


def test_all_providers_failing_is_502_listing_each_attempt(
    client: openai.OpenAI, fakes: dict[str, FakeOpenAI]
) -> None:
    fakes["breaking"].faults.extend([Fault(status=400, body='{"error": {"message": "nope"}}')])
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gw-breaking", messages=HI)
    fakes["breaking"].faults.extend([Fault(status=404)] * 2)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gw-breaking", messages=HI)
    assert caught.value.status_code == 502
    assert "breaking (gw-breaking): failed, NotFound, HTTP 404" in caught.value.message


def test_client_disconnect_closes_the_upstream_stream(
    client: openai.OpenAI, fakes: dict[str, FakeOpenAI]
) -> None:
    slow = fakes["slow"]
    slow.faults.append(Fault(trickle=0.0005))
    stream = client.chat.completions.create(model="gw-slow", messages=HI, stream=True)
    for count, _ in enumerate(stream):
        if count == 3:
            break
    assert slow.open_connections() == 1
    stream.close()
    deadline = time.monotonic() + 3
    while slow.open_connections() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.open_connections() == 0


def test_concurrent_streams(gateway: Gateway) -> None:
    results: list[str] = []
    errors: list[Exception] = []

    def one() -> None:
        try:
            local = openai.OpenAI(base_url=gateway.url + "/v1", api_key=GATEWAY_KEY, max_retries=0)
            stream = local.chat.completions.create(model="gw-model", messages=HI, stream=True)
            results.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
        except (openai.OpenAIError, OSError) as error:
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert results == [REPLY] * 24


def test_tool_calls_pass_through(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    answer = client.chat.completions.create(model="gw-tools", messages=HI, tools=[tool])
    [call] = answer.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather" and call.function.arguments == '{"city": "Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    stream = client.chat.completions.create(
        model="gw-tools", messages=HI, tools=[tool], stream=True
    )
    arguments = ""
    names = []
    for chunk in stream:
        for piece in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments += piece.function.arguments or "" if piece.function else ""
            if piece.function and piece.function.name:
                names.append(piece.function.name)
    assert names == ["get_weather"] and arguments == '{"city": "Paris"}'


def test_timeout_header_bounds_the_call(gateway: Gateway, fakes: dict[str, FakeOpenAI]) -> None:
    fakes["slow"].faults.append(Fault(delay=5))
    started = time.monotonic()
    answer = requests.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gw-slow", "messages": HI},
        headers={"Authorization": f"Bearer {GATEWAY_KEY}", "X-Hypotez-Timeout": "0.5"},
        timeout=10,
    )
    assert time.monotonic() - started < 2.5
    assert answer.status_code == 504, answer.text
    bad = requests.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gw-slow", "messages": HI},
        headers={"Authorization": f"Bearer {GATEWAY_KEY}", "X-Hypotez-Timeout": "-1"},
        timeout=10,
    )
    assert bad.status_code == 400 and "x-hypotez-timeout" in bad.json()["error"]["message"]


def test_health_endpoints(gateway: Gateway) -> None:
    assert requests.get(gateway.url + "/health", timeout=5).json() == {"status": "ok"}
    providers = requests.get(
        gateway.url + "/health/providers",
        headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
        timeout=5,
    ).json()["providers"]
    assert {"steady", "flaky"} <= {entry["provider"] for entry in providers}
    assert requests.get(gateway.url + "/health/providers", timeout=5).status_code == 401


def test_no_secret_in_any_answer_or_log_line(
    gateway: Gateway, fakes: dict[str, FakeOpenAI]
) -> None:
    fakes["steady"].faults.append(
        Fault(
            status=401,
            body=f'{{"error": {{"message": "Incorrect API key provided: {UPSTREAM_KEY}"}}}}',
        )
    )
    answer = requests.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gw-model", "messages": HI},
        headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 502
    for secret in (UPSTREAM_KEY, GATEWAY_KEY, UPSTREAM_KEY[-8:], GATEWAY_KEY[-8:]):
        assert secret not in answer.text
        assert secret not in gateway.log_text()


def test_limits_shed_and_refuse(fakes: dict[str, FakeOpenAI], tmp_path: Path) -> None:
    config = _config(fakes, "[gateway]\nmax_concurrency = 1\nmax_body = 2048\n")
    with running_gateway(tmp_path, config) as small:
        big = requests.post(
            small.url + "/v1/chat/completions",
            json={"model": "gw-model", "messages": [{"role": "user", "content": "x" * 5000}]},
            timeout=10,
        )
        assert big.status_code == 413 and "max_body" in big.json()["error"]["message"]
        fakes["slow"].faults.append(Fault(delay=2))
        held = threading.Thread(
            target=requests.post,
            args=(small.url + "/v1/chat/completions",),
            kwargs={"json": {"model": "gw-slow", "messages": HI}, "timeout": 10},
        )
        held.start()
        time.sleep(0.5)
        shed = requests.post(
            small.url + "/v1/chat/completions",
            json={"model": "gw-model", "messages": HI},
            timeout=10,
        )
        held.join()
        assert shed.status_code == 503
        assert shed.headers["Retry-After"] == "1"
        after = requests.post(
            small.url + "/v1/chat/completions",
            json={"model": "gw-model", "messages": HI},
            timeout=10,
        )
        assert after.status_code == 200  # the slot came back


def test_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests._gateway import clean_environ

    done = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "serve", "--host", "0.0.0.0", "--port", "0"],
        env=clean_environ(tmp_path),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert "without API keys" in done.stderr and "HYPOTEZ_GATEWAY_API_KEYS" in done.stderr


def _samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_count_calls_attempts_and_fallbacks(
    client: openai.OpenAI, gateway: Gateway, fakes: dict[str, FakeOpenAI]
) -> None:
    fakes["flaky"].faults.extend([Fault(status=500)] * 3)
    client.chat.completions.create(model="resilient", messages=HI)
    list(client.chat.completions.create(model="gw-model", messages=HI, stream=True))
    scrape = requests.get(
        gateway.url + "/metrics", headers={"Authorization": f"Bearer {GATEWAY_KEY}"}, timeout=5
    )
    assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain")
    calls = _samples(scrape.text, "hypotez_calls_total")
    assert calls[(("outcome", "ok"), ("protocol", "openai"), ("stream", "true"))] >= 1
    failures = _samples(scrape.text, "hypotez_failures_total")
    assert failures[(("kind", "ServerError"), ("provider", "flaky"))] >= 1
    fallbacks = _samples(scrape.text, "hypotez_fallbacks_total")
    assert fallbacks[(("from_provider", "flaky"), ("to_provider", "steady"))] >= 1
    first = _samples(scrape.text, "hypotez_time_to_first_chunk_seconds_count")
    assert first[(("provider", "steady"),)] >= 1
    assert requests.get(gateway.url + "/metrics", timeout=5).status_code == 401


def test_several_workers_share_one_metrics_view(
    fakes: dict[str, FakeOpenAI], tmp_path: Path
) -> None:
    with running_gateway(tmp_path, _config(fakes), args=("--workers", "2")) as pair:
        for _ in range(12):
            answer = requests.post(
                pair.url + "/v1/chat/completions",
                json={"model": "gw-model", "messages": HI},
                headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},  # no gateway keys here
                timeout=10,
            )
            assert answer.status_code == 200
        totals = [
            sum(
                _samples(
                    requests.get(pair.url + "/metrics", timeout=5).text, "hypotez_calls_total"
                ).values()
            )
            for _ in range(4)
        ]
    assert totals == [12.0] * 4  # whichever worker answers the scrape, it counts both
