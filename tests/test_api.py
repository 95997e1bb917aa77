"""The seed-shaped functional API and the provider listing."""

import pytest

from hypotez_providers import (
    InvalidInput,
    Registry,
    Settings,
    UnknownProvider,
    create_completion,
    default_registry,
    list_providers,
)


def test_the_default_registry_is_created_once_and_lists_gravityengine():
    assert default_registry() is default_registry()
    assert "gravityengine" in [info.name for info in list_providers()]


def test_listing_carries_the_metadata(registry):
    [info] = [i for i in list_providers(registry=registry) if i.name == "gravityengine"]
    dumped = info.model_dump()
    assert set(dumped) >= {"name", "url", "models", "supports_stream", "needs_auth", "params"}


def test_without_a_provider_the_call_is_routed_by_model_name(gravity_registry, gravity_upstream):
    messages = [{"role": "user", "content": "x"}]
    whole = list(create_completion("gpt-3.5-turbo-16k", messages, registry=gravity_registry))
    pieces = list(create_completion("gpt-3.5-turbo-16k", messages, True, registry=gravity_registry))
    assert whole == [gravity_upstream.reply]
    assert "".join(pieces) == gravity_upstream.reply and len(pieces) == 7


def test_routing_an_unknown_model_is_refused_before_anything_is_sent(
    gravity_registry, gravity_upstream
):
    with pytest.raises(InvalidInput, match=r"closest: gpt-3\.5-turbo-16k") as caught:
        create_completion(
            "gpt-3.5-turbo-16", [{"role": "user", "content": "x"}], registry=gravity_registry
        )
    assert caught.value.field == "model"
    assert gravity_upstream.requests == []


def test_an_unknown_provider_is_refused_before_anything_runs():
    registry = Registry(settings=Settings(), load_entry_points=False)
    with pytest.raises(UnknownProvider):
        create_completion(
            "m", [{"role": "user", "content": "x"}], provider="nope", registry=registry
        )
