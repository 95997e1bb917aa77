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


def test_without_a_provider_the_call_says_how_to_name_one(registry):
    with pytest.raises(InvalidInput, match="provider='gravityengine'") as caught:
        create_completion(
            "gpt-3.5-turbo-16k", [{"role": "user", "content": "x"}], registry=registry
        )
    assert caught.value.field == "provider"


def test_an_unknown_provider_is_refused_before_anything_runs():
    registry = Registry(settings=Settings(), load_entry_points=False)
    with pytest.raises(UnknownProvider):
        create_completion(
            "m", [{"role": "user", "content": "x"}], provider="nope", registry=registry
        )
