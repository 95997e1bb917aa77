"""The Anthropic provider over real HTTP against a fake Messages API upstream, and its codec."""

from __future__ import annotations

import json
import threading

import pytest
import requests
from hypotez_anthropic import API_VERSION, codec

from hypotez_providers import (
    MAX_MALFORMED_IN_A_ROW,
    AuthenticationFailed,
    ConnectionFailed,
    MalformedResponse,
    Overloaded,
    RateLimited,
    Registry,
    Router,
    ServerError,
    Settings,
    SSEEvent,
    StreamStats,
    Usage,
    iter_sse,
    validate_options,
)
from hypotez_providers.testing import Fault
from hypotez_providers.testing.anthropic import FakeAnthropic

KEY = "sk-ant-test-0123456789abcdefgh"
MODEL = "claude-haiku-4-5"
MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello"},
    {"role": "user", "content": "Are you there?"},
]
WORDS = ["Hello!", " How", " can", " I", " help", " you", " today?"]


@pytest.fixture
def upstream():
    with FakeAnthropic(api_key=KEY) as fake:
        yield fake


def registry_for(upstream, key=KEY):
    return Registry(
        settings=Settings(),
        environ={"HYPOTEZ_ANTHROPIC_BASE_URL": upstream.url, "ANTHROPIC_API_KEY": key},
    )


def provider_for(upstream, key=KEY):
    return registry_for(upstream, key).provider("anthropic")


# The provider, through its entry point, over HTTP.


def test_metadata_through_the_entry_point():
    info = Registry(environ={}).provider("anthropic").info
    assert (info.name, info.url, info.needs_auth, info.api_key_env) == (
        "anthropic",
        "https://api.anthropic.com",
        True,
        "ANTHROPIC_API_KEY",
    )
    assert MODEL in info.models and info.supports_stream


def test_the_request_moves_system_merges_roles_and_sets_the_headers(upstream):
    provider_for(upstream).complete(
        MODEL, MESSAGES, stop="END", seed=3, presence_penalty=1, temperature=0.5, top_p=0.9
    )
    [request] = upstream.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert (request.headers["x-api-key"], request.headers["anthropic-version"]) == (
        KEY,
        "2023-06-01",
    )
    assert request.json == {
        "model": MODEL,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hello\n\nAre you there?"}],
        "max_tokens": codec.DEFAULT_MAX_TOKENS,
        "temperature": 0.5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
    }


def test_a_whole_answer_has_text_finish_reason_and_usage(upstream):
    answer = provider_for(upstream).complete(MODEL, MESSAGES)
    assert (answer.text, answer.finish_reason, answer.provider) == (
        "Hello! How can I help you today?",
        "stop",
        "anthropic",
    )
    assert answer.usage == Usage(prompt_tokens=6, completion_tokens=7, total_tokens=13)
    assert "stream" not in upstream.requests[0].json


def test_max_tokens_cuts_the_answer_with_finish_reason_length(upstream):
    answer = provider_for(upstream).complete(MODEL, MESSAGES, max_tokens=3)
    assert (answer.text, answer.finish_reason) == ("Hello! How can", "length")
    assert answer.usage == Usage(prompt_tokens=6, completion_tokens=3, total_tokens=9)


def test_a_stop_sequence_ends_the_answer_with_finish_reason_stop(upstream):
    chunks = list(provider_for(upstream).stream(MODEL, MESSAGES, stop=["help"]))
    assert "".join(c.text for c in chunks) == "Hello! How can I "
    assert chunks[-1].finish_reason == "stop"


def test_a_stream_yields_pieces_then_stop_reason_and_usage(upstream):
    chunks = list(provider_for(upstream).stream(MODEL, MESSAGES))
    assert [c.text for c in chunks if c.text] == WORDS
    assert (chunks[-1].text, chunks[-1].finish_reason, chunks[-1].usage, chunks[-1].model) == (
        "",
        "stop",
        Usage(prompt_tokens=6, completion_tokens=7, total_tokens=13),
        MODEL,
    )
    assert upstream.requests[0].json["stream"] is True


def test_the_first_piece_arrives_before_the_upstream_sends_the_last(upstream):
    upstream.hold_before_last = threading.Event()
    stream = provider_for(upstream).stream(MODEL, MESSAGES)
    assert next(stream).text == "Hello!"
    assert not upstream.last_chunk_sent.is_set()
    upstream.hold_before_last.set()
    assert "".join(c.text for c in stream) == " How can I help you today?"


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        (Fault(status=429, headers={"retry-after": "7"}), RateLimited),
        (Fault(status=529), Overloaded),
        (Fault(status=500), ServerError),
        (Fault(error_event_after=2), Overloaded),
        (Fault(truncate_after=2), MalformedResponse),
        (Fault(drop_after=2), ConnectionFailed),
    ],
)
def test_stream_faults_become_typed_errors(upstream, fault, error_type):
    upstream.faults.append(fault)
    with pytest.raises(error_type) as caught:
        list(provider_for(upstream).stream(MODEL, MESSAGES))
    error = caught.value
    assert type(error) is error_type and error.provider == "anthropic"
    assert error.retryable is (error_type is not MalformedResponse)


def test_the_fakes_malformed_event_is_skipped_and_the_answer_is_complete(upstream):
    upstream.faults.append(Fault(malformed=True))
    provider = provider_for(upstream)
    chunks = list(provider.stream(MODEL, MESSAGES))
    assert "".join(c.text for c in chunks) == "".join(WORDS)
    assert chunks[-1].finish_reason == "stop"
    assert provider.context.stats.malformed_events == 1


def serve_events(upstream, *events):
    """Answer every request with exactly these ``(event, data)`` pairs, then a clean end."""

    def handle(request, fault, responder):
        responder.start_stream("text/event-stream")
        for name, data in events:
            responder.write_chunk(b"event: %s\ndata: %s\n\n" % (name.encode(), data))
        responder.end_stream()

    upstream.handle = handle


def text_delta(text):
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    }
    return ("content_block_delta", json.dumps(delta).encode())


WIRE_START = (
    "message_start",
    b'{"type": "message_start", "message": {"model": "%s"}}' % MODEL.encode(),
)
WIRE_BROKEN = ("content_block_delta", b'{"type": "content_block_delta", ')
WIRE_STOP = ("message_stop", b'{"type": "message_stop"}')


def test_over_http_a_broken_event_mid_stream_is_skipped_and_counted(upstream):
    serve_events(upstream, WIRE_START, text_delta("Hel"), WIRE_BROKEN, text_delta("lo"), WIRE_STOP)
    provider = provider_for(upstream)
    assert "".join(c.text for c in provider.stream(MODEL, MESSAGES)) == "Hello"
    assert provider.context.stats.malformed_events == 1


def test_over_http_too_many_broken_events_in_a_row_fail_the_stream(upstream):
    broken = [WIRE_BROKEN] * (MAX_MALFORMED_IN_A_ROW + 1)
    serve_events(upstream, WIRE_START, text_delta("Hel"), *broken, text_delta("lo"), WIRE_STOP)
    with pytest.raises(MalformedResponse, match="in a row") as caught:
        list(provider_for(upstream).stream(MODEL, MESSAGES))
    assert caught.value.provider == "anthropic"


def test_over_http_a_broken_last_event_is_a_truncated_answer(upstream):
    serve_events(upstream, WIRE_START, text_delta("Hel"), WIRE_BROKEN)
    with pytest.raises(MalformedResponse, match=r"truncated \(1 undecodable event was skipped\)"):
        list(provider_for(upstream).stream(MODEL, MESSAGES))


def test_429_carries_retry_after_and_the_upstream_message(upstream):
    upstream.faults.append(Fault(status=429, headers={"retry-after": "7"}))
    with pytest.raises(RateLimited) as caught:
        provider_for(upstream).complete(MODEL, MESSAGES)
    assert (caught.value.status, caught.value.retry_after) == (429, 7)
    assert "rate limit" in caught.value.upstream_message


def test_529_is_overloaded_and_the_router_retries_it(upstream):
    upstream.faults.append(Fault(status=529))
    answer = Router(registry_for(upstream), sleep=lambda seconds: None).complete(
        MODEL, MESSAGES, provider="anthropic"
    )
    assert [(a.error, a.status) for a in answer.attempts] == [("Overloaded", 529), (None, None)]
    assert answer.text == "Hello! How can I help you today?"


def test_the_router_waits_the_retry_after_a_429_asks_for(upstream):
    upstream.faults.append(Fault(status=429, headers={"retry-after": "7"}))
    slept: list[float] = []
    answer = Router(registry_for(upstream), sleep=slept.append).complete(
        MODEL, MESSAGES, provider="anthropic"
    )
    assert slept == [7] and answer.finish_reason == "stop"


def test_a_mid_stream_error_event_is_overloaded_with_its_message(upstream):
    upstream.faults.append(Fault(error_event_after=1))
    stream = provider_for(upstream).stream(MODEL, MESSAGES)
    assert next(stream).text == "Hello!"
    with pytest.raises(Overloaded, match="Overloaded") as caught:
        list(stream)
    assert caught.value.upstream_message == "Overloaded"


def test_a_non_streamed_malformed_answer_is_malformed_response(upstream):
    upstream.faults.append(Fault(malformed=True))
    with pytest.raises(MalformedResponse):
        provider_for(upstream).complete(MODEL, MESSAGES)


def test_a_wrong_key_fails_without_showing_it(upstream):
    wrong = "sk-ant-wrong-key-99999999999"
    provider = provider_for(upstream, key=wrong)
    with pytest.raises(AuthenticationFailed, match="invalid x-api-key") as caught:
        provider.complete(MODEL, MESSAGES)
    assert not caught.value.retryable and caught.value.status == 401
    assert wrong not in str(caught.value) + repr(caught.value.info())


def test_a_key_echoed_in_an_error_body_is_scrubbed(upstream):
    body = json.dumps(
        {"type": "error", "error": {"type": "authentication_error", "message": f"bad key {KEY}"}}
    )
    upstream.faults.append(Fault(status=401, body=body))
    with pytest.raises(AuthenticationFailed) as caught:
        list(provider_for(upstream).stream(MODEL, MESSAGES))
    assert KEY not in str(caught.value) and "bad key ***" in str(caught.value)


def test_the_key_is_absent_from_every_repr(upstream):
    registry = registry_for(upstream)
    provider = registry.provider("anthropic")
    shown = [registry, provider, provider.context, provider.settings, provider.context.transport]
    assert provider.context.api_key == KEY
    assert all(KEY not in repr(thing) for thing in shown)


# The fake itself: it refuses what the real API refuses.


def post(upstream, body, **headers):
    sent = {"x-api-key": KEY, "anthropic-version": API_VERSION, **headers}
    return requests.post(
        upstream.url + "/v1/messages",
        json=body,
        headers={k: v for k, v in sent.items() if v is not None},
        timeout=5,
    )


GOOD = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("body", "headers", "status", "kind", "message"),
    [
        (GOOD, {"x-api-key": "sk-ant-other"}, 401, "authentication_error", "invalid x-api-key"),
        (GOOD, {"x-api-key": None}, 401, "authentication_error", "x-api-key header is required"),
        (GOOD, {"anthropic-version": None}, 400, "invalid_request_error", "anthropic-version"),
        ({**GOOD, "max_tokens": None}, {}, 400, "invalid_request_error", "max_tokens"),
        (
            {"model": MODEL, "messages": GOOD["messages"]},
            {},
            400,
            "invalid_request_error",
            "max_tokens: Field required",
        ),
        (
            {**GOOD, "messages": [{"role": "system", "content": "x"}, *GOOD["messages"]]},
            {},
            400,
            "invalid_request_error",
            'Unexpected role "system"',
        ),
        (
            {**GOOD, "messages": [{"role": "user", "content": ""}]},
            {},
            400,
            "invalid_request_error",
            "non-empty content",
        ),
        ({**GOOD, "model": "claude-nope"}, {}, 404, "not_found_error", "model: claude-nope"),
    ],
)
def test_the_fake_refuses_what_the_messages_api_refuses(
    upstream, body, headers, status, kind, message
):
    answer = post(upstream, body, **headers)
    assert answer.status_code == status
    error = answer.json()
    assert (error["type"], error["error"]["type"]) == ("error", kind)
    assert message in error["error"]["message"] and error["request_id"].startswith("req_")


def test_the_fake_accepts_consecutive_messages_of_one_role(upstream):
    body = {
        **GOOD,
        "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
    }
    answer = post(upstream, body)
    assert answer.status_code == 200
    assert answer.json()["content"] == [
        {"type": "text", "text": "Hello! How can I help you today?"}
    ]
    assert answer.headers["request-id"].startswith("req_")


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (404, "not_found_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_the_fake_answers_injected_statuses_with_anthropic_error_bodies(upstream, status, kind):
    upstream.faults.append(Fault(status=status))
    error = post(upstream, GOOD).json()
    assert (error["type"], error["error"]["type"]) == ("error", kind)


def test_the_fake_streams_anthropics_event_sequence(upstream):
    with requests.post(
        upstream.url + "/v1/messages",
        json={**GOOD, "stream": True},
        headers={"x-api-key": KEY, "anthropic-version": API_VERSION},
        stream=True,
        timeout=5,
    ) as answer:
        events = list(iter_sse(answer.iter_content(chunk_size=None)))
    names = [event.event for event in events]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * len(WORDS),
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(json.loads(event.data)["type"] == event.event for event in events)
    assert json.loads(events[-2].data) == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": len(WORDS)},
    }


# The codec: pure request and response mapping.


def test_system_and_developer_messages_join_with_a_blank_line():
    body = codec.build_request(
        MODEL,
        [
            {"role": "system", "content": "One."},
            {"role": "user", "content": "Hi"},
            {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
        ],
        False,
        validate_options({}),
    )
    assert body == {
        "model": MODEL,
        "system": "One.\n\nTwo.",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": codec.DEFAULT_MAX_TOKENS,
    }


def test_parts_become_blocks_and_images_become_sources():
    body = codec.build_request(
        MODEL,
        [
            {"role": "developer", "content": "Rules."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://x.example/cat.png"}},
                ],
            },
            {"role": "assistant", "content": "Noted."},
        ],
        True,
        validate_options({"frequency_penalty": 1, "extra": {"top_k": 5}}),
    )
    assert body["system"] == "Rules."
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://x.example/cat.png"}},
    ]
    assert body["messages"][1] == {"role": "assistant", "content": "Noted."}
    assert body["top_k"] == 5 and body["stream"] is True and "frequency_penalty" not in body


def test_options_map_and_extra_merges_last():
    options = validate_options(
        {
            "max_tokens": 10,
            "stop": ["a", "b"],
            "seed": 1,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.5,
            "extra": {"max_tokens": 20, "metadata": {"user_id": "u1"}},
        }
    )
    body = codec.build_request(MODEL, [{"role": "user", "content": "x"}], False, options)
    assert (body["max_tokens"], body["stop_sequences"], body["metadata"]) == (
        20,
        ["a", "b"],
        {"user_id": "u1"},
    )
    assert not set(codec.DROPPED_OPTIONS) & set(body)


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "refusal"),
        (None, None),
    ],
)
def test_stop_reasons_map_to_the_common_vocabulary(stop_reason, expected):
    assert codec.finish_reason(stop_reason) == expected


def test_a_whole_answer_joins_its_text_blocks_only():
    chunk = codec.parse_response(
        "anthropic",
        {
            "model": MODEL,
            "content": [
                {"type": "text", "text": "Let me check. "},
                {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                {"type": "text", "text": "Done."},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 4, "output_tokens": 6},
        },
    )
    assert (chunk.text, chunk.finish_reason, chunk.model) == (
        "Let me check. Done.",
        "tool_calls",
        MODEL,
    )
    assert chunk.usage == Usage(prompt_tokens=4, completion_tokens=6, total_tokens=10)


@pytest.mark.parametrize("body", [{"type": "message"}, [], "text", {"content": "text"}])
def test_an_answer_without_content_blocks_is_malformed(body):
    with pytest.raises(MalformedResponse):
        codec.parse_response("anthropic", body)


def sse(name, data):
    return SSEEvent(data=data if isinstance(data, str) else json.dumps(data), event=name)


START = sse(
    "message_start",
    {"type": "message_start", "message": {"model": MODEL, "usage": {"input_tokens": 5}}},
)
DELTA = sse(
    "content_block_delta",
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
)
STOP = sse("message_stop", {"type": "message_stop"})


def test_a_stream_ignores_pings_and_unknown_events_and_ends_with_usage():
    events = [
        START,
        sse("ping", {"type": "ping"}),
        sse("content_block_start", {"type": "content_block_start", "index": 0}),
        DELTA,
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "delta": {"type": "input_json_delta", "partial_json": "{"},
            },
        ),
        sse("shiny_new_event", {"type": "shiny_new_event"}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "max_tokens"},
                "usage": {"output_tokens": 2},
            },
        ),
        STOP,
    ]
    chunks = list(codec.parse_stream("anthropic", events))
    assert [(c.text, c.finish_reason) for c in chunks] == [("Hi", None), ("", "length")]
    assert chunks[-1].usage == Usage(prompt_tokens=5, completion_tokens=2, total_tokens=7)
    assert {c.model for c in chunks} == {MODEL}


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [
        ("overloaded_error", Overloaded),
        ("rate_limit_error", RateLimited),
        ("api_error", ServerError),
        ("invalid_request_error", ServerError),
    ],
)
def test_an_error_event_raises_the_typed_error_with_the_upstream_message(kind, error_type):
    error = sse("error", {"type": "error", "error": {"type": kind, "message": "it broke"}})
    stream = codec.parse_stream("anthropic", [START, DELTA, error, STOP])
    assert next(stream).text == "Hi"
    with pytest.raises(error_type) as caught:
        next(stream)
    assert type(caught.value) is error_type
    assert (caught.value.provider, caught.value.upstream_message) == ("anthropic", "it broke")


def test_a_stream_without_message_stop_is_truncated():
    with pytest.raises(MalformedResponse, match="truncated"):
        list(codec.parse_stream("anthropic", [START, DELTA]))


BAD = sse("content_block_delta", "{oops")


def streamed(events):
    stats = StreamStats()
    return "".join(c.text for c in codec.parse_stream("anthropic", events, stats=stats)), stats


def test_one_data_line_that_is_not_json_is_skipped_and_counted():
    text, stats = streamed([START, DELTA, BAD, DELTA, STOP])
    assert (text, stats.malformed_events) == ("HiHi", 1)


def test_as_many_undecodable_events_in_a_row_as_allowed_then_a_good_one_completes():
    text, stats = streamed([START, *[BAD] * MAX_MALFORMED_IN_A_ROW, DELTA, STOP])
    assert (text, stats.malformed_events) == ("Hi", MAX_MALFORMED_IN_A_ROW)


def test_a_good_event_starts_the_count_in_a_row_again():
    run = [BAD] * MAX_MALFORMED_IN_A_ROW
    text, stats = streamed([START, *run, DELTA, *run, sse("ping", {"type": "ping"}), *run, STOP])
    assert (text, stats.malformed_events) == ("Hi", 3 * MAX_MALFORMED_IN_A_ROW)


def test_one_more_undecodable_event_in_a_row_is_malformed_naming_the_provider():
    stream = codec.parse_stream(
        "anthropic", [START, DELTA, *[BAD] * (MAX_MALFORMED_IN_A_ROW + 1), STOP]
    )
    assert next(stream).text == "Hi"
    with pytest.raises(MalformedResponse, match="undecodable stream events in a row") as caught:
        next(stream)
    assert caught.value.provider == "anthropic" and "{oops" in str(caught.value)


def test_an_undecodable_event_then_the_end_without_message_stop_is_truncated_and_says_so():
    with pytest.raises(MalformedResponse, match="truncated") as caught:
        streamed([START, DELTA, BAD])
    assert "1 undecodable event was skipped" in str(caught.value)


@pytest.mark.parametrize(
    "data", ["upstream overloaded, try later", '"upstream overloaded, try later"']
)
def test_an_error_event_is_an_error_even_when_its_data_is_not_a_json_object(data):
    with pytest.raises(ServerError, match="upstream overloaded, try later") as caught:
        streamed([START, sse("error", data), STOP])
    assert caught.value.provider == "anthropic"
