"""Tool calling and JSON answers end to end, over real HTTP on 127.0.0.1.

Through ``Router`` and the OpenAI chat codec, against :class:`FakeOpenAI` speaking OpenAI's
tool wire format: the Gravityengine plugin and a config-declared endpoint, whole and streamed,
parallel calls, tool results sent back, JSON schemas, capability routing and failover. Then the
fake's own checks, and property tests that any split of streamed calls reassembles the same.
"""

from __future__ import annotations

import json
from contextlib import ExitStack

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from hypotez_providers import (
    AllProvidersFailed,
    InvalidInput,
    Registry,
    Router,
    openai_chat,
)
from hypotez_providers.results import Chunk, Completion
from hypotez_providers.settings import parse_settings
from hypotez_providers.sse import SSEEvent
from hypotez_providers.testing import FakeOpenAI, closed_port_url
from hypotez_providers.testing.samples import PARIS_CALL as PARIS
from hypotez_providers.testing.samples import ROME_CALL as ROME
from hypotez_providers.testing.samples import SAMPLE_TOOLS as TOOLS
from hypotez_providers.tools import ToolCall, ToolCallAssembler, ToolCallDelta

GRAVITY_PATH = "/api/openai/v1/chat/completions"
GRAVITY_MODEL = "gpt-3.5-turbo-16k"
LOCAL_MODEL = "llama-3.3-70b"
MESSAGES = [{"role": "user", "content": "What is the weather in Paris and in Rome?"}]
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
ENDPOINT = """
[endpoints.local]
base_url = "{url}/v1"
models = ["llama-3.3-70b"]
tools = true
structured_output = true
"""


@pytest.fixture
def stack():
    with ExitStack() as stack:
        yield stack


def gravity(stack, **options):
    """A Router whose Gravityengine plugin points at a FakeOpenAI with ``options``."""
    fake = stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None, **options))
    registry = Registry(environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url})
    return Router(registry), fake, GRAVITY_MODEL


def endpoint(stack, **options):
    """A Router over an ``[endpoints.local]`` declaring ``tools = true``, on a FakeOpenAI."""
    fake = stack.enter_context(FakeOpenAI(models=[LOCAL_MODEL], **options))
    registry = Registry(
        settings=parse_settings(ENDPOINT.format(url=fake.url)), load_entry_points=False
    )
    return Router(registry), fake, LOCAL_MODEL


UPSTREAMS = pytest.mark.parametrize("upstream", [gravity, endpoint], ids=["gravity", "endpoint"])


def streamed(router, model, messages, **options):
    """The chunks of a routed stream, and the completion assembled from them."""
    stream = router.stream(model, messages, **options)
    chunks = list(stream)
    completion = Completion.from_chunks(chunks, model=model, provider=stream.provider or "")
    return chunks, completion


def finishing(chunks):
    """The chunk with the finish reason (a usage chunk may come after it)."""
    return next(chunk for chunk in chunks if chunk.finish_reason)


def shape(calls):
    """Calls without their ids (every answer from the fake gets fresh ones)."""
    return [(call.name, call.arguments) for call in calls]


# -- one call, whole and streamed ---------------------------------------------------------


@UPSTREAMS
def test_a_tool_call_is_the_same_parsed_call_whole_and_streamed(stack, upstream):
    router, fake, model = upstream(stack, tool_calls=[PARIS], reply=FINAL)
    answer = router.complete(model, MESSAGES, tools=TOOLS)
    assert answer.tool_calls == (ToolCall(id="call_fake1", **PARIS),)
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    assert answer.tool_calls[0].parsed == {"city": "Paris", "unit": "celsius"}

    chunks, assembled = streamed(router, model, MESSAGES, tools=TOOLS)
    last = finishing(chunks)
    assert last.finish_reason == "tool_calls"
    assert last.tool_calls == (ToolCall(id="call_fake2", **PARIS),)
    assert shape(assembled.tool_calls) == shape(answer.tool_calls)
    assert assembled.finish_reason == "tool_calls" and assembled.text == ""
    assert len(fake.requests) == 2


@UPSTREAMS
def test_streamed_deltas_render_progress_and_assemble_to_the_whole_answer(stack, upstream):
    router, _, model = upstream(stack, tool_calls=[PARIS])
    whole = router.complete(model, MESSAGES, tools=TOOLS)
    chunks, assembled = streamed(router, model, MESSAGES, tools=TOOLS)
    deltas = [delta for chunk in chunks for delta in chunk.tool_call_deltas]
    assert deltas[0].id == "call_fake2" and deltas[0].name == "get_weather"
    assert deltas[0].arguments == ""
    pieces = [delta.arguments for delta in deltas[1:]]
    assert all(0 < len(piece) <= 3 for piece in pieces), "split every 3 characters"
    assert "".join(pieces) == PARIS["arguments"]
    assert '"Pa' in pieces, "a piece cuts a token in two"
    # Progress can be shown as the arguments grow; only the finishing chunk has whole calls.
    assert [bool(chunk.tool_calls) for chunk in chunks] == [
        chunk is finishing(chunks) for chunk in chunks
    ]
    assert shape(assembled.tool_calls) == shape(whole.tool_calls)


@UPSTREAMS
def test_parallel_calls_come_back_in_order_whole_and_streamed(stack, upstream):
    router, _, model = upstream(stack, tool_calls=[PARIS, ROME, TIME])
    whole = router.complete(model, MESSAGES, tools=TOOLS)
    assert [call.id for call in whole.tool_calls] == ["call_fake1", "call_fake2", "call_fake3"]
    assert shape(whole.tool_calls) == [tuple(c.values()) for c in (PARIS, ROME, TIME)]

    chunks, assembled = streamed(router, model, MESSAGES, tools=TOOLS)
    indexes = [delta.index for chunk in chunks for delta in chunk.tool_call_deltas]
    assert indexes[:6] == [0, 1, 2, 0, 1, 2], "parallel calls are interleaved by index"
    assert shape(finishing(chunks).tool_calls) == shape(whole.tool_calls)
    assert assembled.tool_calls == finishing(chunks).tool_calls


@UPSTREAMS
def test_parallel_tool_calls_false_gets_one_call(stack, upstream):
    router, fake, model = upstream(stack, tool_calls=[PARIS, ROME])
    answer = router.complete(model, MESSAGES, tools=TOOLS, parallel_tool_calls=False)
    assert shape(answer.tool_calls) == [tuple(PARIS.values())]
    assert fake.requests[-1].json["parallel_tool_calls"] is False


@UPSTREAMS
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_forced_tool_choice_still_finishes_with_tool_calls(stack, upstream, stream):
    # The real API says "stop" after a call it was forced to make; the codec says tool_calls.
    router, _, model = upstream(stack, tool_calls=[PARIS, TIME])
    choice = {"type": "function", "function": {"name": "get_time"}}
    if stream:
        _, answer = streamed(router, model, MESSAGES, tools=TOOLS, tool_choice=choice)
    else:
        answer = router.complete(model, MESSAGES, tools=TOOLS, tool_choice=choice)
    assert shape(answer.tool_calls) == [tuple(TIME.values())]
    assert answer.finish_reason == "tool_calls"


@UPSTREAMS
def test_tool_choice_none_gets_text(stack, upstream):
    router, _, model = upstream(stack, tool_calls=[PARIS], reply="No tools today.")
    answer = router.complete(model, MESSAGES, tools=TOOLS, tool_choice="none")
    assert (answer.text, answer.tool_calls, answer.finish_reason) == ("No tools today.", (), "stop")


# -- the conversation goes on --------------------------------------------------------------


def results_for(calls):
    return [
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"celsius": 21})}
        for call in calls
    ]


@UPSTREAMS
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_sending_back_the_tool_results_gets_the_final_answer(stack, upstream, stream):
    router, fake, model = upstream(stack, tool_calls=[PARIS, ROME], reply=FINAL)
    if stream:
        _, answer = streamed(router, model, MESSAGES, tools=TOOLS)
    else:
        answer = router.complete(model, MESSAGES, tools=TOOLS)
    conversation = [*MESSAGES, answer.message(), *results_for(answer.tool_calls)]
    if stream:
        _, final = streamed(router, model, conversation, tools=TOOLS)
    else:
        final = router.complete(model, conversation, tools=TOOLS)
    assert (final.text, final.tool_calls, final.finish_reason) == (FINAL, (), "stop")
    sent = fake.requests[-1].json["messages"]
    assert sent[1]["tool_calls"] == [call.wire() for call in answer.tool_calls]
    assert [m["tool_call_id"] for m in sent[2:]] == [call.id for call in answer.tool_calls]


def test_the_request_has_openais_exact_shapes(stack):
    router, fake, model = gravity(stack, tool_calls=[PARIS], reply=FINAL)
    first = router.complete(
        model,
        MESSAGES,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    conversation = [*MESSAGES, first.message(), *results_for(first.tool_calls)]
    router.complete(model, conversation, tools=TOOLS, tool_choice="auto", response_format=SCHEMA)
    sent = fake.requests[0].json
    assert sent["tools"] == TOOLS
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    sent = fake.requests[1].json
    assert sent["tool_choice"] == "auto"
    assert sent["response_format"] == SCHEMA
    assistant, result = sent["messages"][1:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [
        {
            "id": "call_fake1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": PARIS["arguments"]},
        }
    ]
    assert result == {"role": "tool", "tool_call_id": "call_fake1", "content": '{"celsius": 21}'}


# -- structured output ---------------------------------------------------------------------


def follows_the_schema(text):
    """A tiny check of SCHEMA: an object with exactly a string city and a number celsius."""
    document = json.loads(text)
    schema = SCHEMA["json_schema"]["schema"]
    kinds = {"string": str, "number": (int, float)}
    assert isinstance(document, dict)
    assert set(document) == set(schema["required"])
    for name, spec in schema["properties"].items():
        assert isinstance(document[name], kinds[spec["type"]])
    return document


@UPSTREAMS
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_json_schema_request_gets_json_that_validates(stack, upstream, stream):
    reply = {"city": "Paris", "celsius": 21.5}
    router, fake, model = upstream(stack, json_reply=reply)
    if stream:
        _, answer = streamed(router, model, MESSAGES, response_format=SCHEMA)
    else:
        answer = router.complete(model, MESSAGES, response_format=SCHEMA)
    assert follows_the_schema(answer.text) == reply
    assert fake.requests[-1].json["response_format"] == SCHEMA


def test_without_a_response_format_the_json_reply_is_not_used(stack):
    router, _, model = gravity(stack, json_reply={"city": "Paris"}, reply="plain")
    assert router.complete(model, MESSAGES).text == "plain"


# -- capability routing and failover -------------------------------------------------------

ALIAS = """
[endpoints.plain]
base_url = "{plain}/v1"
models = ["llama-3.3-70b"]

[endpoints.agent]
base_url = "{agent}/v1"
models = ["llama-3.3-70b"]
tools = true

[aliases]
smart = ["plain:llama-3.3-70b", "agent:llama-3.3-70b"]
"""


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_tool_request_skips_an_endpoint_without_tools(stack, stream):
    plain = stack.enter_context(FakeOpenAI(models=None, tool_calls=[PARIS]))
    agent = stack.enter_context(FakeOpenAI(models=None, tool_calls=[PARIS]))
    settings_text = ALIAS.format(plain=plain.url, agent=agent.url)
    router = Router(Registry(settings=parse_settings(settings_text), load_entry_points=False))
    if stream:
        routed = router.stream("smart", MESSAGES, tools=TOOLS)
        chunks = list(routed)
        answer = Completion.from_chunks(
            chunks, model="smart", provider=routed.provider or "", attempts=routed.attempts
        )
    else:
        answer = router.complete("smart", MESSAGES, tools=TOOLS)
    assert answer.provider == "agent"
    assert answer.tool_calls == (ToolCall(id="call_fake1", **PARIS),)
    skipped, served = answer.attempts
    assert (skipped.provider, skipped.outcome) == ("plain", "skipped")
    assert skipped.message == "cannot serve this request: no tools"
    assert (served.provider, served.outcome) == ("agent", "ok")
    assert plain.requests == [], "the endpoint without tools was not asked"
    # Plain text still goes to the first.
    assert router.complete("smart", MESSAGES).provider == "plain"


FAILOVER = """
[endpoints.down]
base_url = "{down}/v1"
models = ["llama-3.3-70b"]
tools = true

[aliases]
agent = ["down:llama-3.3-70b", "gravityengine:gpt-3.5-turbo-16k"]
"""


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_an_alias_whose_first_provider_is_down_answers_a_tool_request_from_the_second(
    stack, stream
):
    fake = stack.enter_context(
        FakeOpenAI(path=GRAVITY_PATH, models=None, tool_calls=[PARIS, TIME], reply=FINAL)
    )
    registry = Registry(
        settings=parse_settings(FAILOVER.format(down=closed_port_url())),
        environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url},
    )
    router = Router(registry, sleep=lambda seconds: None)
    if stream:
        routed = router.stream("agent", MESSAGES, tools=TOOLS)
        chunks = list(routed)
        answer = Completion.from_chunks(
            chunks, model="agent", provider=routed.provider or "", attempts=routed.attempts
        )
    else:
        answer = router.complete("agent", MESSAGES, tools=TOOLS)
    assert answer.provider == "gravityengine"
    assert answer.tool_calls == (
        ToolCall(id="call_fake1", **PARIS),
        ToolCall(id="call_fake2", **TIME),
    )
    assert answer.finish_reason == "tool_calls"
    assert answer.attempts[0].provider == "down" and answer.attempts[0].outcome == "failed"
    assert answer.attempts[-1].provider == "gravityengine"
    # ... and the conversation goes on there.
    conversation = [*MESSAGES, answer.message(), *results_for(answer.tool_calls)]
    assert router.complete("agent", conversation, tools=TOOLS).text == FINAL


def test_a_tool_request_no_candidate_can_serve_fails_without_a_request(stack):
    fake = stack.enter_context(FakeOpenAI(models=None, tool_calls=[PARIS]))
    text = f'[endpoints.plain]\nbase_url = "{fake.url}/v1"\nmodels = ["m"]\n'
    router = Router(Registry(settings=parse_settings(text), load_entry_points=False))
    with pytest.raises(AllProvidersFailed, match="cannot serve this request: no tools"):
        router.complete("m", MESSAGES, tools=TOOLS)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
            "tools[0].function.name",
        ),
        (
            {"tools": [{"type": "function", "function": {"name": "x" * 65}}]},
            "tools[0].function.name",
        ),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}
                ]
            },
            "tools[0].function.parameters",
        ),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice",
        ),
        ({"response_format": {"type": "json_schema"}}, "response_format"),
    ],
    ids=["name-pattern", "name-length", "parameters-not-object", "unknown-choice", "schema"],
)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_bad_tools_are_invalid_input_before_any_request(stack, options, field, stream):
    router, fake, model = gravity(stack, tool_calls=[PARIS])
    with pytest.raises(InvalidInput) as caught:
        if stream:
            list(router.stream(model, MESSAGES, **options))
        else:
            router.complete(model, MESSAGES, **options)
    assert caught.value.field is not None and caught.value.field.startswith(field)
    assert fake.requests == []


# -- the fake speaks the real API's checks -------------------------------------------------


def post(fake, body):
    return requests.post(f"{fake.url}/v1/chat/completions", json=body, timeout=5)


CALLED = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
    ],
}


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        (
            {"messages": [*MESSAGES, {"role": "tool", "tool_call_id": "call_1", "content": "21"}]},
            400,
            "messages.[1].role",
            "messages with role 'tool' must be a response to a preceeding message with "
            "'tool_calls'",
        ),
        (
            {
                "messages": [
                    *MESSAGES,
                    CALLED,
                    {"role": "tool", "tool_call_id": "call_9", "content": "21"},
                ]
            },
            400,
            "messages.[2].role",
            "must be a response to a preceeding message",
        ),
        (
            {
                "messages": [
                    *MESSAGES,
                    CALLED,
                    {"role": "tool", "tool_call_id": "call_1", "content": "21"},
                    {"role": "user", "content": "and?"},
                ]
            },
            400,
            "messages.[1].role",
            "did not have response messages: call_2",
        ),
        (
            {"messages": MESSAGES, "tools": [{"type": "function", "function": {"name": "a b"}}]},
            400,
            "tools[0].function.name",
            "string does not match pattern",
        ),
        (
            {
                "messages": MESSAGES,
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "string"}},
                    }
                ],
            },
            400,
            "tools[0].function.parameters",
            "Invalid schema for function 'f'",
        ),
        (
            {"messages": MESSAGES, "tools": [{"function": {"name": "f"}}]},
            400,
            "tools[0].type",
            "Missing required parameter: 'tools[0].type'.",
        ),
        (
            {"messages": MESSAGES, "tool_choice": "auto"},
            400,
            "tool_choice",
            "'tool_choice' is only allowed when 'tools' are specified",
        ),
        (
            {
                "messages": MESSAGES,
                "tools": TOOLS,
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            400,
            "tool_choice",
            "function 'nope'",
        ),
        (
            {"messages": MESSAGES, "response_format": {"type": "json_schema"}},
            400,
            "response_format.json_schema",
            "Missing required parameter",
        ),
    ],
    ids=[
        "orphan-tool",
        "unknown-call",
        "unanswered-call",
        "bad-name",
        "bad-schema",
        "no-type",
        "choice-without-tools",
        "unknown-choice",
        "no-json-schema",
    ],
)
def test_the_fake_refuses_what_the_real_api_refuses(stack, body, status, param, words):
    fake = stack.enter_context(FakeOpenAI(tool_calls=[PARIS]))
    answer = post(fake, {"model": "gpt-4o-mini", **body})
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"]


def test_the_fake_answers_tool_calls_in_openais_whole_shape(stack):
    fake = stack.enter_context(FakeOpenAI(tool_calls=[PARIS]))
    body = post(fake, {"model": "gpt-4o-mini", "messages": MESSAGES, "tools": TOOLS}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_fake1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": PARIS["arguments"]},
            }
        ],
        "refusal": None,
    }


def test_the_fake_streams_tool_calls_in_openais_delta_shape(stack):
    fake = stack.enter_context(FakeOpenAI(tool_calls=[PARIS], tool_argument_pieces=5))
    answer = requests.post(
        f"{fake.url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES, "tools": TOOLS, "stream": True},
        timeout=5,
        stream=True,
    )
    events = [
        line.removeprefix("data: ")
        for line in answer.iter_lines(decode_unicode=True)
        if line.startswith("data: ")
    ]
    assert events[-1] == "[DONE]"
    choices = [json.loads(event)["choices"][0] for event in events[:-1]]
    first = choices[0]["delta"]
    assert first["role"] == "assistant" and first["content"] is None
    assert first["tool_calls"] == [
        {
            "index": 0,
            "id": "call_fake1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    pieces = [choice["delta"]["tool_calls"][0] for choice in choices[1:-1]]
    assert all(set(piece) == {"index", "function"} for piece in pieces)
    assert [len(piece["function"]["arguments"]) for piece in pieces][:-1] == [5] * (len(pieces) - 1)
    assert "".join(piece["function"]["arguments"] for piece in pieces) == PARIS["arguments"]
    assert choices[-1] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}


# -- any split reassembles the same calls --------------------------------------------------

ARGUMENTS = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.one_of(st.integers(), st.text(max_size=12), st.booleans(), st.none()),
    max_size=4,
).map(json.dumps)


def cuts(text):
    """A strategy for ``text`` cut into pieces anywhere (mid-token, mid-character escape)."""
    return st.lists(st.integers(0, len(text)), max_size=12).map(
        lambda points: [
            text[start:end]
            for start, end in zip([0, *sorted(points)], [*sorted(points), len(text)], strict=True)
        ]
    )


@st.composite
def split_calls(draw):
    """Two calls' deltas (header first, then arguments cut anywhere), interleaved any way."""
    calls = [
        ToolCall(id=f"call_{index}", name=name, arguments=draw(ARGUMENTS))
        for index, name in enumerate(("get_weather", "get_time"))
    ]
    queues = []
    for index, call in enumerate(calls):
        pieces = draw(cuts(call.arguments))
        header = ToolCallDelta(index=index, id=call.id, name=call.name, arguments=pieces[0])
        queues.append([header] + [ToolCallDelta(index=index, arguments=p) for p in pieces[1:]])
    order = draw(st.permutations([i for i, queue in enumerate(queues) for _ in queue]))
    deltas = [queues[i].pop(0) for i in order]
    return tuple(calls), deltas


@settings(max_examples=200, deadline=None)
@given(split_calls())
def test_any_split_and_interleaving_reassembles_the_same_calls(case):
    calls, deltas = case
    assembler = ToolCallAssembler()
    for delta in deltas:
        assembler.add(delta)
    assert assembler.finish() == calls

    chunks = [Chunk(tool_call_deltas=(delta,)) for delta in deltas]
    chunks.append(Chunk(finish_reason="tool_calls"))
    assembled = Completion.from_chunks(chunks, model="m", provider="p")
    assert assembled.tool_calls == calls


@settings(max_examples=200, deadline=None)
@given(split_calls(), st.booleans())
def test_any_split_streamed_on_the_wire_parses_to_the_same_calls(case, finish_apart):
    calls, deltas = case
    events = []
    for delta in deltas:
        piece = {"index": delta.index, "function": {"arguments": delta.arguments}}
        if delta.id:
            piece.update(id=delta.id, type="function")
            piece["function"]["name"] = delta.name
        events.append({"choices": [{"index": 0, "delta": {"tool_calls": [piece]}}]})
    if finish_apart:
        events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    else:
        events[-1]["choices"][0]["finish_reason"] = "tool_calls"
    wire = [SSEEvent(json.dumps(event)) for event in events] + [SSEEvent("[DONE]")]
    chunks = list(openai_chat.parse_stream("p", wire))
    assert chunks[-1].tool_calls == calls and chunks[-1].finish_reason == "tool_calls"
    assert [d for chunk in chunks for d in chunk.tool_call_deltas] == deltas
    assert Completion.from_chunks(chunks, model="m", provider="p").tool_calls == calls
