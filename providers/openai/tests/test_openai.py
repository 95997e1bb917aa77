"""The OpenAI provider over real HTTP against a fake OpenAI upstream."""

from __future__ import annotations

import pytest

from hypotez_providers import AuthenticationFailed, RateLimited, Registry, Router, Usage
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI, Fault

KEY = "sk-proj-test-0123456789abcdefgh"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]


@pytest.fixture
def upstream():
    with FakeOpenAI(api_key=KEY, models=["gpt-4o-mini"]) as fake:
        yield fake


def registry_for(upstream, settings="", **environ):
    environ.setdefault("OPENAI_API_KEY", KEY)
    environ["HYPOTEZ_OPENAI_BASE_URL"] = upstream.url + "/v1"
    return Registry(settings=parse_settings(settings), environ=environ)


def test_metadata_through_the_entry_point():
    info = Registry(environ={}).provider("openai").info
    assert (info.url, info.needs_auth, info.api_key_env) == (
        "https://api.openai.com/v1",
        True,
        "OPENAI_API_KEY",
    )
    assert "gpt-4o-mini" in info.models and info.supports_stream


def test_request_carries_bearer_key_account_headers_and_max_completion_tokens(upstream):
    settings = '[providers.openai]\norganization = "org-1"\nproject = "proj_2"\n'
    answer = (
        registry_for(upstream, settings)
        .provider("openai")
        .complete("gpt-4o-mini", MESSAGES, max_tokens=3, temperature=0.3)
    )
    [request] = upstream.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert (request.headers["openai-organization"], request.headers["openai-project"]) == (
        "org-1",
        "proj_2",
    )
    assert request.json["max_completion_tokens"] == 3 and "max_tokens" not in request.json
    assert request.json["temperature"] == 0.3
    assert (answer.text, answer.finish_reason) == ("Hello! How can", "length")


def test_streaming_reports_usage(upstream):
    chunks = list(registry_for(upstream).provider("openai").stream("gpt-4o-mini", MESSAGES))
    assert upstream.requests[0].json["stream_options"] == {"include_usage": True}
    assert "".join(c.text for c in chunks) == upstream.reply
    assert chunks[-1].usage == Usage(prompt_tokens=4, completion_tokens=7, total_tokens=11)


def test_without_a_key_the_router_skips_it_and_says_which_variable(upstream):
    registry = registry_for(upstream, OPENAI_API_KEY="")
    with pytest.raises(Exception) as caught:
        Router(registry).complete("gpt-4o-mini", MESSAGES, provider="openai")
    assert "no API key: set OPENAI_API_KEY" in str(caught.value)
    assert upstream.requests == []


def test_a_wrong_key_fails_without_showing_it(upstream):
    wrong = "sk-proj-wrong-key-999999999999"
    with pytest.raises(AuthenticationFailed) as caught:
        registry_for(upstream, OPENAI_API_KEY=wrong).provider("openai").complete(
            "gpt-4o-mini", MESSAGES
        )
    assert wrong not in str(caught.value)


def test_a_rate_limit_is_typed_with_its_retry_after(upstream):
    upstream.faults.append(Fault(status=429, headers={"retry-after-ms": "750"}))
    with pytest.raises(RateLimited) as caught:
        registry_for(upstream).provider("openai").complete("gpt-4o-mini", MESSAGES)
    assert caught.value.retry_after == 0.75
