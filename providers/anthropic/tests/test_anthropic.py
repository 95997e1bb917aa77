"""The Anthropic provider over real HTTP against a fake Messages API upstream."""

from __future__ import annotations

import threading

import pytest
from hypotez_anthropic import codec

from hypotez_providers import (
    AuthenticationFailed,
    ConnectionFailed,
    MalformedResponse,
    Overloaded,
    RateLimited,
    Registry,
    Router,
    Settings,
    Usage,
    validate_options,
)
from hypotez_providers.testing import Fault
from hypotez_providers.testing.anthropic import FakeAnthropic

KEY = "sk-ant-test-0123456789abcdefgh"
MODEL = "claude-haiku-4-5"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello"},
    {"role": "user", "content": "Are you there?"},
]


@pytest.fixture
def upstream():
    with FakeAnthropic(api_key=KEY) as fake:
        yield fake


def provider_for(upstream, key=KEY):
    registry = Registry(
        settings=Settings(),
        environ={"HYPOTEZ_ANTHROPIC_BASE_URL": upstream.url, "ANTHROPIC_API_KEY": key},
    )
    return registry.provider("anthropic")


def test_metadata_through_the_entry_point():
    info = Registry(environ={}).provider("anthropic").info
    assert (info.url, info.needs_auth, info.api_key_env) == (
        "https://api.anthropic.com",
        True,
        "ANTHROPIC_API_KEY",
    )
    assert MODEL in info.models and info.supports_stream


def test_the_request_moves_system_merges_roles_and_sets_the_headers(upstream):
    provider_for(upstream).complete(MODEL, MESSAGES, stop="END", seed=3, temperature=0.5)
    [request] = upstream.requests
    assert request.path == "/v1/messages"
    assert (request.headers["x-api-key"], request.headers["anthropic-version"]) == (
        KEY,
        "2023-06-01",
    )
    assert request.json == {
        "model": MODEL,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello\n\nAre you there?"}],
        "max_tokens": codec.DEFAULT_MAX_TOKENS,
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }


def test_a_whole_answer_has_text_finish_reason_and_usage(upstream):
    answer = provider_for(upstream).complete(MODEL, MESSAGES, max_tokens=3)
    assert (answer.text, answer.finish_reason) == ("Hello! How can", "length")
    assert answer.usage == Usage(prompt_tokens=6, completion_tokens=3, total_tokens=9)


def test_a_stream_yields_pieces_then_stop_reason_and_usage(upstream):
    chunks = list(provider_for(upstream).stream(MODEL, MESSAGES))
    assert [c.text for c in chunks if c.text] == [
        "Hello!",
        " How",
        " can",
        " I",
        " help",
        " you",
        " today?",
    ]
    assert (chunks[-1].finish_reason, chunks[-1].usage) == (
        "stop",
        Usage(prompt_tokens=6, completion_tokens=7, total_tokens=13),
    )
    assert upstream.requests[0].json["stream"] is True


def test_the_first_piece_arrives_before_the_upstream_sends_the_last(upstream):
    upstream.hold_before_last = threading.Event()
    stream = provider_for(upstream).stream(MODEL, MESSAGES)
    assert next(stream).text == "Hello!"
    assert not upstream.last_chunk_sent.is_set()
    upstream.hold_before_last.set()
    assert "".join(c.text for c in stream) == " How can I help you today?"


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault(status=429, headers={"retry-after": "7"}), RateLimited),
        (Fault(status=529), Overloaded),
        (Fault(error_event_after=2), Overloaded),
        (Fault(truncate_after=2), MalformedResponse),
        (Fault(drop_after=2), ConnectionFailed),
        (Fault(malformed=True), MalformedResponse),
    ],
)
def test_faults_become_typed_errors(upstream, fault, error_type):
    upstream.faults.append(fault)
    with pytest.raises(error_type) as caught:
        list(provider_for(upstream).stream(MODEL, MESSAGES))
    assert caught.value.provider == "anthropic"
    if fault.status == 429:
        assert caught.value.retry_after == 7 and caught.value.retryable
    if fault.status == 529:
        assert caught.value.retryable and caught.value.status == 529


def test_529_is_retried_by_the_router(upstream):
    upstream.faults.append(Fault(status=529))
    registry = Registry(
        settings=Settings(),
        environ={"HYPOTEZ_ANTHROPIC_BASE_URL": upstream.url, "ANTHROPIC_API_KEY": KEY},
    )
    answer = Router(registry, sleep=lambda seconds: None).complete(
        MODEL, MESSAGES, provider="anthropic"
    )
    assert [a.error for a in answer.attempts] == ["Overloaded", None]


def test_a_wrong_key_fails_without_showing_it(upstream):
    wrong = "sk-ant-wrong-key-99999999999"
    provider = provider_for(upstream, key=wrong)
    with pytest.raises(AuthenticationFailed, match="invalid x-api-key") as caught:
        provider.complete(MODEL, MESSAGES)
    assert wrong not in str(caught.value) + repr(provider.context) + repr(provider.settings)


def test_parts_become_blocks_and_images_become_sources():
    body = codec.build_request(
        MODEL,
        [
            {"role": "developer", "content": "Rules."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.example/cat.png"}},
                ],
            },
            {"role": "tool", "content": "42"},
            {"role": "assistant", "content": "Noted."},
        ],
        False,
        validate_options({"frequency_penalty": 1, "extra": {"top_k": 5}}),
    )
    assert body["system"] == "Rules."
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.example/cat.png"}},
        {"type": "text", "text": "42"},
    ]
    assert body["messages"][1] == {"role": "assistant", "content": "Noted."}
    assert body["top_k"] == 5 and "frequency_penalty" not in body


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        (None, None),
    ],
)
def test_stop_reasons_map_to_the_common_vocabulary(stop_reason, expected):
    assert codec.finish_reason(stop_reason) == expected
