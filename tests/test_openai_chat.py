"""The core's OpenAI chat codec, through an in-process plugin, over real HTTP."""

from __future__ import annotations

import json

import pytest

from hypotez_providers import (
    MAX_MALFORMED_IN_A_ROW,
    AuthenticationFailed,
    MalformedResponse,
    ProviderInfo,
    Registry,
    Settings,
    StreamStats,
    hookimpl,
    openai_chat,
)
from hypotez_providers.results import Usage
from hypotez_providers.sse import SSEEvent
from hypotez_providers.testing import FakeOpenAI

KEY = "sk-proj-abcdefghijklmnop0123"
MESSAGES = [{"role": "user", "content": "two words"}]


class KeyedProvider:
    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="keyed",
            url="https://api.example",
            models=["gpt-4o-mini"],
            supports_stream=True,
            needs_auth=True,
            api_key_env="KEYED_API_KEY",
        )

    @hookimpl
    def create_completion(self, model, messages, stream, options, context):
        return openai_chat.chat_completion(
            context, model, messages, stream, options, include_usage=True, headers={"X-Trace": "t1"}
        )


@pytest.fixture
def upstream():
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def keyed(upstream, key=KEY):
    registry = Registry(
        settings=Settings(),
        load_entry_points=False,
        environ={"KEYED_API_KEY": key, "HYPOTEZ_KEYED_BASE_URL": upstream.url},
    )
    return registry.register(KeyedProvider())


def test_the_key_goes_as_a_bearer_header_with_extra_headers(upstream):
    keyed(upstream).complete("gpt-4o-mini", MESSAGES)
    headers = upstream.requests[0].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["x-trace"] == "t1"


def test_streaming_with_usage_ends_with_a_usage_chunk(upstream):
    chunks = list(keyed(upstream).stream("gpt-4o-mini", MESSAGES))
    assert upstream.requests[0].json["stream_options"] == {"include_usage": True}
    assert chunks[-1].usage == Usage(prompt_tokens=2, completion_tokens=7, total_tokens=9)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


def test_a_wrong_key_is_an_authentication_error_that_never_shows_the_key(upstream):
    wrong = "sk-proj-wrongwrongwrong9999"
    with pytest.raises(AuthenticationFailed, match="Incorrect API key") as caught:
        keyed(upstream, key=wrong).complete("gpt-4o-mini", MESSAGES)
    assert wrong not in str(caught.value)
    provider = keyed(upstream, key=wrong)
    assert wrong not in repr(provider) + repr(provider.context) + repr(provider.settings)


def test_a_body_without_choices_is_malformed():
    with pytest.raises(MalformedResponse, match="choices"):
        openai_chat.parse_response("p", {"id": "x"})


def test_a_stream_ending_after_the_finish_reason_but_before_done_is_complete():
    events = [
        SSEEvent('{"choices":[{"delta":{"content":"hi"},"finish_reason":null}]}'),
        SSEEvent('{"choices":[{"delta":{},"finish_reason":"stop"}]}'),
    ]
    assert [c.text for c in openai_chat.parse_stream("p", events)] == ["hi", ""]


def test_rate_limit_and_overload_errors_inside_a_stream_are_typed():
    for kind, name in (("rate_limit_exceeded", "RateLimited"), ("overloaded_error", "Overloaded")):
        events = [SSEEvent(f'{{"error": {{"message": "slow down", "type": "{kind}"}}}}')]
        with pytest.raises(Exception) as caught:
            list(openai_chat.parse_stream("p", events))
        assert type(caught.value).__name__ == name and caught.value.retryable


# -- tolerance: an undecodable event is skipped and counted -------------------------------------


def delta(text):
    return SSEEvent(json.dumps({"choices": [{"delta": {"content": text}, "finish_reason": None}]}))


FINISH = SSEEvent('{"choices":[{"delta":{},"finish_reason":"stop"}]}')
BAD = SSEEvent('{"choices": [{"delta": ')
END = SSEEvent("[DONE]")


def streamed(events):
    stats = StreamStats()
    return "".join(c.text for c in openai_chat.parse_stream("p", events, stats=stats)), stats


def test_one_undecodable_event_mid_stream_is_skipped_and_counted():
    text, stats = streamed([delta("Hel"), BAD, delta("lo"), FINISH, END])
    assert (text, stats.malformed_events) == ("Hello", 1)


def test_json_that_is_not_an_object_is_undecodable_too():
    text, stats = streamed([delta("a"), SSEEvent("[1, 2]"), SSEEvent("null"), delta("b"), END])
    assert (text, stats.malformed_events) == ("ab", 2)


def test_as_many_undecodable_events_in_a_row_as_allowed_then_a_good_one_completes():
    text, stats = streamed([delta("a"), *[BAD] * MAX_MALFORMED_IN_A_ROW, delta("b"), FINISH])
    assert (text, stats.malformed_events) == ("ab", MAX_MALFORMED_IN_A_ROW)


def test_a_good_event_starts_the_count_in_a_row_again():
    run = [BAD] * MAX_MALFORMED_IN_A_ROW
    text, stats = streamed([*run, delta("a"), *run, delta("b"), *run, END])
    assert (text, stats.malformed_events) == ("ab", 3 * MAX_MALFORMED_IN_A_ROW)


def test_one_more_undecodable_event_in_a_row_is_malformed_naming_the_provider():
    events = [delta("a"), *[BAD] * (MAX_MALFORMED_IN_A_ROW + 1), delta("b"), END]
    stats = StreamStats()
    received = []
    with pytest.raises(MalformedResponse, match="undecodable stream events in a row") as caught:
        for chunk in openai_chat.parse_stream("p", events, stats=stats):
            received.append(chunk.text)
    assert (caught.value.provider, received) == ("p", ["a"])
    assert stats.malformed_events == MAX_MALFORMED_IN_A_ROW + 1


def test_an_undecodable_event_then_the_end_without_done_is_truncated_and_says_so():
    with pytest.raises(MalformedResponse, match="truncated") as caught:
        streamed([delta("a"), BAD])
    assert "1 undecodable event was skipped" in str(caught.value)
    with pytest.raises(MalformedResponse) as caught:
        streamed([delta("a")])
    assert "skipped" not in str(caught.value)


def test_without_stats_undecodable_events_are_still_skipped():
    chunks = openai_chat.parse_stream("p", [delta("a"), BAD, delta("b"), END])
    assert "".join(c.text for c in chunks) == "ab"


def serve_events(upstream, *events):
    """Answer every request with exactly these SSE ``data`` fields, then a clean end."""

    def handle(request, fault, responder):
        responder.start_stream("text/event-stream")
        for data in events:
            responder.write_chunk(b"data: " + data + b"\n\n")
        responder.end_stream()

    upstream.handle = handle


def piece(text):
    return json.dumps({"choices": [{"delta": {"content": text}, "finish_reason": None}]}).encode()


STOP = b'{"choices":[{"delta":{},"finish_reason":"stop"}]}'


def test_over_http_a_broken_event_mid_stream_is_skipped_and_counted_on_the_context(upstream):
    serve_events(upstream, piece("Hel"), b'{"choices": [{"delta": ', piece("lo"), STOP, b"[DONE]")
    provider = keyed(upstream)
    assert "".join(c.text for c in provider.stream("gpt-4o-mini", MESSAGES)) == "Hello"
    assert provider.context.stats.malformed_events == 1


def test_over_http_too_many_broken_events_in_a_row_fail_the_stream(upstream):
    broken = [b"{oops"] * (MAX_MALFORMED_IN_A_ROW + 1)
    serve_events(upstream, piece("Hel"), *broken, piece("lo"), STOP, b"[DONE]")
    with pytest.raises(MalformedResponse, match="in a row") as caught:
        list(keyed(upstream).stream("gpt-4o-mini", MESSAGES))
    assert caught.value.provider == "keyed"


def test_over_http_a_broken_last_event_is_a_truncated_answer(upstream):
    serve_events(upstream, piece("Hel"), b"{oops")
    with pytest.raises(MalformedResponse, match=r"truncated \(1 undecodable event was skipped\)"):
        list(keyed(upstream).stream("gpt-4o-mini", MESSAGES))


# -- tool calls ------------------------------------------------------------------------------


def tool_event(pieces, finish=None, content=None):
    delta = {"tool_calls": pieces}
    if content is not None:
        delta["content"] = content
    return SSEEvent(json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]}))


def call_body(calls, finish="tool_calls", content=None):
    message = {"role": "assistant", "content": content, "tool_calls": calls}
    return {"model": "m", "choices": [{"message": message, "finish_reason": finish}]}


WEATHER_CALL = {
    "id": "call_a",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def test_a_whole_answer_with_tool_calls_and_null_content_is_parsed():
    chunk = openai_chat.parse_response("p", call_body([WEATHER_CALL]))
    assert chunk.text == "" and chunk.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in chunk.tool_calls] == [
        ("call_a", "get_weather", '{"city": "Paris"}')
    ]
    assert chunk.tool_calls[0].parsed == {"city": "Paris"}


def test_a_forced_call_that_says_stop_finishes_with_tool_calls_but_length_stays():
    assert openai_chat.parse_response("p", call_body([WEATHER_CALL], "stop")).finish_reason == (
        "tool_calls"
    )
    assert openai_chat.parse_response("p", call_body([WEATHER_CALL], "length")).finish_reason == (
        "length"
    )


def test_arguments_sent_as_an_object_by_a_compatible_server_become_json_text():
    call = {"id": "c", "function": {"name": "f", "arguments": {"x": 1}}}
    (parsed,) = openai_chat.parse_response("p", call_body([call])).tool_calls
    assert json.loads(parsed.arguments) == {"x": 1}


def test_a_malformed_tool_call_is_a_malformed_response():
    with pytest.raises(MalformedResponse, match="malformed tool call"):
        openai_chat.parse_response("p", call_body([{"id": "c", "function": {}}]))


def test_streamed_tool_call_pieces_become_deltas_and_the_finish_chunk_carries_the_calls():
    events = [
        tool_event(
            [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "f", "arguments": ""},
                }
            ]
        ),
        tool_event([{"index": 0, "function": {"arguments": '{"ci'}}]),
        tool_event([{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]),
        SSEEvent('{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}'),
        SSEEvent("[DONE]"),
    ]
    chunks = list(openai_chat.parse_stream("p", events))
    assert [[(d.index, d.id, d.name, d.arguments) for d in c.tool_call_deltas] for c in chunks] == [
        [(0, "call_a", "f", "")],
        [(0, None, None, '{"ci')],
        [(0, None, None, 'ty": "Paris"}')],
        [],
    ]
    assert [c.tool_calls for c in chunks[:-1]] == [(), (), ()]
    (call,) = chunks[-1].tool_calls
    assert (call.id, call.name, call.parsed) == ("call_a", "f", {"city": "Paris"})


def test_a_chunk_may_carry_text_tool_deltas_and_the_finish_reason_together():
    events = [
        tool_event(
            [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}],
            finish="stop",
            content="Let me check.",
        )
    ]
    (chunk,) = openai_chat.parse_stream("p", events)
    assert chunk.text == "Let me check." and chunk.finish_reason == "tool_calls"
    assert len(chunk.tool_call_deltas) == 1 and chunk.tool_calls[0].name == "f"


def test_a_usage_chunk_after_the_tool_calls_carries_no_calls_again():
    events = [
        tool_event([{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]),
        SSEEvent('{"choices":[{"delta":{},"finish_reason":"tool_calls"}]}'),
        SSEEvent('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}'),
    ]
    chunks = list(openai_chat.parse_stream("p", events))
    assert [len(c.tool_calls) for c in chunks] == [0, 1, 0]
    assert chunks[-1].usage == Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5)


def test_a_malformed_tool_call_piece_in_a_stream_is_a_malformed_response():
    with pytest.raises(MalformedResponse, match="malformed tool call piece"):
        list(openai_chat.parse_stream("p", [tool_event(["not an object"])]))
