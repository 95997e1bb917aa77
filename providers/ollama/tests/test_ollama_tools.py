"""Tools, JSON answers and images through Ollama's /api/chat, over real HTTP on 127.0.0.1.

The request in Ollama's exact shapes; through ``Router``: the same parsed tool call as the
OpenAI-compatible side gives for the same reply, whole and streamed; tool results sent back;
JSON schemas; images; and failover to an OpenAI-compatible provider mid tool conversation.
Then FakeOllama's own checks, and the pure parsing of Ollama's tool calls.
"""

from __future__ import annotations

import base64
import json
from contextlib import ExitStack

import pytest
import requests
from hypotez_ollama import codec

from hypotez_providers import (
    CompletionOptions,
    InvalidInput,
    MalformedResponse,
    Registry,
    Router,
)
from hypotez_providers.results import Completion
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOllama, FakeOpenAI
from hypotez_providers.testing.samples import CLOCK_TOOL as CLOCK
from hypotez_providers.testing.samples import PARIS_CALL as PARIS
from hypotez_providers.testing.samples import SAMPLE_TOOLS as TOOLS
from hypotez_providers.testing.samples import WEATHER_TOOL as WEATHER
from hypotez_providers.tools import ToolCall, ToolCallDelta

MODEL = "llama3.2:latest"
GRAVITY_PATH = "/api/openai/v1/chat/completions"
GRAVITY_MODEL = "gpt-3.5-turbo-16k"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris?"}]
TIME = {"name": "get_time", "arguments": '{"tz": "Europe/Paris"}'}
FINAL = "It is 21 °C in Paris."
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "weather", "schema": SCHEMA}}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture
def stack():
    with ExitStack() as stack:
        yield stack


def ollama_router(stack, **options):
    """A Router whose ollama plugin points at a FakeOllama with ``options``."""
    fake = stack.enter_context(FakeOllama(**options))
    settings = parse_settings(f'[providers.ollama]\nmodels = ["{MODEL}"]\n')
    registry = Registry(settings=settings, environ={"HYPOTEZ_OLLAMA_BASE_URL": fake.url})
    stack.callback(registry.close)
    return Router(registry), fake


def gravity_router(stack, **options):
    """A Router whose Gravityengine plugin points at a FakeOpenAI with ``options``."""
    fake = stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None, **options))
    registry = Registry(environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url})
    stack.callback(registry.close)
    return Router(registry), fake


def streamed(router, model, messages, **options):
    """The chunks of a routed stream, and the completion assembled from them."""
    stream = router.stream(model, messages, **options)
    chunks = list(stream)
    completion = Completion.from_chunks(chunks, model=model, provider=stream.provider or "")
    return chunks, completion


def shape(calls):
    return [(call.name, call.arguments, call.parsed) for call in calls]


def results_for(calls):
    return [
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 21})}
        for call in calls
    ]


# -- the request in Ollama's shapes --------------------------------------------------------


def test_tools_are_sent_in_the_function_shape_without_strict_or_tool_choice(stack):
    router, fake = ollama_router(stack)
    strict = {**WEATHER, "function": {**WEATHER["function"], "strict": True}}
    router.complete(MODEL, MESSAGES, tools=[strict, CLOCK], tool_choice="auto")
    sent = fake.requests[0].json
    assert sent["tools"] == TOOLS
    assert "tool_choice" not in sent and "parallel_tool_calls" not in sent
    assert "format" not in sent


def test_tool_choice_none_sends_no_tools_and_a_named_choice_sends_only_that_tool(stack):
    router, fake = ollama_router(stack, tool_calls=[PARIS, TIME])
    answer = router.complete(MODEL, MESSAGES, tools=TOOLS, tool_choice="none")
    assert "tools" not in fake.requests[-1].json
    assert (answer.text, answer.tool_calls) == (fake.reply, ())
    choice = {"type": "function", "function": {"name": "get_time"}}
    answer = router.complete(MODEL, MESSAGES, tools=TOOLS, tool_choice=choice)
    assert fake.requests[-1].json["tools"] == [CLOCK]
    assert shape(answer.tool_calls) == [("get_time", TIME["arguments"], {"tz": "Europe/Paris"})]
    router.complete(MODEL, MESSAGES, tools=TOOLS, tool_choice="required")
    assert fake.requests[-1].json["tools"] == TOOLS


def test_assistant_tool_calls_and_tool_results_are_sent_in_ollamas_shape(stack):
    router, fake = ollama_router(stack, reply=FINAL)
    conversation = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_a", "type": "function", "function": PARIS},
                {"id": "call_b", "type": "function", "function": TIME},
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": '{"celsius": 21}'},
        {"role": "tool", "tool_call_id": "call_b", "content": "14:05"},
    ]
    router.complete(MODEL, conversation, tools=TOOLS)
    assert fake.requests[0].json["messages"] == [
        *MESSAGES,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_a",
                    "function": {
                        "index": 0,
                        "name": "get_weather",
                        "arguments": {"city": "Paris", "unit": "celsius"},
                    },
                },
                {
                    "id": "call_b",
                    "function": {
                        "index": 1,
                        "name": "get_time",
                        "arguments": {"tz": "Europe/Paris"},
                    },
                },
            ],
        },
        {
            "role": "tool",
            "content": '{"celsius": 21}',
            "tool_name": "get_weather",
            "tool_call_id": "call_a",
        },
        {"role": "tool", "content": "14:05", "tool_name": "get_time", "tool_call_id": "call_b"},
    ]


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [({"type": "json_object"}, "json"), (JSON_SCHEMA, SCHEMA), ({"type": "text"}, None)],
    ids=["json_object", "json_schema", "text"],
)
def test_response_format_is_sent_as_ollamas_format(stack, response_format, expected):
    router, fake = ollama_router(stack)
    router.complete(MODEL, MESSAGES, response_format=response_format)
    assert fake.requests[0].json.get("format") == expected


def test_an_image_reaches_ollama_as_base64_in_images(stack):
    router, fake = ollama_router(stack)
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        ],
    }
    answer = router.complete(MODEL, [message])
    assert answer.provider == "ollama"
    assert fake.requests[0].json["messages"] == [
        {"role": "user", "content": "What is in this picture?", "images": [PNG]}
    ]


def test_arguments_that_are_not_a_json_object_are_invalid_input_before_any_request(stack):
    router, fake = ollama_router(stack)
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1, 2]"}}
    conversation = [
        *MESSAGES,
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c", "content": "ok"},
    ]
    with pytest.raises(InvalidInput, match="arguments as a JSON object"):
        router.complete(MODEL, conversation)
    assert fake.requests == []


# -- tool calls back, the same as the OpenAI-compatible side's -----------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_tool_call_is_the_same_parsed_call_as_the_openai_side_gives(stack, stream):
    ollama, _ = ollama_router(stack, tool_calls=[PARIS, TIME])
    gravity, _ = gravity_router(stack, tool_calls=[PARIS, TIME])
    if stream:
        chunks, answer = streamed(ollama, MODEL, MESSAGES, tools=TOOLS)
        _, theirs = streamed(gravity, GRAVITY_MODEL, MESSAGES, tools=TOOLS)
        assert chunks[-1].tool_calls == answer.tool_calls
        assert chunks[-1].finish_reason == "tool_calls"
    else:
        answer = ollama.complete(MODEL, MESSAGES, tools=TOOLS)
        theirs = gravity.complete(GRAVITY_MODEL, MESSAGES, tools=TOOLS)
    assert shape(answer.tool_calls) == shape(theirs.tool_calls)
    assert answer.tool_calls == (
        ToolCall(id="call_00000001", **PARIS),
        ToolCall(id="call_00000002", **TIME),
    )
    assert (answer.finish_reason, answer.text) == ("tool_calls", "")
    assert answer.finish_reason == theirs.finish_reason


def test_a_streamed_tool_call_arrives_whole_as_deltas_before_the_done_chunk(stack):
    router, _ = ollama_router(stack, tool_calls=[PARIS, TIME])
    chunks, _ = streamed(router, MODEL, MESSAGES, tools=TOOLS)
    calling, done = chunks
    assert calling.tool_call_deltas == (
        ToolCallDelta(index=0, id="call_00000001", **PARIS),
        ToolCallDelta(index=1, id="call_00000002", **TIME),
    )
    assert (calling.tool_calls, calling.finish_reason) == ((), None)
    assert done.tool_calls == tuple(
        ToolCall(id=d.id or "", name=d.name or "", arguments=d.arguments)
        for d in calling.tool_call_deltas
    )
    assert done.usage is not None and done.model == MODEL


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_calls_from_an_older_ollama_without_ids_get_stable_ids(stack, stream):
    router, _ = ollama_router(stack, tool_calls=[PARIS, TIME], call_ids=False)
    if stream:
        _, answer = streamed(router, MODEL, MESSAGES, tools=TOOLS)
    else:
        answer = router.complete(MODEL, MESSAGES, tools=TOOLS)
    assert [call.id for call in answer.tool_calls] == ["call_0", "call_1"]
    assert shape(answer.tool_calls)[0] == (
        "get_weather",
        PARIS["arguments"],
        json.loads(PARIS["arguments"]),
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_sending_back_the_tool_results_gets_the_final_answer(stack, stream):
    router, fake = ollama_router(stack, tool_calls=[PARIS, TIME], reply=FINAL)
    if stream:
        _, answer = streamed(router, MODEL, MESSAGES, tools=TOOLS)
    else:
        answer = router.complete(MODEL, MESSAGES, tools=TOOLS)
    conversation = [*MESSAGES, answer.message(), *results_for(answer.tool_calls)]
    if stream:
        _, final = streamed(router, MODEL, conversation, tools=TOOLS)
    else:
        final = router.complete(MODEL, conversation, tools=TOOLS)
    assert (final.text, final.tool_calls, final.finish_reason) == (FINAL, (), "stop")
    sent = fake.requests[-1].json["messages"]
    assert [call["id"] for call in sent[1]["tool_calls"]] == [c.id for c in answer.tool_calls]
    assert [(m["tool_name"], m["tool_call_id"]) for m in sent[2:]] == [
        (c.name, c.id) for c in answer.tool_calls
    ]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_json_schema_request_gets_json_that_validates(stack, stream):
    reply = {"city": "Paris", "celsius": 21.5}
    router, fake = ollama_router(stack, json_reply=reply)
    if stream:
        _, answer = streamed(router, MODEL, MESSAGES, response_format=JSON_SCHEMA)
    else:
        answer = router.complete(MODEL, MESSAGES, response_format=JSON_SCHEMA)
    document = json.loads(answer.text)
    assert document == reply
    assert set(document) == set(SCHEMA["required"])
    assert isinstance(document["city"], str) and isinstance(document["celsius"], float)
    assert fake.requests[-1].json["format"] == SCHEMA


def test_the_ollama_plugin_declares_tools_structured_output_and_images():
    capabilities = Registry(environ={}).provider("ollama").info.capabilities
    assert (capabilities.tools, capabilities.structured_output, capabilities.images) == (
        True,
        True,
        True,
    )


# -- failover mid tool conversation --------------------------------------------------------

FAILOVER = """
[providers.ollama]
models = ["llama3.2"]

[aliases]
agent = ["ollama:llama3.2", "gravityengine:gpt-3.5-turbo-16k"]
"""


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_with_ollama_down_mid_tool_conversation_the_openai_side_continues_it(stack, stream):
    ollama = FakeOllama(tool_calls=[PARIS, TIME])
    ollama.start()
    stack.callback(ollama.stop)
    gravity = stack.enter_context(
        FakeOpenAI(path=GRAVITY_PATH, models=None, tool_calls=[PARIS], reply=FINAL)
    )
    registry = Registry(
        settings=parse_settings(FAILOVER),
        environ={
            "HYPOTEZ_OLLAMA_BASE_URL": ollama.url,
            "HYPOTEZ_GRAVITYENGINE_BASE_URL": gravity.url,
        },
    )
    stack.callback(registry.close)
    router = Router(registry, sleep=lambda seconds: None)
    if stream:
        _, first = streamed(router, "agent", MESSAGES, tools=TOOLS)
    else:
        first = router.complete("agent", MESSAGES, tools=TOOLS)
    assert first.provider == "ollama"
    ids = [call.id for call in first.tool_calls]
    assert ids == ["call_00000001", "call_00000002"]

    ollama.stop()  # Ollama goes down before the tool results come back
    conversation = [*MESSAGES, first.message(), *results_for(first.tool_calls)]
    if stream:
        routed = router.stream("agent", conversation, tools=TOOLS)
        chunks = list(routed)
        final = Completion.from_chunks(
            chunks, model="agent", provider=routed.provider or "", attempts=routed.attempts
        )
    else:
        final = router.complete("agent", conversation, tools=TOOLS)
    assert (final.provider, final.text, final.finish_reason) == ("gravityengine", FINAL, "stop")
    assert (final.attempts[0].provider, final.attempts[0].outcome) == ("ollama", "failed")
    sent = gravity.requests[-1].json["messages"]
    assert [call["id"] for call in sent[1]["tool_calls"]] == ids
    assert sent[1]["tool_calls"][0]["function"] == PARIS
    assert [message["tool_call_id"] for message in sent[2:]] == ids


# -- FakeOllama refuses what Ollama refuses ------------------------------------------------


def chat(fake, body):
    return requests.post(f"{fake.url}/api/chat", json={"model": MODEL, **body}, timeout=5)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (
            {"messages": MESSAGES, "tools": WEATHER},
            400,
            "cannot unmarshal object into Go struct field ChatRequest.tools of type api.Tools",
        ),
        (
            {"messages": MESSAGES, "tools": [{"type": "function", "function": "f"}]},
            400,
            "cannot unmarshal string into Go struct field ChatRequest.tools.function",
        ),
        (
            {
                "messages": [
                    *MESSAGES,
                    {
                        "role": "assistant",
                        "content": "",
                        "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}],
                    },
                ]
            },
            400,
            "cannot unmarshal string into Go struct field "
            "ToolCallFunction.messages.tool_calls.function.arguments",
        ),
        (
            {"messages": MESSAGES, "format": "xml"},
            500,
            'expected "json" or a valid JSON Schema object',
        ),
    ],
    ids=["tools-not-a-list", "function-not-an-object", "arguments-as-text", "bad-format"],
)
def test_the_fake_refuses_what_ollama_refuses(stack, body, status, words):
    fake = stack.enter_context(FakeOllama(tool_calls=[PARIS]))
    answer = chat(fake, {"stream": False, **body})
    assert answer.status_code == status
    assert words in answer.json()["error"]


def test_the_fake_streams_tool_calls_in_one_line_before_the_done_line(stack):
    fake = stack.enter_context(FakeOllama(tool_calls=[PARIS]))
    answer = requests.post(
        f"{fake.url}/api/chat",
        json={"model": MODEL, "messages": MESSAGES, "tools": TOOLS},
        timeout=5,
        stream=True,
    )
    lines = [json.loads(line) for line in answer.iter_lines() if line]
    calling, done = lines
    assert calling["done"] is False
    assert calling["message"] == {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_00000001",
                "function": {
                    "index": 0,
                    "name": "get_weather",
                    "arguments": {"city": "Paris", "unit": "celsius"},
                },
            }
        ],
    }
    assert (done["done"], done["done_reason"], done["message"]["content"]) == (True, "stop", "")


def test_the_fake_answers_json_reply_only_when_a_format_is_asked(stack):
    fake = stack.enter_context(FakeOllama(json_reply={"ok": True}, reply="plain"))
    asked = chat(fake, {"messages": MESSAGES, "stream": False, "format": "json"}).json()
    assert asked["message"]["content"] == '{"ok": true}'
    plain = chat(fake, {"messages": MESSAGES, "stream": False}).json()
    assert plain["message"]["content"] == "plain"


# -- the pure mapping ----------------------------------------------------------------------


def test_parse_response_reads_tool_calls_whose_arguments_are_an_object():
    body = {
        "model": MODEL,
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "get_time", "arguments": {"tz": "UTC"}}},
                {"id": "call_x", "function": {"name": "get_time"}},
            ],
        },
        "done": True,
        "done_reason": "stop",
    }
    chunk = codec.parse_response("ollama", body)
    assert chunk.tool_calls == (
        ToolCall(id="call_0", name="get_time", arguments='{"tz": "UTC"}'),
        ToolCall(id="call_x", name="get_time", arguments="{}"),
    )
    assert (chunk.finish_reason, chunk.tool_call_deltas) == ("tool_calls", ())


def test_a_call_cut_by_num_predict_keeps_finish_reason_length():
    lines = [
        {"message": {"content": "", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}},
        {"message": {"content": ""}, "done": True, "done_reason": "length"},
    ]
    last = list(codec.parse_stream("ollama", lines))[-1]
    assert (last.finish_reason, [c.name for c in last.tool_calls]) == ("length", ["f"])


def test_calls_on_several_lines_are_numbered_across_the_answer():
    def calling(name):
        return {"message": {"tool_calls": [{"function": {"name": name, "arguments": {}}}]}}

    lines = [calling("a"), calling("b"), {"message": {"content": ""}, "done": True}]
    chunks = list(codec.parse_stream("ollama", lines))
    assert [d.index for c in chunks for d in c.tool_call_deltas] == [0, 1]
    assert [(c.id, c.name) for c in chunks[-1].tool_calls] == [("call_0", "a"), ("call_1", "b")]


def test_a_tool_call_without_a_name_is_malformed():
    line = {"message": {"tool_calls": [{"function": {"arguments": {}}}]}, "done": False}
    with pytest.raises(MalformedResponse, match="malformed tool call"):
        codec.parse_line("ollama", line)


def test_to_ollama_format_and_tools_for_each_choice():
    options = CompletionOptions(tools=TOOLS, response_format={"type": "json_object"})
    assert codec.to_ollama_format(options) == "json"
    assert codec.to_ollama_tools(options) == TOOLS
    assert codec.to_ollama_tools(CompletionOptions(tools=TOOLS, tool_choice="none")) == []
    assert codec.to_ollama_format(CompletionOptions()) is None
