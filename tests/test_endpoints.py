"""OpenAI-compatible endpoints declared in the settings become providers."""

from __future__ import annotations

import pytest

from hypotez_providers import ConfigError, Registry, Router
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI

MESSAGES = [{"role": "user", "content": "hi"}]


def settings_for(url, extra=""):
    return parse_settings(
        f'[endpoints.groq]\nbase_url = "{url}/v1"\napi_key_env = "GROQ_API_KEY"\n'
        f'models = ["llama-3.3-70b"]\nheaders = {{ X-Team = "blue" }}\npriority = 3\n{extra}'
    )


def test_an_endpoint_is_listed_like_an_installed_provider():
    registry = Registry(settings=settings_for("http://127.0.0.1:9"), environ={})
    info = registry.provider("groq").info
    assert (info.models, info.needs_auth, info.api_key_env) == (
        ("llama-3.3-70b",),
        True,
        "GROQ_API_KEY",
    )
    record = next(r for r in registry.plugins() if r.provider == "groq")
    assert (record.name, record.distribution) == ("endpoint:groq", "(settings)")
    assert registry.provider("groq").settings.priority == 3


def test_an_endpoint_answers_streamed_and_not_with_its_headers_and_key():
    with FakeOpenAI(models=["llama-3.3-70b"], api_key="gsk-0123456789abcdef") as fake:
        registry = Registry(
            settings=settings_for(fake.url), environ={"GROQ_API_KEY": "gsk-0123456789abcdef"}
        )
        router = Router(registry)
        answer = router.complete("llama-3.3-70b", MESSAGES)
        chunks = list(router.stream("llama-3.3-70b", MESSAGES))
    assert (answer.provider, answer.text) == ("groq", fake.reply)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    request = fake.requests[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers["x-team"] == "blue"
    assert request.headers["authorization"] == "Bearer gsk-0123456789abcdef"


def test_an_endpoint_whose_name_is_taken_is_reported_broken_not_fatal():
    settings = parse_settings('[endpoints.gravityengine]\nbase_url = "http://x"\nmodels = ["m"]\n')
    registry = Registry(settings=settings, environ={})
    [broken] = registry.broken()
    assert broken.name == "endpoint:gravityengine" and "already used" in broken.error
    assert registry.provider("gravityengine").info.url == "https://gpt4.xunika.uk"


def test_an_endpoint_without_models_is_a_settings_error_with_the_line():
    with pytest.raises(ConfigError, match=r"line 3: endpoints\.x\.models"):
        parse_settings('[endpoints.x]\nbase_url = "http://x"\nmodels = []\n')
