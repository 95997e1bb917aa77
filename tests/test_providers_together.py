"""Issue 4's whole: first-party providers side by side through the router, over real HTTP."""

from __future__ import annotations

import pytest

from hypotez_providers import Registry, Router
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI, Fault

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi"}]
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"
SETTINGS = """
[endpoints.compat]
base_url = "{compat}/v1"
models = ["llama-3.3-70b"]

[aliases]
fast = ["compat:llama-3.3-70b", "anthropic:claude-haiku-4-5"]
"""


@pytest.fixture
def upstreams():
    with (
        FakeOpenAI(models=["llama-3.3-70b"], reply="hi from compat") as compat,
        FakeAnthropic(models=None, api_key=ANTHROPIC_KEY, reply="hi from claude") as claude,
    ):
        yield compat, claude


def router_for(compat, claude):
    registry = Registry(
        settings=parse_settings(SETTINGS.format(compat=compat.url)),
        environ={"HYPOTEZ_ANTHROPIC_BASE_URL": claude.url, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    )
    return Router(registry)


@pytest.mark.parametrize("streamed", [False, True])
def test_an_alias_fails_over_from_an_openai_compatible_endpoint_to_anthropic(upstreams, streamed):
    compat, claude = upstreams
    router = router_for(compat, claude)
    if streamed:
        stream = router.stream("fast", MESSAGES)
        chunks = list(stream)
        text, provider = "".join(c.text for c in chunks), stream.provider
        usage = next(c.usage for c in reversed(chunks) if c.usage)
    else:
        answer = router.complete("fast", MESSAGES)
        text, provider, usage = answer.text, answer.provider, answer.usage
    assert (text, provider) == ("hi from compat", "compat")
    assert usage is not None and usage.completion_tokens > 0

    compat.fail_every_request = Fault(status=503)
    failed_over = router_for(compat, claude)
    if streamed:
        stream = failed_over.stream("fast", MESSAGES)
        chunks = list(stream)
        text, provider = "".join(c.text for c in chunks), stream.provider
        usage = next(c.usage for c in reversed(chunks) if c.usage)
        attempts = stream.attempts
    else:
        answer = failed_over.complete("fast", MESSAGES)
        text, provider, usage, attempts = (
            answer.text,
            answer.provider,
            answer.usage,
            answer.attempts,
        )
    assert (text, provider) == ("hi from claude", "anthropic")
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert [(a.provider, a.outcome) for a in attempts] == [
        ("compat", "failed"),
        ("compat", "failed"),
        ("anthropic", "ok"),
    ]
    sent = claude.requests[-1].json
    assert sent["model"] == "claude-haiku-4-5" and sent["system"] == "Be brief."


def test_an_ollama_upstream_streams_through_the_router():
    with FakeOllama(models=["llama3.2:latest"], reply="hello from ollama") as fake:
        registry = Registry(
            settings=parse_settings('[providers.ollama]\nmodels = ["llama3.2:latest"]\n'),
            environ={"HYPOTEZ_OLLAMA_BASE_URL": fake.url},
        )
        stream = Router(registry).stream("llama3.2:latest", [{"role": "user", "content": "hi"}])
        chunks = list(stream)
    assert "".join(c.text for c in chunks) == "hello from ollama" and len(chunks) > 2
    assert chunks[-1].usage is not None and stream.provider == "ollama"


def test_every_first_party_provider_is_listed_with_its_metadata():
    infos = {info.name: info for info in Registry(environ={}).providers()}
    assert {"gravityengine", "openai", "anthropic", "ollama"} <= set(infos)
    assert (infos["openai"].needs_auth, infos["openai"].api_key_env) == (True, "OPENAI_API_KEY")
    assert (infos["anthropic"].needs_auth, infos["anthropic"].api_key_env) == (
        True,
        "ANTHROPIC_API_KEY",
    )
    assert not infos["ollama"].needs_auth and infos["ollama"].url == "http://localhost:11434"
    assert not infos["gravityengine"].needs_auth
    assert all(info.supports_stream and info.models for info in infos.values())
