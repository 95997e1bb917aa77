"""The caller's mistakes stop at the boundary: InvalidInput naming the parameter, nothing sent.

Each bad call goes to a Router (or ``create_completion``) whose providers are fake upstreams on
127.0.0.1; the test then checks that no request reached them and that no provider's health
counts a failure, since none of these is a provider's doing.
"""

from __future__ import annotations

import pytest

from hypotez_providers import (
    CircuitState,
    InvalidInput,
    LegacyProvider,
    RetryPolicy,
    create_completion,
)

from ._routing import MESSAGES, MODEL, build


@pytest.fixture
def upstreams(fakes):
    """Two healthy fake upstreams and a Router over them (``first`` tried first)."""
    first, second = fakes("first"), fakes("second")
    router, _ = build({"first": first.url, "second": second.url})
    return router, first, second


def assert_untouched(router, *upstreams):
    assert [fake.requests for fake in upstreams] == [[] for _ in upstreams], "nothing was sent"
    for health in router.health():
        assert health.state is CircuitState.CLOSED, health
        assert (health.failures, health.consecutive_failures) == (0, 0), health


class Unserialisable:
    """Not JSON: requests' encoder would fail on it after the provider was chosen."""


BAD_CALLS = [
    # (keyword arguments, the field InvalidInput names)
    ({"model": None}, "model"),
    ({"model": ""}, "model"),
    ({"model": 4}, "model"),
    ({"model": ["gpt-4o-mini"]}, "model"),
    ({"messages": None}, "messages"),
    ({"messages": "hello"}, "messages"),
    ({"provider": 3}, "provider"),
    ({"provider": ""}, "provider"),
    ({"providers": "second"}, "providers"),
    ({"providers": []}, "providers"),
    ({"providers": 2}, "providers"),
    ({"providers": ["first", None]}, "providers[1]"),
    ({"timeout": "abc"}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"timeout": float("inf")}, "timeout"),
    ({"timeout": 0}, "timeout"),
    ({"first_chunk_timeout": -1}, "first_chunk_timeout"),
    ({"first_chunk_timeout": True}, "first_chunk_timeout"),
    ({"max_attempts": "x"}, "max_attempts"),
    ({"max_attempts": 0}, "max_attempts"),
    ({"max_attempts": 2.5}, "max_attempts"),
    ({"retry": "fast"}, "retry"),
    ({"retry": {"attempts": 2}}, "retry"),
    ({"rescue": "later"}, "rescue"),
    ({"temperature": float("nan")}, "temperature"),
    ({"extra": {"x": float("nan")}}, "extra.x"),
    ({"extra": {"x": float("-inf")}}, "extra.x"),
    ({"extra": {"x": Unserialisable()}}, "extra.x"),
    ({"extra": {"x": {1, 2}}}, "extra.x"),
    ({"extra": {"x": b"bytes"}}, "extra.x"),
    ({"extra": {"deep": {"list": [1, {"y": float("nan")}]}}}, "extra.deep.list[1].y"),
    ({"extra": {"deep": {3: "not a string key"}}}, "extra.deep"),
    ({"extra": {"model": "gpt-4o"}}, "extra.model"),
    ({"extra": {"messages": []}}, "extra.messages"),
    ({"extra": {"stream": False}}, "extra.stream"),
    ({"extra": {"stream_options": {"include_usage": False}}}, "extra.stream_options"),
    ({"extra": "top_k=5"}, "extra"),
]


def call_with(method, **changes):
    arguments = {"model": MODEL, "messages": MESSAGES, **changes}
    return method(arguments.pop("model"), arguments.pop("messages"), **arguments)


@pytest.mark.parametrize(("changes", "field"), BAD_CALLS)
@pytest.mark.parametrize("kind", ["complete", "stream"])
def test_a_bad_parameter_is_invalid_input_naming_it_before_any_request(
    upstreams, kind, changes, field
):
    router, first, second = upstreams
    with pytest.raises(InvalidInput) as caught:
        # A stream is refused when it is asked for, not when it is first read.
        call_with(getattr(router, kind), **changes)
    assert caught.value.field == field
    assert field.split("[")[0].split(".")[0] in str(caught.value)
    assert_untouched(router, first, second)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"idle_timeout": "soon"}, "idle_timeout"),
        ({"idle_timeout": float("nan")}, "idle_timeout"),
        ({"idle_timeout": -0.5}, "idle_timeout"),
    ],
)
def test_a_streams_idle_timeout_is_checked_too(upstreams, changes, field):
    router, first, second = upstreams
    with pytest.raises(InvalidInput) as caught:
        call_with(router.stream, **changes)
    assert caught.value.field == field
    assert_untouched(router, first, second)


def test_the_same_mistakes_repeated_never_open_a_circuit(upstreams):
    router, first, second = upstreams
    for _ in range(5):  # well past the failure threshold (2)
        with pytest.raises(InvalidInput):
            call_with(router.complete, extra={"x": float("nan")})
        with pytest.raises(InvalidInput):
            call_with(router.complete, extra={"x": Unserialisable()})
        with pytest.raises(InvalidInput):
            call_with(router.complete, first_chunk_timeout=-1)
    assert_untouched(router, first, second)
    answer = call_with(router.complete)
    assert answer.provider == "first" and len(first.requests) == 1


def test_strict_json_extra_reaches_the_wire_and_the_library_keeps_its_own_fields(upstreams):
    router, first, _ = upstreams
    extra = {"user": "u1", "logit_bias": {"50256": -100}, "nested": [1, 2.5, None, True, "x"]}
    call_with(router.complete, extra=extra, temperature=0.5)
    sent = first.requests[0].json
    assert {name: sent[name] for name in extra} == extra
    assert (sent["model"], sent["messages"], sent["temperature"]) == (MODEL, MESSAGES, 0.5)
    assert "stream" not in sent
    pieces = list(call_with(router.stream, extra=extra))
    assert "".join(chunk.text for chunk in pieces) == "answer from first"
    assert first.requests[1].json["stream"] is True


def test_a_valid_retry_policy_and_chain_are_accepted(upstreams):
    router, first, _ = upstreams
    answer = call_with(
        router.complete,
        providers=("second", "first"),
        retry=RetryPolicy(attempts=1),
        max_attempts=1,
        timeout=5,
        first_chunk_timeout=5,
    )
    assert answer.provider == "second" and first.requests == []


# -- create_completion ----------------------------------------------------------------------


@pytest.fixture
def fake_registry(fakes):
    fake = fakes("only")
    router, _ = build({"only": fake.url})
    return router.registry, fake


@pytest.mark.parametrize(
    ("arguments", "keywords", "field"),
    [
        ((MODEL, MESSAGES, "yes"), {}, "stream"),
        ((MODEL, MESSAGES, 1), {}, "stream"),
        ((MODEL, MESSAGES, False, 7), {}, "provider"),
        ((MODEL, MESSAGES, False, ""), {}, "provider"),
        ((None, MESSAGES, False, "only"), {}, "model"),
        ((None, MESSAGES), {}, "model"),
        ((MODEL, MESSAGES, False, "only"), {"extra": {"x": float("nan")}}, "extra.x"),
        ((MODEL, MESSAGES, True, "only"), {"extra": {"stream": False}}, "extra.stream"),
        ((MODEL, MESSAGES), {"extra": {"x": Unserialisable()}}, "extra.x"),
        ((MODEL, MESSAGES, True), {"first_chunk_timeout": -1}, "first_chunk_timeout"),
        ((MODEL, MESSAGES), {"providers": "only"}, "providers"),
        ((MODEL, MESSAGES), {"max_attempts": "x"}, "max_attempts"),
    ],
)
def test_create_completion_refuses_bad_input_before_anything_is_sent(
    fake_registry, arguments, keywords, field
):
    registry, fake = fake_registry
    with pytest.raises(InvalidInput) as caught:
        create_completion(*arguments, registry=registry, **keywords)
    assert caught.value.field == field
    assert fake.requests == []


def test_create_completion_refuses_a_registry_that_is_not_one():
    with pytest.raises(InvalidInput) as caught:
        create_completion(MODEL, MESSAGES, registry="default")
    assert caught.value.field == "registry"


def test_a_pinned_provider_call_checks_extra_and_sends_it(fake_registry):
    registry, fake = fake_registry
    text = create_completion(MODEL, MESSAGES, False, "only", registry=registry, extra={"n": 1})
    assert list(text) == ["answer from only"]
    assert fake.requests[0].json["n"] == 1


def test_a_legacy_modules_keyword_options_are_checked_the_same_way():
    from types import ModuleType

    from hypotez_providers import Registry, Settings

    module = ModuleType("Echoing")
    module.url, module.model = "https://echo.example", ["echo-1"]
    sent = []

    def _create_completion(model, messages, stream, **kwargs):
        sent.append(kwargs)
        yield "ok"

    module._create_completion = _create_completion
    registry = Registry(settings=Settings(), load_entry_points=False)
    provider = registry.register(LegacyProvider(module))
    with pytest.raises(InvalidInput) as caught:
        provider.complete("echo-1", MESSAGES, extra={"messages": "x"})
    assert caught.value.field == "extra.messages" and sent == []
