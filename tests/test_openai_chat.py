"""The core's OpenAI chat codec, through an in-process plugin, over real HTTP."""

from __future__ import annotations

import pytest

from hypotez_providers import (
    AuthenticationFailed,
    MalformedResponse,
    ProviderInfo,
    Registry,
    Settings,
    hookimpl,
    openai_chat,
)
from hypotez_providers.results import Usage
from hypotez_providers.sse import SSEEvent
from hypotez_providers.testing import FakeOpenAI

KEY = "sk-proj-abcdefghijklmnop0123"
MESSAGES = [{"role": "user", "content": "two words"}]


class KeyedProvider:
    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="keyed",
            url="https://api.example",
            models=["gpt-4o-mini"],
            supports_stream=True,
            needs_auth=True,
            api_key_env="KEYED_API_KEY",
        )

    @hookimpl
    def create_completion(self, model, messages, stream, options, context):
        return openai_chat.chat_completion(
            context, model, messages, stream, options, include_usage=True, headers={"X-Trace": "t1"}
        )


@pytest.fixture
def upstream():
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def keyed(upstream, key=KEY):
    registry = Registry(
        settings=Settings(),
        load_entry_points=False,
        environ={"KEYED_API_KEY": key, "HYPOTEZ_KEYED_BASE_URL": upstream.url},
    )
    return registry.register(KeyedProvider())


def test_the_key_goes_as_a_bearer_header_with_extra_headers(upstream):
    keyed(upstream).complete("gpt-4o-mini", MESSAGES)
    headers = upstream.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-trace"] == "t1"


def test_streaming_with_usage_ends_with_a_usage_chunk(upstream):
    chunks = list(keyed(upstream).stream("gpt-4o-mini", MESSAGES))
    assert upstream.requests[0].json["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage == Usage(prompt_tokens=2, completion_tokens=7, total_tokens=9)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(upstream):
    wrong = "sk-proj-wrongwrongwrong9999"
    with pytest.raises(AuthenticationFailed, match="Incorrect API key") as caught:
        keyed(upstream, key=wrong).complete("gpt-4o-mini", MESSAGES)
    assert wrong not in str(caught.value)
    provider = keyed(upstream, key=wrong)
    assert wrong not in repr(provider) + repr(provider.context) + repr(provider.settings)


def test_a_body_without_choices_is_malformed():
    with pytest.raises(MalformedResponse, match="choices"):
        openai_chat.parse_response("p", {"id": "x"})


def test_a_stream_ending_after_the_finish_reason_but_before_done_is_complete():
    events = [
        SSEEvent('{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}'),
        SSEEvent('{"choices":[{"delta":{},"finish_reason":"stop"}]}'),
    ]
    assert [c.text for c in openai_chat.parse_stream("p", events)] == ["hi", ""]


def test_rate_limit_and_overload_errors_inside_a_stream_are_typed():
    for kind, name in (("rate_limit_exceeded", "RateLimited"), ("overloaded_error", "Overloaded")):
        events = [SSEEvent(f'{{"error": {{"message": "slow down", "type": "{kind}"}}}}')]
        with pytest.raises(Exception) as caught:
            list(openai_chat.parse_stream("p", events))
        assert type(caught.value).__name__ == name and caught.value.retryable
