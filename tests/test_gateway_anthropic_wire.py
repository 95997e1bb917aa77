"""Anthropic's Messages wire format: requests in, whole answers, stream events and errors out.

Shapes are checked against the official ``anthropic`` SDK's own types and stream accumulator
(its client talks to the translation through an in-memory transport), not only our reading.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hypotez_providers import InvalidInput, validate_messages, validate_options
from hypotez_providers.gateway.anthropic_stream import event
from hypotez_providers.gateway.anthropic_wire import (
    ERROR_TYPES,
    MessageStream,
    error_body,
    message_body,
    new_message_id,
    parse_request,
    stop_reason,
)
from hypotez_providers.gateway.call import GatewayCall
from hypotez_providers.gateway.failures import Failure
from hypotez_providers.results import Chunk, Completion, Usage
from hypotez_providers.tools import ToolCall, ToolCallDelta

anthropic = pytest.importorskip("anthropic")
httpx2 = pytest.importorskip("httpx2")

from anthropic.types import Message, RawMessageStreamEvent  # noqa: E402
from anthropic.types.shared import ErrorResponse  # noqa: E402
from pydantic import TypeAdapter  # noqa: E402

EVENT = TypeAdapter(RawMessageStreamEvent)
PNG = "iVBORw0KGgo="
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def request(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "claude-alias",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body.update(fields)
    return body


def routable(call: GatewayCall) -> None:
    """The router would take the translated call as it is (no error after the gateway's)."""
    validate_messages(call.messages)
    validate_options(call.options)


# -- requests ---------------------------------------------------------------------------------


def test_a_minimal_request_becomes_one_user_message_and_max_tokens():
    call = parse_request(request())
    assert call == GatewayCall(
        model="claude-alias",
        messages=[{"role": "user", "content": "Hi"}],
        stream=False,
        options={"max_tokens": 64},
        include_usage=False,
    )


def test_a_streamed_request_asks_for_usage():
    call = parse_request(request(stream=True))
    assert call.stream and call.include_usage


def test_system_as_text_or_blocks_leads_the_messages():
    assert parse_request(request(system="Be brief.")).messages[0] == {
        "role": "system",
        "content": "Be brief.",
    }
    blocks = [
        {"type": "text", "text": "One.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Two."},
    ]
    call = parse_request(request(system=blocks))
    assert call.messages[0] == {"role": "system", "content": "One.\n\nTwo."}
    assert parse_request(request(system="")).messages == [{"role": "user", "content": "Hi"}]


def test_a_system_message_mid_conversation_stays_in_its_place():
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": [{"type": "text", "text": "Now answer in French."}]},
        {"role": "assistant", "content": ""},
    ]
    call = parse_request(request(messages=messages))
    assert call.messages == [
        {"role": "user", "content": "Hi"},
        {"role": "system", "content": "Now answer in French."},
        {"role": "assistant", "content": ""},
    ]
    routable(call)


def test_a_bad_value_is_quoted_short():
    with pytest.raises(InvalidInput) as caught:
        parse_request(request(max_tokens="9" * 500))
    assert len(str(caught.value)) < 120


def test_every_block_kind_is_translated_in_order():
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Rome"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3 C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "no data"}],
                    "is_error": True,
                },
                {"type": "text", "text": "And now?"},
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t3", "name": "get_weather", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "t3",
                    "content": [
                        {"type": "text", "text": "chart:"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/gif", "data": PNG},
                        },
                    ],
                },
                {"type": "tool_result", "tool_use_id": "t4"},
            ],
        },
    ]
    call = parse_request(request(messages=messages, tools=[WEATHER]))
    assert call.messages == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "3 C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: no data"},
        {"role": "user", "content": "And now?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "t3",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": "{}"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "t3",
            "content": [
                {"type": "text", "text": "chart:"},
                {"type": "image_url", "image_url": {"url": f"data:image/gif;base64,{PNG}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "t4", "content": ""},
    ]
    routable(call)


def test_sampling_options_and_harmless_fields():
    call = parse_request(
        request(
            temperature=0.3,
            top_p=0.9,
            top_k=40,
            stop_sequences=["\n\nHuman:", "END"],
            metadata={"user_id": "u-1"},
            service_tier="auto",
            thinking={"type": "disabled"},
        )
    )
    assert call.options == {
        "max_tokens": 64,
        "temperature": 0.3,
        "top_p": 0.9,
        "extra": {"top_k": 40},
        "stop": ["\n\nHuman:", "END"],
    }
    routable(call)


def test_tools_become_functions():
    strict = {**WEATHER, "strict": True, "type": "custom", "cache_control": {"type": "ephemeral"}}
    call = parse_request(
        request(tools=[strict, {"name": "now", "input_schema": {"type": "object"}}])
    )
    assert call.options["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather in a city.",
                "parameters": WEATHER["input_schema"],
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    routable(call)


@pytest.mark.parametrize(
    ("choice", "options"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": False,
            },
        ),
        ({"type": "any", "disable_parallel_tool_use": False}, {"tool_choice": "required"}),
    ],
)
def test_tool_choice_variants(choice, options):
    call = parse_request(request(tools=[WEATHER], tool_choice=choice))
    assert {key: call.options[key] for key in options} == options
    assert ("parallel_tool_calls" in call.options) == ("parallel_tool_calls" in options)
    routable(call)


def test_output_format_becomes_a_json_schema_response_format():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    call = parse_request(
        request(output_config={"format": {"type": "json_schema", "schema": schema}})
    )
    assert call.options["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }
    routable(call)


def test_a_request_the_sdk_builds_is_read_whole():
    seen: list[GatewayCall] = []

    def upstream(http_request):
        call = parse_request(json.loads(http_request.content))
        seen.append(call)
        answer = Completion(text="Hello!", model="x", provider="p", finish_reason="stop")
        return httpx2.Response(200, json=message_body(answer, model=call.model, message_id="msg_1"))

    client = sdk_client(upstream)
    message = client.messages.create(
        model="claude-alias",
        max_tokens=100,
        system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        stop_sequences=["END"],
        metadata={"user_id": "u"},
        service_tier="auto",
        extra_body={"temperature": 0.5, "top_k": 5},  # older SDKs' keywords, still accepted
    )
    assert isinstance(message, Message)
    assert message.content[0].text == "Hello!"
    assert message.stop_reason == "end_turn"
    (call,) = seen
    assert call.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert call.options["parallel_tool_calls"] is False
    assert (call.options["temperature"], call.options["extra"]) == (0.5, {"top_k": 5})
    routable(call)


REJECTED = [
    ([], ""),
    ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    (request(model=""), "model"),
    (request(max_tokens=None), "max_tokens"),
    (request(max_tokens=0), "max_tokens"),
    (request(max_tokens=True), "max_tokens"),
    (request(messages=None), "messages"),
    (request(messages=[]), "messages"),
    (request(messages="Hi"), "messages"),
    (request(messages=["Hi"]), "messages.0"),
    (request(messages=[{"role": "bot", "content": "x"}]), "messages.0.role"),
    (
        request(messages=[{"role": "system", "content": [{"type": "image"}]}]),
        "messages.0.content.0.type",
    ),
    (request(messages=[{"role": "user"}]), "messages.0.content"),
    (request(messages=[{"role": "user", "content": "x", "name": "ann"}]), "messages.0.name"),
    (request(messages=[{"role": "user", "content": 7}]), "messages.0.content"),
    (request(messages=[{"role": "user", "content": []}]), "messages.0.content"),
    (
        request(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages.0.content.0.text",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}]),
        "messages.0.content.0.x",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}]),
        "messages.0.content.0.type",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "image", "source": {"type": "file", "file_id": "f"}},
                    ],
                }
            ]
        ),
        "messages.0.content.1.source.type",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/bmp", "data": PNG},
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.media_type",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
                    ],
                }
            ]
        ),
        "messages.0.content.0.source.data",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "url", "url": "ftp://x"}}],
                }
            ]
        ),
        "messages.0.content.0.source.url",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "image", "source": "x"}]}]),
        "messages.0.content.0.source",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}],
                }
            ]
        ),
        "messages.0.content.0.type",
    ),
    (
        request(
            messages=[
                {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "a"}]}
            ]
        ),
        "messages.0.content.0.type",
    ),
    (
        request(
            messages=[
                {"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]}
            ]
        ),
        "messages.0.content.0.id",
    ),
    (
        request(
            messages=[
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "a", "name": "f g", "input": {}}],
                }
            ]
        ),
        "messages.0.content.0.name",
    ),
    (
        request(
            messages=[
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "a", "name": "f", "input": "{}"}],
                }
            ]
        ),
        "messages.0.content.0.input",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
        "messages.0.content.0.tool_use_id",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "a", "is_error": "yes"}],
                }
            ]
        ),
        "messages.0.content.0.is_error",
    ),
    (
        request(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "a",
                            "content": [{"type": "search_result"}],
                        }
                    ],
                }
            ]
        ),
        "messages.0.content.0.content.0.type",
    ),
    (request(system=[{"type": "image"}]), "system.0.type"),
    (request(system=5), "system"),
    (request(stream="yes"), "stream"),
    (request(temperature="hot"), "temperature"),
    (request(top_p=float("nan")), "top_p"),
    (request(top_k=0), "top_k"),
    (request(stop_sequences="END"), "stop_sequences"),
    (request(stop_sequences=["END", ""]), "stop_sequences.1"),
    (request(thinking={"type": "enabled", "budget_tokens": 2048}), "thinking"),
    (request(output_config={"effort": "high"}), "output_config.effort"),
    (request(output_config={"format": {"type": "json_object"}}), "output_config.format.type"),
    (request(container="c-1"), "container"),
    (request(mcp_servers=[]), "mcp_servers"),
    (request(tools={"name": "f"}), "tools"),
    (request(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
    (request(tools=[{"name": "f"}]), "tools.0.input_schema"),
    (
        request(tools=[{"name": "f", "input_schema": {"type": "string"}}]),
        "tools.0.input_schema.type",
    ),
    (request(tools=[{"name": "", "input_schema": {"type": "object"}}]), "tools.0.name"),
    (request(tools=[{**WEATHER, "defer_loading": True}]), "tools.0.defer_loading"),
    (request(tools=[{**WEATHER, "description": 3}]), "tools.0.description"),
    (request(tool_choice={"type": "any"}), "tool_choice"),
    (request(tools=[WEATHER], tool_choice="auto"), "tool_choice"),
    (request(tools=[WEATHER], tool_choice={"type": "required"}), "tool_choice.type"),
    (request(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}), "tool_choice.name"),
    (
        request(tools=[WEATHER], tool_choice={"type": "auto", "name": "get_weather"}),
        "tool_choice.name",
    ),
    (
        request(tools=[WEATHER], tool_choice={"type": "auto", "disable_parallel_tool_use": 1}),
        "tool_choice.disable_parallel_tool_use",
    ),
]


@pytest.mark.parametrize(("body", "field"), REJECTED)
def test_bad_input_is_refused_naming_its_field(body, field):
    with pytest.raises(InvalidInput) as caught:
        parse_request(body)
    assert caught.value.field == (field or None)
    assert str(caught.value).startswith(f"{field}: " if field else "must be")


# -- whole answers ----------------------------------------------------------------------------


def test_a_text_answer_is_one_text_block():
    answer = Completion(
        text="Hi there",
        model="gpt-x",
        provider="openai",
        finish_reason="stop",
        usage=Usage(prompt_tokens=9, completion_tokens=3, total_tokens=12),
    )
    body = message_body(answer, model="claude-alias", message_id="msg_abc")
    assert body == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-alias",
        "content": [{"type": "text", "text": "Hi there"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 9, "output_tokens": 3},
    }
    Message.model_validate(body)


def test_tool_calls_are_tool_use_blocks_after_the_text():
    calls = (
        ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}'),
        ToolCall(id="call_2", name="now", arguments="not json"),
    )
    answer = Completion(
        text="Let me see.", model="m", provider="p", finish_reason="tool_calls", tool_calls=calls
    )
    body = message_body(answer, model="m", message_id="msg_1")
    assert body["content"] == [
        {"type": "text", "text": "Let me see."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert body["stop_reason"] == "tool_use"
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0}
    message = Message.model_validate(body)
    assert message.content[1].input == {"city": "Oslo"}


def test_an_empty_answer_has_no_blocks():
    body = message_body(Completion(text="", model="m", provider="p"), model="m", message_id="msg_1")
    assert body["content"] == [] and body["stop_reason"] == "end_turn"
    Message.model_validate(body)


@pytest.mark.parametrize(
    ("finish", "called", "reason"),
    [
        ("stop", False, "end_turn"),
        (None, False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("stop", True, "tool_use"),
        (None, True, "tool_use"),
        ("length", True, "max_tokens"),
        ("stop_sequence", False, "stop_sequence"),
        ("content_filter", False, "refusal"),
        ("something_new", False, "end_turn"),
    ],
)
def test_stop_reasons(finish, called, reason):
    assert stop_reason(finish, called_tools=called) == reason


def test_message_ids_look_like_anthropics():
    first, second = new_message_id(), new_message_id()
    assert first.startswith("msg_") and len(first) == 28 and first != second


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (Failure(400, "invalid_request", "bad", "messages.0"), "invalid_request_error"),
        (Failure(401, "authentication", "no key"), "authentication_error"),
        (Failure(403, "permission", "not yours"), "permission_error"),
        (Failure(404, "not_found", "no model"), "not_found_error"),
        (Failure(413, "too_large", "big"), "request_too_large"),
        (Failure(429, "rate_limit", "slow down", retry_after=2), "rate_limit_error"),
        (Failure(502, "upstream", "all failed"), "api_error"),
        (Failure(503, "overloaded", "none tried"), "overloaded_error"),
        (Failure(504, "timeout", "too slow"), "timeout_error"),
        (Failure(500, "internal", "oops"), "api_error"),
    ],
)
def test_error_bodies_use_anthropics_error_types(failure, kind):
    body = error_body(failure)
    assert body == {"type": "error", "error": {"type": kind, "message": failure.message}}
    if kind != "request_too_large":  # documented by the API, not (yet) typed by the SDK
        ErrorResponse.model_validate(body)


def test_every_failure_kind_has_an_error_type():
    from typing import get_args

    from hypotez_providers.gateway.failures import Kind

    assert set(ERROR_TYPES) == set(get_args(Kind))


def test_the_sdk_raises_its_own_error_class_for_an_error_body():
    def upstream(http_request):
        failure = Failure(429, "rate_limit", "every provider is rate limited")
        return httpx2.Response(429, json=error_body(failure))

    with pytest.raises(anthropic.RateLimitError) as caught:
        sdk_client(upstream).messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert "every provider is rate limited" in str(caught.value)


# -- streams ----------------------------------------------------------------------------------


def events(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Decode server-sent events strictly: every event is ``event:`` + ``data:`` + blank line."""
    decoded = []
    text = data.decode()
    assert text.endswith("\n\n")
    for raw in text[:-2].split("\n\n"):
        name_line, data_line = raw.split("\n")
        assert name_line.startswith("event: ") and data_line.startswith("data: ")
        payload = json.loads(data_line[len("data: ") :])
        assert payload["type"] == name_line[len("event: ") :]
        decoded.append((payload["type"], payload))
    return decoded


def encode(chunks: list[Chunk], *, end: Failure | None = None) -> bytes:
    stream = MessageStream(model="claude-alias", message_id="msg_s")
    out = stream.start()
    for chunk in chunks:
        out += stream.feed(chunk)
    return out + (stream.error(end) if end else stream.finish())


def accumulate(data: bytes) -> Any:
    """The message the SDK's own stream accumulator builds from the events.

    Each event is first validated by the SDK's ``RawMessageStreamEvent`` type, then the bytes
    are served to the SDK's client, whose ``messages.stream(...)`` puts the message together.
    """
    for name, payload in events(data):
        if name not in ("ping", "error"):
            EVENT.validate_python(payload)

    def upstream(http_request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    with sdk_client(upstream).messages.stream(
        model="claude-alias", max_tokens=50, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        return stream.get_final_message()


def names(data: bytes) -> list[str]:
    return [name for name, _ in events(data)]


def test_a_text_stream():
    data = encode(
        [
            Chunk(text="Hel"),
            Chunk(text="lo"),
            Chunk(finish_reason="stop", usage=Usage(prompt_tokens=5, completion_tokens=2)),
        ]
    )
    assert names(data) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    decoded = events(data)
    assert decoded[0][1]["message"]["model"] == "claude-alias"
    assert decoded[0][1]["message"]["id"] == "msg_s"
    assert decoded[2][1]["delta"] == {"type": "text_delta", "text": "Hel"}
    assert decoded[5][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert decoded[5][1]["usage"] == {"input_tokens": 5, "output_tokens": 2}
    message = accumulate(data)
    assert message.content[0].text == "Hello"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (5, 2)


def test_text_then_a_tool_call():
    data = encode(
        [
            Chunk(text="Checking."),
            Chunk(tool_call_deltas=(ToolCallDelta(index=0, id="call_1", name="get_weather"),)),
            Chunk(tool_call_deltas=(ToolCallDelta(index=0, arguments='{"ci'),)),
            Chunk(tool_call_deltas=(ToolCallDelta(index=0, arguments='ty": "Oslo"}'),)),
            Chunk(
                finish_reason="tool_calls",
                tool_calls=(
                    ToolCall(id="call_1", name="get_weather", arguments='{"city": "Oslo"}'),
                ),
            ),
        ]
    )
    assert names(data) == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    decoded = events(data)
    assert decoded[4][1] == {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}},
    }
    assert decoded[5][1]["delta"] == {"type": "input_json_delta", "partial_json": '{"ci'}
    message = accumulate(data)
    assert message.content[0].text == "Checking."
    assert (message.content[1].id, message.content[1].name) == ("call_1", "get_weather")
    assert message.content[1].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 0


def test_two_tool_calls_without_text_get_a_block_each():
    data = encode(
        [
            Chunk(
                tool_call_deltas=(ToolCallDelta(index=0, id="a", name="f", arguments='{"x":1}'),)
            ),
            Chunk(tool_call_deltas=(ToolCallDelta(index=1, id="b", name="g", arguments="{}"),)),
            Chunk(finish_reason="tool_calls"),
        ]
    )
    message = accumulate(data)
    assert [(block.type, block.id, block.input) for block in message.content] == [
        ("tool_use", "a", {"x": 1}),
        ("tool_use", "b", {}),
    ]
    assert [
        payload.get("index") for name, payload in events(data) if name.startswith("content_block")
    ] == [
        0,
        0,
        0,
        1,
        1,
        1,
    ]


def test_tool_calls_that_only_arrive_whole_are_sent_whole():
    call = ToolCall(id="call_9", name="now", arguments='{"tz": "UTC"}')
    message = accumulate(encode([Chunk(finish_reason="tool_calls", tool_calls=(call,))]))
    assert [(block.id, block.name, block.input) for block in message.content] == [
        ("call_9", "now", {"tz": "UTC"})
    ]
    assert message.stop_reason == "tool_use"


def test_an_empty_answer_starts_and_stops():
    data = encode([Chunk(), Chunk(rescue="continue", provider="b"), Chunk(finish_reason="length")])
    assert names(data) == ["message_start", "message_delta", "message_stop"]
    message = accumulate(data)
    assert message.content == [] and message.stop_reason == "max_tokens"


def test_chunks_with_nothing_to_say_give_no_bytes():
    stream = MessageStream(model="m", message_id="msg_1")
    stream.start()
    assert stream.feed(Chunk()) == b""
    assert stream.feed(Chunk(rescue="restart", provider="p")) == b""
    assert stream.feed(Chunk(usage=Usage(prompt_tokens=1))) == b""


def test_an_error_mid_stream_ends_with_an_error_event_never_a_clean_stop():
    failure = Failure(502, "upstream", "openai: connection cut after 2 chunks")
    data = encode([Chunk(text="Hal")], end=failure)
    assert names(data) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert events(data)[-1][1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "openai: connection cut after 2 chunks"},
    }
    assert b"message_stop" not in data


def test_nothing_follows_the_end():
    stream = MessageStream(model="m", message_id="msg_1")
    stream.start()
    stream.feed(Chunk(text="a"))
    stream.error(Failure(504, "timeout", "slow"))
    assert stream.feed(Chunk(text="b")) == b""
    assert stream.finish() == b""


@given(st.text(min_size=1))
def test_a_text_delta_is_exactly_the_event_it_stands_for(text):
    stream = MessageStream(model="m", message_id="msg_1")
    stream.start()
    stream.feed(Chunk(text="a"))
    expected = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    assert stream.feed(Chunk(text=text)) == event("content_block_delta", expected)
    assert events(stream.feed(Chunk(text=text))) == [("content_block_delta", expected)]


def test_ping():
    stream = MessageStream(model="m", message_id="msg_1")
    assert events(stream.ping()) == [("ping", {"type": "ping"})]


@given(st.lists(st.text(min_size=1), max_size=8), st.lists(st.text(min_size=1), max_size=5))
def test_any_split_of_text_and_arguments_accumulates_to_the_whole(texts, pieces):
    arguments = json.dumps({"q": "".join(pieces)})
    cut = len(arguments) // 2
    chunks = [Chunk(text=text) for text in texts]
    chunks.append(
        Chunk(
            tool_call_deltas=(ToolCallDelta(index=0, id="c", name="f", arguments=arguments[:cut]),)
        )
    )
    chunks.append(Chunk(tool_call_deltas=(ToolCallDelta(index=0, arguments=arguments[cut:]),)))
    message = accumulate(encode(chunks))
    blocks = message.content
    if texts:
        assert blocks[0].text == "".join(texts)
    assert blocks[-1].input == {"q": "".join(pieces)}


def test_the_sdk_streams_a_message_through_the_encoder():
    def upstream(http_request):
        call = parse_request(json.loads(http_request.content))
        assert call.stream
        stream = MessageStream(model=call.model, message_id="msg_live")
        body = stream.start() + stream.ping()
        for chunk in (
            Chunk(text="It is "),
            Chunk(text="sunny."),
            Chunk(
                tool_call_deltas=(
                    ToolCallDelta(
                        index=0, id="c1", name="get_weather", arguments='{"city":"Oslo"}'
                    ),
                )
            ),
            Chunk(finish_reason="tool_calls", usage=Usage(prompt_tokens=12, completion_tokens=7)),
        ):
            body += stream.feed(chunk)
        body += stream.finish()
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = sdk_client(upstream)
    with client.messages.stream(
        model="claude-alias",
        max_tokens=50,
        messages=[{"role": "user", "content": "Weather?"}],
        tools=[WEATHER],
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == "It is sunny."
    assert message.id == "msg_live" and message.model == "claude-alias"
    assert message.content[1].input == {"city": "Oslo"}
    assert message.stop_reason == "tool_use"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 7)


def test_the_sdk_raises_on_an_in_band_error():
    def upstream(http_request):
        stream = MessageStream(model="m", message_id="msg_1")
        body = (
            stream.start()
            + stream.feed(Chunk(text="Hal"))
            + stream.error(Failure(504, "timeout", "too slow"))
        )
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = sdk_client(upstream)
    question = [{"role": "user", "content": "x"}]
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="m", max_tokens=5, messages=question) as stream,
    ):
        stream.get_final_message()
    assert "too slow" in str(caught.value)


def sdk_client(handler: Any) -> Any:
    transport = httpx2.MockTransport(handler)
    return anthropic.Anthropic(
        api_key="test-key",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )
