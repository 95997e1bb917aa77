"""Anthropic tool use, tool results, images and structured output, over real HTTP on 127.0.0.1.

The request is checked in Anthropic's exact shapes; through ``Router`` the answer is the same
parsed tool call as the OpenAI side gives for the same reply, whole and streamed; the fake
refuses what the Messages API refuses; any split of the ``input_json_delta`` pieces reassembles
the same call; and a tool conversation started on Anthropic goes on on an OpenAI-compatible
endpoint once Anthropic is down, with the same tool call ids.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
import requests
from hypotez_anthropic import API_VERSION, codec
from hypotez_anthropic.tools import ANSWER_TOOL
from hypothesis import given, settings
from hypothesis import strategies as st

from hypotez_providers import (
    AllProvidersFailed,
    InvalidInput,
    Registry,
    Router,
    SSEEvent,
    validate_messages,
    validate_options,
)
from hypotez_providers.results import Completion
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI, Fault
from hypotez_providers.testing.anthropic import FakeAnthropic
from hypotez_providers.testing.samples import CLOCK_TOOL as CLOCK
from hypotez_providers.testing.samples import PARIS_CALL as PARIS
from hypotez_providers.testing.samples import ROME_CALL as ROME
from hypotez_providers.testing.samples import SAMPLE_TOOLS as TOOLS
from hypotez_providers.testing.samples import WEATHER_TOOL as WEATHER
from hypotez_providers.tools import ToolCall

KEY = "sk-ant-test-0123456789abcdefgh"
MODEL = "claude-haiku-4-5"
GRAVITY_PATH = "/api/openai/v1/chat/completions"
GRAVITY_MODEL = "gpt-3.5-turbo-16k"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
ANTHROPIC_TOOLS = [
    {
        "name": "get_weather",
        "description": "The current weather in a city",
        "input_schema": WEATHER["function"]["parameters"],
    },
    {"name": "get_time", "input_schema": CLOCK["function"]["parameters"]},
]
TIME = {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'}
FINAL = "It is 21 °C in Paris and 24 °C in Rome."
SCHEMA = {
    "type": "json_schema",
    "json_schema": {
        "name": "weather",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
            "required": ["city", "celsius"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture
def stack():
    with ExitStack() as stack:
        yield stack


def anthropic(stack, **options):
    """A Router whose Anthropic plugin points at a FakeAnthropic with ``options``."""
    fake = stack.enter_context(FakeAnthropic(api_key=KEY, **options))
    registry = Registry(environ={"HYPOTEZ_ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": KEY})
    return Router(registry), fake


def gravity(stack, **options):
    """A Router whose Gravityengine plugin points at a FakeOpenAI with ``options``."""
    fake = stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None, **options))
    return Router(Registry(environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url})), fake


def streamed(router, model, messages, **options):
    """The chunks of a routed stream, and the completion assembled from them."""
    stream = router.stream(model, messages, **options)
    chunks = list(stream)
    completion = Completion.from_chunks(
        chunks, model=model, provider=stream.provider or "", attempts=stream.attempts
    )
    return chunks, completion


def ask(router, model, messages, stream, **options):
    if stream:
        return streamed(router, model, messages, **options)[1]
    return router.complete(model, messages, **options)


def shape(calls):
    """Calls without their ids (each vendor, and each answer, has its own)."""
    return [(call.name, call.arguments) for call in calls]


def request_for(messages, **options):
    return codec.build_request(MODEL, validate_messages(messages), False, validate_options(options))


STREAM = pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])


# -- the request in Anthropic's shapes -----------------------------------------------------


def test_tools_become_anthropic_tools_with_input_schema():
    body = request_for(MESSAGES, tools=TOOLS)
    assert body["tools"] == ANTHROPIC_TOOLS
    assert "tool_choice" not in body, "no choice given: the API's default (auto) applies"


def test_a_strict_tool_keeps_strict():
    strict = {"type": "function", "function": {**CLOCK["function"], "strict": True}}
    assert request_for(MESSAGES, tools=[strict])["tools"][0]["strict"] is True


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            None,
            {"type": "tool", "name": "get_time"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (
            {"type": "function", "function": {"name": "get_time"}},
            False,
            {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
    ids=[
        "auto",
        "required-is-any",
        "none",
        "named-is-tool",
        "auto-one-call",
        "any-one-call",
        "named-one-call",
        "no-choice-one-call",
        "none-stays-none",
    ],
)
def test_tool_choice_maps_to_anthropics_objects(choice, parallel, expected):
    options = {"tools": TOOLS}
    if choice is not None:
        options["tool_choice"] = choice
    if parallel is not None:
        options["parallel_tool_calls"] = parallel
    assert request_for(MESSAGES, **options)["tool_choice"] == expected


def test_a_tool_choice_without_tools_is_not_sent():
    body = request_for(MESSAGES, tool_choice="none")
    assert "tools" not in body and "tool_choice" not in body


CALLING = {
    "role": "assistant",
    "content": "Let me look.",
    "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": PARIS},
        {"id": "toolu_2", "type": "function", "function": TIME},
    ],
}


def test_tool_calls_become_tool_use_blocks_and_tool_messages_one_user_turn_of_results():
    body = request_for(
        [
            *MESSAGES,
            CALLING,
            {"role": "tool", "tool_call_id": "toolu_1", "content": '{"celsius": 21}'},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "12:00"}],
            },
            {"role": "user", "content": "And tomorrow?"},
        ],
        tools=TOOLS,
    )
    assert body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "celsius"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_time",
                    "input": {"tz": "Europe/Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"celsius": 21}'},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "12:00"}],
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ]


def test_an_assistant_message_that_only_calls_has_only_tool_use_blocks():
    calling = {**CALLING, "content": None, "tool_calls": CALLING["tool_calls"][:1]}
    body = request_for(
        [*MESSAGES, calling, {"role": "tool", "tool_call_id": "toolu_1", "content": ""}],
        tools=TOOLS,
    )
    assert [block["type"] for block in body["messages"][1]["content"]] == ["tool_use"]
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1"}]


def test_tool_results_come_first_in_the_user_turn_they_join():
    body = request_for(
        [
            *MESSAGES,
            {**CALLING, "tool_calls": CALLING["tool_calls"][:1]},
            {"role": "user", "content": "Quick, please."},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "21"},
        ],
        tools=TOOLS,
    )
    assert [block["type"] for block in body["messages"][2]["content"]] == ["tool_result", "text"]


def test_arguments_that_are_not_a_json_object_are_invalid_input():
    broken = {
        **CALLING,
        "tool_calls": [
            {"id": "t", "type": "function", "function": {"name": "f", "arguments": "[1"}}
        ],
    }
    with pytest.raises(InvalidInput) as caught:
        request_for([*MESSAGES, broken], tools=TOOLS)
    assert caught.value.field == "messages[1].tool_calls[0].function.arguments"


def test_images_become_image_blocks_in_a_user_turn_and_a_tool_result():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}
    body = request_for(
        [
            {"role": "user", "content": [{"type": "text", "text": "Which city?"}, image]},
            {**CALLING, "tool_calls": CALLING["tool_calls"][:1]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": [image]},
        ],
        tools=TOOLS,
    )
    png = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
    }
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Which city?"}, png]
    assert body["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": [png]}
    ]


def test_a_data_url_that_is_not_base64_is_encoded_for_the_base64_source():
    block = codec.image_block("data:image/svg+xml,%3Csvg%2F%3E")
    assert block == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/svg+xml", "data": "PHN2Zy8+"},
    }


def test_a_json_schema_is_native_structured_output():
    body = request_for(MESSAGES, response_format=SCHEMA)
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": SCHEMA["json_schema"]["schema"]}
    }
    assert "tools" not in body


def test_a_json_object_is_asked_through_a_forced_answer_tool():
    body = request_for(MESSAGES, response_format={"type": "json_object"})
    assert body["tools"] == [
        {
            "name": ANSWER_TOOL,
            "description": "Give your whole answer as a JSON object: the input is the answer.",
            "input_schema": {"type": "object"},
        }
    ]
    assert body["tool_choice"] == {"type": "tool", "name": ANSWER_TOOL}
    with_tools = request_for(MESSAGES, tools=TOOLS, response_format={"type": "json_object"})
    assert [tool["name"] for tool in with_tools["tools"]] == [
        "get_weather",
        "get_time",
        ANSWER_TOOL,
    ]
    assert with_tools["tool_choice"] == {"type": "any"}, "a tool of the caller's, or the answer"


# -- through the Router, over HTTP ---------------------------------------------------------


@STREAM
def test_the_same_parsed_tool_call_as_the_openai_side(stack, stream):
    router, fake = anthropic(stack, tool_calls=[PARIS], reply=FINAL)
    openai_router, _ = gravity(stack, tool_calls=[PARIS], reply=FINAL)
    answer = ask(router, MODEL, MESSAGES, stream, tools=TOOLS)
    reference = ask(openai_router, GRAVITY_MODEL, MESSAGES, stream, tools=TOOLS)
    assert answer.tool_calls == (ToolCall(id="toolu_fake1", **PARIS),)
    assert shape(answer.tool_calls) == shape(reference.tool_calls)
    assert answer.tool_calls[0].parsed == {"city": "Paris", "unit": "celsius"}
    assert (answer.text, answer.finish_reason) == (reference.text, reference.finish_reason)
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    sent = fake.requests[0]
    assert sent.headers["anthropic-version"] == API_VERSION
    assert sent.json["tools"] == ANTHROPIC_TOOLS


def test_streamed_deltas_render_progress_and_the_stop_chunk_carries_the_calls(stack):
    router, _ = anthropic(stack, tool_calls=[PARIS])
    whole = router.complete(MODEL, MESSAGES, tools=TOOLS)
    chunks, assembled = streamed(router, MODEL, MESSAGES, tools=TOOLS)
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert (deltas[0].index, deltas[0].id, deltas[0].name, deltas[0].arguments) == (
        0,
        "toolu_fake2",
        "get_weather",
        "",
    )
    pieces = [delta.arguments for delta in deltas[1:]]
    assert all(0 < len(piece) <= 3 for piece in pieces), "split every 3 characters"
    assert '"Pa' in pieces, "a piece cuts a token in two"
    assert "".join(pieces) == PARIS["arguments"]
    last = chunks[-1]
    assert last.finish_reason == "tool_calls"
    assert last.tool_calls == (ToolCall(id="toolu_fake2", **PARIS),)
    assert [bool(chunk.tool_calls) for chunk in chunks] == [c is last for c in chunks]
    assert shape(assembled.tool_calls) == shape(whole.tool_calls)


@STREAM
def test_parallel_calls_come_back_in_order_with_indexes_by_tool_use_block(stack, stream):
    router, _ = anthropic(stack, tool_calls=[PARIS, ROME, TIME])
    if stream:
        chunks, answer = streamed(router, MODEL, MESSAGES, tools=TOOLS)
        indexes = [delta.index for chunk in chunks for delta in chunk.tool_call_deltas]
        assert sorted(set(indexes)) == [0, 1, 2] and indexes == sorted(indexes)
    else:
        answer = router.complete(MODEL, MESSAGES, tools=TOOLS)
    assert [call.id for call in answer.tool_calls] == ["toolu_fake1", "toolu_fake2", "toolu_fake3"]
    assert shape(answer.tool_calls) == [tuple(c.values()) for c in (PARIS, ROME, TIME)]


def test_parallel_tool_calls_false_gets_one_call(stack):
    router, fake = anthropic(stack, tool_calls=[PARIS, ROME])
    answer = router.complete(MODEL, MESSAGES, tools=TOOLS, parallel_tool_calls=False)
    assert shape(answer.tool_calls) == [tuple(PARIS.values())]
    assert fake.requests[-1].json["tool_choice"] == {
        "type": "auto",
        "disable_parallel_tool_use": True,
    }


@STREAM
def test_a_named_tool_choice_gets_that_tool(stack, stream):
    router, _ = anthropic(stack, tool_calls=[PARIS, TIME])
    choice = {"type": "function", "function": {"name": "get_time"}}
    answer = ask(router, MODEL, MESSAGES, stream, tools=TOOLS, tool_choice=choice)
    assert shape(answer.tool_calls) == [tuple(TIME.values())]
    assert answer.finish_reason == "tool_calls"


def test_tool_choice_none_gets_text(stack):
    router, _ = anthropic(stack, tool_calls=[PARIS], reply="No tools today.")
    answer = router.complete(MODEL, MESSAGES, tools=TOOLS, tool_choice="none")
    assert (answer.text, answer.tool_calls, answer.finish_reason) == ("No tools today.", (), "stop")


def results_for(calls):
    return [
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 21})}
        for call in calls
    ]


@STREAM
def test_sending_back_the_message_and_tool_results_gets_the_final_answer(stack, stream):
    router, fake = anthropic(stack, tool_calls=[PARIS, ROME], reply=FINAL)
    answer = ask(router, MODEL, MESSAGES, stream, tools=TOOLS)
    conversation = [*MESSAGES, answer.message(), *results_for(answer.tool_calls)]
    final = ask(router, MODEL, conversation, stream, tools=TOOLS)
    assert (final.text, final.tool_calls, final.finish_reason) == (FINAL, (), "stop")
    sent = fake.requests[-1].json["messages"]
    assert len(sent) == 3, "the tool messages became one user turn"
    assert [block["id"] for block in sent[1]["content"]] == [c.id for c in answer.tool_calls]
    assert [block["tool_use_id"] for block in sent[2]["content"]] == [
        c.id for c in answer.tool_calls
    ]


def follows_the_schema(text):
    document = json.loads(text)
    schema = SCHEMA["json_schema"]["schema"]
    kinds = {"string": str, "number": (int, float)}
    assert isinstance(document, dict) and set(document) == set(schema["required"])
    for name, spec in schema["properties"].items():
        assert isinstance(document[name], kinds[spec["type"]])
    return document


@STREAM
def test_a_json_schema_request_gets_json_that_validates(stack, stream):
    reply = {"city": "Paris", "celsius": 21.5}
    router, fake = anthropic(stack, json_reply=reply)
    answer = ask(router, MODEL, MESSAGES, stream, response_format=SCHEMA)
    assert follows_the_schema(answer.text) == reply
    assert answer.finish_reason == "stop"
    assert fake.requests[-1].json["output_config"]["format"]["type"] == "json_schema"


@STREAM
def test_a_json_object_request_gets_the_answer_tools_input_as_text(stack, stream):
    reply = {"city": "Paris", "celsius": 21.5}
    router, _ = anthropic(stack, json_reply=reply)
    answer = ask(router, MODEL, MESSAGES, stream, response_format={"type": "json_object"})
    assert json.loads(answer.text) == reply
    assert (answer.tool_calls, answer.finish_reason) == ((), "stop")


def test_a_json_schema_request_skips_a_model_without_structured_outputs(stack):
    router, fake = anthropic(stack, models=None, json_reply={"city": "Paris", "celsius": 1})
    with pytest.raises(AllProvidersFailed, match="cannot serve this request: no structured"):
        router.complete("claude-3-5-haiku-latest", MESSAGES, response_format=SCHEMA)
    assert fake.requests == []


def test_the_plugin_declares_tools_structured_output_images_and_prefill():
    info = Registry(environ={}).provider("anthropic").info
    caps = info.capabilities
    assert (caps.tools, caps.structured_output, caps.images, caps.prefill) == (True,) * 4
    older = info.capabilities_for("claude-3-5-haiku-latest")
    assert (older.tools, older.structured_output) == (True, False)


# -- the cross-vendor failover -------------------------------------------------------------

CROSS_VENDOR = """
[aliases]
agent = ["anthropic:claude-haiku-4-5", "gravityengine:gpt-3.5-turbo-16k"]
"""


@STREAM
def test_a_tool_conversation_started_on_anthropic_goes_on_on_an_openai_compatible_endpoint(
    stack, stream
):
    claude = stack.enter_context(FakeAnthropic(api_key=KEY, tool_calls=[PARIS, TIME]))
    gpt = stack.enter_context(
        FakeOpenAI(path=GRAVITY_PATH, models=None, tool_calls=[ROME], reply=FINAL)
    )
    registry = Registry(
        settings=parse_settings(CROSS_VENDOR),
        environ={
            "HYPOTEZ_ANTHROPIC_BASE_URL": claude.url,
            "ANTHROPIC_API_KEY": KEY,
            "HYPOTEZ_GRAVITYENGINE_BASE_URL": gpt.url,
        },
    )
    router = Router(registry, sleep=lambda seconds: None)
    answer = ask(router, "agent", MESSAGES, stream, tools=TOOLS)
    assert answer.provider == "anthropic"
    assert answer.tool_calls == (
        ToolCall(id="toolu_fake1", **PARIS),
        ToolCall(id="toolu_fake2", **TIME),
    )
    assert gpt.requests == []

    claude.fail_every_request = Fault(status=529)
    conversation = [*MESSAGES, answer.message(), *results_for(answer.tool_calls)]
    final = ask(router, "agent", conversation, stream, tools=TOOLS)
    assert (final.provider, final.text, final.finish_reason) == ("gravityengine", FINAL, "stop")
    assert final.attempts[0].provider == "anthropic" and final.attempts[0].outcome == "failed"
    [received] = gpt.requests
    sent = received.json["messages"]
    assert sent[1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "toolu_fake1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": PARIS["arguments"]},
            },
            {
                "id": "toolu_fake2",
                "type": "function",
                "function": {"name": "get_time", "arguments": TIME["arguments"]},
            },
        ],
    }
    assert [(m["role"], m["tool_call_id"]) for m in sent[2:]] == [
        ("tool", "toolu_fake1"),
        ("tool", "toolu_fake2"),
    ]
    assert received.json["tools"] == TOOLS


# -- the fake refuses what the Messages API refuses ----------------------------------------


def post(fake, body):
    return requests.post(
        f"{fake.url}/v1/messages",
        json={"model": MODEL, "max_tokens": 64, **body},
        headers={"anthropic-version": API_VERSION, "x-api-key": KEY},
        timeout=5,
    )


USED = {
    "role": "assistant",
    "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
    ],
}


def result(ident):
    return {"type": "tool_result", "tool_use_id": ident, "content": "21"}


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {
                "messages": [
                    *MESSAGES,
                    USED,
                    {"role": "user", "content": [result("toolu_1")]},
                ],
                "tools": ANTHROPIC_TOOLS,
            },
            "`tool_use` ids were found without `tool_result` blocks immediately after: toolu_2",
        ),
        (
            {
                "messages": [*MESSAGES, USED, {"role": "user", "content": "and?"}],
                "tools": ANTHROPIC_TOOLS,
            },
            "without `tool_result` blocks immediately after: toolu_1, toolu_2",
        ),
        (
            {
                "messages": [
                    *MESSAGES,
                    USED,
                    {
                        "role": "user",
                        "content": [result("toolu_1"), result("toolu_2"), result("toolu_9")],
                    },
                ],
                "tools": ANTHROPIC_TOOLS,
            },
            "unexpected `tool_use_id` found in `tool_result` blocks: toolu_9",
        ),
        (
            {
                "messages": [
                    *MESSAGES,
                    USED,
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "here"},
                            result("toolu_1"),
                            result("toolu_2"),
                        ],
                    },
                ],
                "tools": ANTHROPIC_TOOLS,
            },
            "`tool_result` blocks must come first",
        ),
        (
            {"messages": MESSAGES, "tools": [{"name": "a b", "input_schema": {"type": "object"}}]},
            "tools.0.custom.name: String should match pattern",
        ),
        (
            {"messages": MESSAGES, "tools": [{"name": "f", "input_schema": {"type": "array"}}]},
            "tools.0.custom.input_schema.type: Input should be 'object'",
        ),
        (
            {"messages": MESSAGES, "tools": [{"name": "f", "parameters": {"type": "object"}}]},
            "tools.0.custom.input_schema: Field required",
        ),
        (
            {"messages": MESSAGES, "tool_choice": {"type": "auto"}},
            "tool_choice may only be specified while providing tools",
        ),
        (
            {
                "messages": MESSAGES,
                "tools": ANTHROPIC_TOOLS,
                "tool_choice": {"type": "required"},
            },
            "does not match any of the expected tags",
        ),
        (
            {
                "messages": MESSAGES,
                "tools": ANTHROPIC_TOOLS,
                "tool_choice": {"type": "tool", "name": "nope"},
            },
            "Tool 'nope' not found",
        ),
        (
            {"messages": MESSAGES, "output_config": {"format": {"type": "json_object"}}},
            "output_config.format.type",
        ),
    ],
    ids=[
        "unanswered-call",
        "no-results",
        "unknown-result",
        "results-not-first",
        "bad-name",
        "schema-not-object",
        "no-input-schema",
        "choice-without-tools",
        "openai-choice",
        "unknown-named-tool",
        "bad-format",
    ],
)
def test_the_fake_refuses_what_the_messages_api_refuses(stack, body, words):
    fake = stack.enter_context(FakeAnthropic(api_key=KEY, tool_calls=[PARIS]))
    answer = post(fake, body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and words in error["message"]


def test_the_fake_answers_whole_tool_use_blocks(stack):
    fake = stack.enter_context(FakeAnthropic(api_key=KEY, tool_calls=[PARIS]))
    body = post(fake, {"messages": MESSAGES, "tools": ANTHROPIC_TOOLS}).json()
    assert body["stop_reason"] == "tool_use"
    assert body["content"] == [
        {
            "type": "tool_use",
            "id": "toolu_fake1",
            "name": "get_weather",
            "input": {"city": "Paris", "unit": "celsius"},
        }
    ]


def test_the_fake_streams_tool_use_as_anthropics_block_events(stack):
    fake = stack.enter_context(FakeAnthropic(api_key=KEY, tool_calls=[PARIS, TIME]))
    answer = requests.post(
        f"{fake.url}/v1/messages",
        json={
            "model": MODEL,
            "max_tokens": 64,
            "messages": MESSAGES,
            "tools": ANTHROPIC_TOOLS,
            "stream": True,
        },
        headers={"anthropic-version": API_VERSION, "x-api-key": KEY},
        timeout=5,
        stream=True,
    )
    events = [
        json.loads(line.removeprefix("data: "))
        for line in answer.iter_lines(decode_unicode=True)
        if line.startswith("data: ")
    ]
    kinds = [event["type"] for event in events]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-2:] == ["message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    starts = [event for event in events if event["type"] == "content_block_start"]
    assert [start["content_block"] for start in starts] == [
        {"type": "tool_use", "id": "toolu_fake1", "name": "get_weather", "input": {}},
        {"type": "tool_use", "id": "toolu_fake2", "name": "get_time", "input": {}},
    ]
    for index, call in enumerate((PARIS, TIME)):
        pieces = [
            event["delta"]["partial_json"]
            for event in events
            if event["type"] == "content_block_delta" and event["index"] == index
        ]
        assert all(len(piece) <= 3 for piece in pieces)
        assert "".join(pieces) == call["arguments"]
    assert kinds.count("content_block_stop") == 2


# -- any split of the input_json_delta pieces reassembles the same call --------------------

ARGUMENTS = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none()),
    max_size=4,
).map(json.dumps)


def cuts(text):
    return st.lists(st.integers(0, len(text)), max_size=12).map(
        lambda points: [
            text[start:end]
            for start, end in zip([0, *sorted(points)], [*sorted(points), len(text)], strict=True)
        ]
    )


def event(data):
    return SSEEvent(json.dumps(data), event=data["type"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(ARGUMENTS, min_size=1, max_size=3).flatmap(
        lambda texts: st.tuples(st.just(texts), st.tuples(*[cuts(text) for text in texts]))
    )
)
def test_any_split_of_the_input_json_deltas_reassembles_the_same_calls(case):
    texts, splits = case
    wire = [event({"type": "message_start", "message": {"model": MODEL, "usage": {}}})]
    # A text block first, so the tool_use blocks' indexes are not their positions.
    wire.append(
        event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        )
    )
    wire.append(event({"type": "content_block_stop", "index": 0}))
    calls = []
    for position, (text, pieces) in enumerate(zip(texts, splits, strict=True)):
        block = position + 1
        ident = f"toolu_{position}"
        calls.append(ToolCall(id=ident, name="get_weather", arguments=text))
        start = {"type": "tool_use", "id": ident, "name": "get_weather", "input": {}}
        wire.append(event({"type": "content_block_start", "index": block, "content_block": start}))
        for piece in pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            wire.append(event({"type": "content_block_delta", "index": block, "delta": delta}))
        wire.append(event({"type": "content_block_stop", "index": block}))
    wire.append(event({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}}))
    wire.append(event({"type": "message_stop"}))
    chunks = list(codec.parse_stream("anthropic", wire))
    assert chunks[-1].tool_calls == tuple(calls)
    assert chunks[-1].finish_reason == "tool_calls"
    assert Completion.from_chunks(chunks, model=MODEL, provider="anthropic").tool_calls == tuple(
        calls
    )
    # The whole answer with the same calls parses to the same calls.
    whole = {
        "content": [
            {"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)}
            for c in calls
        ],
        "stop_reason": "tool_use",
    }
    parsed = codec.parse_response("anthropic", whole).tool_calls
    assert [(c.id, json.loads(c.arguments)) for c in parsed] == [
        (c.id, json.loads(c.arguments)) for c in calls
    ]


@pytest.mark.parametrize(
    ("url", "source"),
    [
        (
            "data:image/png;base64,iVBORw0KGgo=",
            {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        ),
        (
            "https://example.com/paris.png",
            {"type": "url", "url": "https://example.com/paris.png"},
        ),
    ],
    ids=["data-url", "https-url"],
)
def test_an_image_part_reaches_the_messages_api_as_an_image_block_over_http(stack, url, source):
    router, fake = anthropic(stack, reply="The Eiffel Tower.")
    question = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Which city is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]
    answer = router.complete(MODEL, question, provider="anthropic")
    assert answer.text == "The Eiffel Tower."
    [message] = fake.requests[0].json["messages"]
    assert message == {
        "role": "user",
        "content": [
            {"type": "text", "text": "Which city is this?"},
            {"type": "image", "source": source},
        ],
    }
