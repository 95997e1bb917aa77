"""A gpt4free-style module, shaped like the seed's Gravityengine.py, registers unedited."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from hypotez_providers import ConnectionFailed, Registry, Settings, create_completion
from hypotez_providers.legacy import is_legacy_module
from hypotez_providers.testing import FakeOpenAI, closed_port_url

SOURCE = Path(__file__).parent / "legacy_modules" / "Gravityengine.py"
MESSAGES = [{"role": "user", "content": "Hi there"}]


@pytest.fixture
def legacy_module():
    spec = importlib.util.spec_from_file_location("Gravityengine", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def upstream():
    with FakeOpenAI(
        path="/api/openai/v1/chat/completions", models=None, reply="Legacy says hi"
    ) as fake:
        yield fake


def test_the_module_is_recognised_as_legacy(legacy_module):
    assert is_legacy_module(legacy_module)
    assert "supports: (model: str, messages: list, stream: bool)" in legacy_module.params


def test_registered_unedited_with_the_seeds_metadata_and_derived_params(legacy_module):
    registry = Registry(settings=Settings(), load_entry_points=False)
    info = registry.register(legacy_module).info
    assert info.name == "gravityengine"
    assert info.url == "https://gpt4.xunika.uk"
    assert info.models == ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613")
    assert (info.supports_stream, info.needs_auth) == (True, False)
    assert info.params == ("model: str", "messages: list", "stream: bool", "**kwargs")


def test_it_answers_over_http_with_options_passed_as_keywords(legacy_module, upstream):
    legacy_module.url = upstream.url
    registry = Registry(settings=Settings(), load_entry_points=False)
    registry.register(legacy_module)
    pieces = list(
        create_completion(
            "gpt-3.5-turbo-16k",
            MESSAGES,
            stream=True,
            provider="gravityengine",
            registry=registry,
            max_tokens=2,
        )
    )
    assert pieces == ["Legacy says"]
    sent = upstream.requests[0].json
    assert (sent["temperature"], sent["presence_penalty"], sent["max_tokens"]) == (0.7, 0, 2)


def test_its_own_requests_failures_still_become_typed_errors(legacy_module):
    legacy_module.url = closed_port_url()
    registry = Registry(settings=Settings(), load_entry_points=False)
    registry.register(legacy_module)
    with pytest.raises(ConnectionFailed) as caught:
        registry.provider("gravityengine").complete("gpt-3.5-turbo-16k", MESSAGES)
    assert caught.value.provider == "gravityengine"


def test_a_legacy_module_registers_through_an_entry_point(plugin_distribution, upstream):
    source = SOURCE.read_text().replace(
        "url = 'https://gpt4.xunika.uk/'", f"url = '{upstream.url}'"
    )
    plugin_distribution("g4f-gravity", "Gravityold", source, entry_name="gravityold")
    registry = Registry(settings=Settings(), environ={"HYPOTEZ_LOAD_PLUGINS": "gravityold"})
    assert [info.name for info in registry.providers()] == ["gravityold"]
    record = registry.plugins()[0]
    assert (record.distribution, record.broken) == ("g4f-gravity", False)
    assert (
        registry.provider("gravityold").complete("gpt-3.5-turbo-0613", MESSAGES).text
        == "Legacy says hi"
    )
