"""The gateway's Anthropic side, driven by the official ``anthropic`` client over 127.0.0.1.

The client speaks Anthropic's Messages API to the gateway; behind it are an OpenAI-style
upstream (the answer is translated across vendors) and a fake Anthropic upstream reached
through the first-party anthropic plugin.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import anthropic
import pytest
import requests

from hypotez_providers.testing import FakeAnthropic, FakeOpenAI, Fault
from tests._gateway import Gateway, running_gateway

GATEWAY_KEY = "gw-anthropic-key-93ac1e5b"
UPSTREAM_KEY = "sk-ant-upstream-secret-61f0d2c7"
REPLY = "Bonjour from the OpenAI-style upstream."
CLAUDE_REPLY = "Hello from the Anthropic upstream."
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeOpenAI | FakeAnthropic]]:
    made: dict[str, FakeOpenAI | FakeAnthropic] = {
        "steady": FakeOpenAI(models=None, reply=REPLY),
        "flaky": FakeOpenAI(models=None, reply="from flaky"),
        "breaking": FakeOpenAI(models=None, reply="one two three four five six seven"),
        "slow": FakeOpenAI(models=None, chunk_count=100_000),
        "tools": FakeOpenAI(
            models=None, tool_calls=[{"name": "get_weather", "arguments": '{"city": "Paris"}'}]
        ),
        "claude": FakeAnthropic(models=None, reply=CLAUDE_REPLY, api_key=UPSTREAM_KEY),
    }
    for fake in made.values():
        fake.start()
    yield made
    for fake in made.values():
        fake.stop()


@pytest.fixture(scope="module")
def gateway(
    fakes: dict[str, FakeOpenAI | FakeAnthropic], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    def endpoint(name: str, models: str) -> str:
        return (
            f'[endpoints.{name}]\nbase_url = "{fakes[name].url}/v1"\nmodels = [{models}]\n'
            "tools = true\n"
        )

    config = (
        endpoint("steady", '"gw-model", "gw-backup"')
        + endpoint("flaky", '"gw-backup"')
        + endpoint("breaking", '"gw-breaking"')
        + endpoint("slow", '"gw-slow"')
        + endpoint("tools", '"gw-tools"')
        + f'[providers.anthropic]\nbase_url = "{fakes["claude"].url}"\napi_key = "{UPSTREAM_KEY}"\n'
        + 'models = ["claude-gw"]\n'
        + '[aliases]\nresilient = ["flaky:gw-backup", "steady:gw-backup"]\n'
    )
    tmp = tmp_path_factory.mktemp("gateway-anthropic")
    with running_gateway(tmp, config, HYPOTEZ_GATEWAY_API_KEYS=GATEWAY_KEY) as running:
        yield running


@pytest.fixture
def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)


def test_whole_message_translated_from_an_openai_upstream(
    client: anthropic.Anthropic, fakes: dict
) -> None:
    message = client.messages.create(
        model="gw-model", max_tokens=100, system="Be brief.", messages=HI
    )
    assert message.type == "message" and message.role == "assistant"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == REPLY
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0
    sent = fakes["steady"].requests[-1].json
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, *HI]
    assert sent["max_tokens"] == 100 or sent.get("max_completion_tokens") == 100


def test_whole_message_from_an_anthropic_upstream(client: anthropic.Anthropic, fakes: dict) -> None:
    message = client.messages.create(model="claude-gw", max_tokens=50, messages=HI)
    assert message.content[0].text == CLAUDE_REPLY
    assert fakes["claude"].requests[-1].headers["x-api-key"] == UPSTREAM_KEY


def test_streamed_message_with_the_sdks_own_accumulator(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="gw-model", max_tokens=100, messages=HI) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == REPLY and len(pieces) > 3
    assert final.content[0].text == REPLY
    assert final.stop_reason == "end_turn"


def test_stream_event_order(client: anthropic.Anthropic) -> None:
    events = [
        event.type
        for event in client.messages.create(
            model="claude-gw", max_tokens=50, messages=HI, stream=True
        )
    ]
    assert events[0] == "message_start"
    assert events[1] == "content_block_start"
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[2:-3]) == {"content_block_delta"}


def test_tool_use_round_trip(client: anthropic.Anthropic, fakes: dict) -> None:
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    message = client.messages.create(model="gw-tools", max_tokens=100, messages=HI, tools=[tool])
    [use] = [block for block in message.content if block.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"
    sent = fakes["tools"].requests[-1].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    with client.messages.stream(
        model="gw-tools", max_tokens=100, messages=HI, tools=[tool]
    ) as stream:
        final = stream.get_final_message()
    [streamed] = [block for block in final.content if block.type == "tool_use"]
    assert streamed.input == {"city": "Paris"}
    # The result goes back as a tool_result block; the upstream gets an OpenAI tool message.
    answer = client.messages.create(
        model="gw-tools",
        max_tokens=100,
        tools=[tool],
        messages=[
            *HI,
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 C"}],
            },
        ],
    )
    assert answer.stop_reason == "end_turn"
    sent = fakes["tools"].requests[-1].json["messages"]
    assert sent[-1] == {"role": "tool", "tool_call_id": use.id, "content": "18 C"}


def test_wrong_key_is_anthropics_401(gateway: Gateway) -> None:
    wrong = anthropic.Anthropic(base_url=gateway.url, api_key="gw-wrong-00ffee", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        wrong.messages.create(model="gw-model", max_tokens=10, messages=HI)
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert "x-api-key" in caught.value.body["error"]["message"]
    assert "gw-wrong-00ffee" not in str(caught.value.body)


def test_unknown_model_and_bad_input(client: anthropic.Anthropic, fakes: dict) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model="claude-nonesuch", max_tokens=10, messages=HI)
    assert caught.value.body["error"]["type"] == "not_found_error"
    before = len(fakes["steady"].requests)
    with pytest.raises(anthropic.BadRequestError) as bad:
        client.messages.create(
            model="gw-model", max_tokens=10, messages=[{"role": "robot", "content": "x"}]
        )
    assert bad.value.body["error"]["type"] == "invalid_request_error"
    assert "messages.0.role" in bad.value.body["error"]["message"]
    assert len(fakes["steady"].requests) == before


def test_failover_behind_an_alias(client: anthropic.Anthropic, fakes: dict) -> None:
    fakes["flaky"].faults.extend([Fault(status=503)] * 3)
    raw = client.messages.with_raw_response.create(model="resilient", max_tokens=10, messages=HI)
    assert raw.parse().content[0].text == REPLY
    assert raw.headers["x-hypotez-provider"] == "steady"


def test_failure_mid_stream_is_an_error_event(client: anthropic.Anthropic, fakes: dict) -> None:
    fakes["breaking"].faults.append(Fault(drop_after=3))
    received = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="gw-breaking", max_tokens=10, messages=HI) as stream,
    ):
        for text in stream.text_stream:
            received.append(text)
    assert received
    assert "breaking" in str(caught.value)


def test_every_provider_rate_limited_is_429_with_retry_after(gateway: Gateway, fakes: dict) -> None:
    fakes["breaking"].faults.extend([Fault(status=429, headers={"Retry-After": "45"})] * 3)
    answer = requests.post(
        gateway.url + "/v1/messages",
        json={"model": "gw-breaking", "max_tokens": 10, "messages": HI},
        headers={"x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert answer.status_code == 429, answer.text
    assert answer.headers["Retry-After"] == "45"  # over max_retry_after: not waited out
    assert answer.json()["error"]["type"] == "rate_limit_error"


def test_client_disconnect_closes_the_upstream(client: anthropic.Anthropic, fakes: dict) -> None:
    slow = fakes["slow"]
    slow.faults.append(Fault(trickle=0.0005))
    with client.messages.stream(model="gw-slow", max_tokens=10, messages=HI) as stream:
        for count, _ in enumerate(stream.text_stream):
            if count == 3:
                break
        assert slow.open_connections() == 1
    deadline = time.monotonic() + 3
    while slow.open_connections() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert slow.open_connections() == 0


def test_concurrent_streams(gateway: Gateway) -> None:
    texts: list[str] = []
    errors: list[Exception] = []

    def one() -> None:
        try:
            local = anthropic.Anthropic(base_url=gateway.url, api_key=GATEWAY_KEY, max_retries=0)
            with local.messages.stream(model="claude-gw", max_tokens=10, messages=HI) as stream:
                texts.append("".join(stream.text_stream))
        except (anthropic.AnthropicError, OSError) as error:
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors and texts == [CLAUDE_REPLY] * 16


def test_no_secret_in_answers_or_logs(gateway: Gateway, fakes: dict) -> None:
    fakes["claude"].faults.append(
        Fault(
            status=401,
            body=f'{{"type": "error", "error": {{"type": "authentication_error", "message": "invalid x-api-key {UPSTREAM_KEY}"}}}}',
        )
    )
    answer = requests.post(
        gateway.url + "/v1/messages",
        json={"model": "claude-gw", "max_tokens": 10, "messages": HI},
        headers={"x-api-key": GATEWAY_KEY},
        timeout=30,
    )
    assert answer.status_code == 502
    for secret in (UPSTREAM_KEY, GATEWAY_KEY, UPSTREAM_KEY[-8:], GATEWAY_KEY[-8:]):
        assert secret not in answer.text
        assert secret not in gateway.log_text()
