"""Capabilities: a request goes only to candidates that can serve it, and the attempts say why.

Over real HTTP: OpenAI-compatible plugins on fake upstreams, declaring different capabilities.
"""

from __future__ import annotations

import pytest

from hypotez_providers import (
    AllProvidersFailed,
    Capabilities,
    InvalidInput,
    ProviderInfo,
    hookimpl,
    validate_messages,
    validate_options,
)

from ._routing import MESSAGES, MODEL, Compatible, build, outcomes

IMAGE = {
    "role": "user",
    "content": [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ],
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
JSON_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}},
}


class Capable(Compatible):
    """An OpenAI-compatible plugin declaring ``capabilities`` (and per-model ones)."""

    def __init__(self, name, capabilities=None, model_capabilities=None):
        super().__init__(name)
        self.capabilities = capabilities or Capabilities()
        self.model_capabilities = model_capabilities or {}

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name=self.name,
            url="https://unused.invalid",
            models=self.models,
            supports_stream=True,
            needs_auth=False,
            capabilities=self.capabilities,
            model_capabilities=self.model_capabilities,
        )


def two(fakes, first_capabilities, second_capabilities, **first_extra):
    first, second = fakes("first"), fakes("second")
    plugins = [
        Capable("first", first_capabilities, **first_extra),
        Capable("second", second_capabilities),
    ]
    router, _ = build({"first": first.url, "second": second.url}, plugins=plugins)
    return router, first, second


@pytest.mark.parametrize(
    ("request_kwargs", "capability"),
    [
        ({"messages": [IMAGE]}, "images"),
        ({"tools": TOOLS}, "tools"),
        ({"response_format": JSON_SCHEMA}, "structured_output"),
        ({"response_format": {"type": "json_object"}}, "structured_output"),
    ],
)
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "stream"])
def test_a_request_skips_candidates_that_cannot_serve_it(
    fakes, request_kwargs, capability, streamed
):
    router, first, _ = two(fakes, Capabilities(), Capabilities(**{capability: True}))
    kwargs = dict(request_kwargs)
    messages = kwargs.pop("messages", MESSAGES)
    if streamed:
        stream = router.stream(MODEL, messages, **kwargs)
        text = "".join(chunk.text for chunk in stream)
        attempts = stream.attempts
    else:
        answer = router.complete(MODEL, messages, **kwargs)
        text, attempts = answer.text, answer.attempts
    assert text == "answer from second"
    assert outcomes(attempts) == [("first", "skipped", None), ("second", "ok", None)]
    assert attempts[0].message == f"cannot serve this request: no {capability}"
    assert first.requests == [], "the provider that cannot serve it was not asked"


def test_plain_text_goes_to_every_candidate_whatever_it_declares(fakes):
    router, first, _ = two(fakes, Capabilities(), Capabilities(tools=True))
    assert router.complete(MODEL, MESSAGES).provider == "first"
    assert len(first.requests) == 1


def test_tool_choice_none_needs_no_tool_support(fakes):
    router, _, _ = two(fakes, Capabilities(), Capabilities(tools=True))
    answer = router.complete(MODEL, MESSAGES, tools=TOOLS, tool_choice="none")
    assert answer.provider == "first"


def test_a_models_own_capabilities_win_over_the_providers(fakes):
    router, first, _ = two(
        fakes,
        Capabilities(images=True),
        Capabilities(images=True),
        model_capabilities={MODEL: Capabilities()},  # this one model of "first" takes no image
    )
    answer = router.complete(MODEL, [IMAGE])
    assert answer.provider == "second" and first.requests == []


def test_when_no_candidate_can_serve_it_the_error_says_what_is_missing(fakes):
    router, first, second = two(fakes, Capabilities(), Capabilities(images=True))
    with pytest.raises(AllProvidersFailed) as caught:
        router.complete(MODEL, [IMAGE], tools=TOOLS)
    text = str(caught.value)
    assert "first (gpt-4o-mini): skipped: cannot serve this request: no images, tools" in text
    assert "second (gpt-4o-mini): skipped: cannot serve this request: no tools" in text
    assert first.requests == [] and second.requests == []


def test_an_endpoint_declares_its_capabilities_in_the_settings(fakes):
    upstream = fakes("upstream")
    settings = (
        f'[endpoints.local]\nbase_url = "{upstream.url}/v1"\nmodels = ["{MODEL}"]\n'
        "tools = true\nimages = true\n"
    )
    router, _ = build({}, settings=settings, plugins=[])
    capabilities = router.registry.provider("local").info.capabilities
    assert (capabilities.tools, capabilities.images, capabilities.structured_output) == (
        True,
        True,
        False,
    )
    assert router.complete(MODEL, [IMAGE], tools=TOOLS).provider == "local"


# -- the shapes a caller may send --------------------------------------------------------------


def test_a_tool_conversation_validates_and_keeps_its_shape():
    conversation = validate_messages(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"celsius": 21}'},
        ]
    )
    assert conversation[1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    }
    assert conversation[2]["tool_call_id"] == "call_1"


@pytest.mark.parametrize(
    ("message", "field", "words"),
    [
        ({"role": "tool", "content": "21"}, "messages[0]", "tool_call_id"),
        (
            {"role": "user", "content": "x", "tool_calls": []},
            "messages[0].tool_calls",
            "only an assistant",
        ),
        ({"role": "assistant"}, "messages[0].content", "tool_calls may omit"),
        (
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            "messages[0].content[0].image_url.url",
            "https://",
        ),
        (
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "data:text/plain,hi"}}],
            },
            "messages[0].content[0].image_url.url",
            "image media type",
        ),
    ],
)
def test_bad_tool_and_image_messages_name_the_field(message, field, words):
    with pytest.raises(InvalidInput) as caught:
        validate_messages([message])
    assert caught.value.field == field
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("options", "field", "words"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
            "tools[0].function.name",
            "pattern",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
                ]
            },
            "tools[0].function.parameters",
            "type 'object'",
        ),
        ({"tool_choice": "required"}, "tool_choice", "no tools"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
            "get_weather",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema="),
        ({"response_format": {"type": "xml"}}, "response_format.type", "json_object"),
    ],
)
def test_bad_tool_options_are_refused_before_anything_is_sent(options, field, words):
    with pytest.raises(InvalidInput) as caught:
        validate_options(options)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_tool_options_travel_in_openais_request_shapes():
    wire = validate_options(
        {
            "tools": TOOLS,
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": False,
            "response_format": JSON_SCHEMA,
        }
    ).wire()
    assert wire == {
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
        "response_format": JSON_SCHEMA,
    }


def test_two_tools_with_one_name_are_refused():
    with pytest.raises(InvalidInput) as caught:
        validate_options({"tools": [TOOLS[0], TOOLS[0]]})
    assert caught.value.field == "tools" and "same name" in str(caught.value)


def test_a_name_repeated_in_every_piece_is_not_doubled():
    from hypotez_providers.tools import ToolCallAssembler, ToolCallDelta

    pieces = ToolCallAssembler()
    pieces.add(ToolCallDelta(index=0, id="c1", name="get_weather", arguments='{"ci'))
    pieces.add(ToolCallDelta(index=0, name="get_weather", arguments='ty": "Paris"}'))
    (call,) = pieces.finish()
    assert (call.name, call.parsed) == ("get_weather", {"city": "Paris"})
