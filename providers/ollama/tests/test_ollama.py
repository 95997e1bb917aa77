"""The Ollama plugin over real HTTP against a fake Ollama, and its pure request/response mapping."""

from __future__ import annotations

import base64
import json
import threading

import pytest
from hypotez_ollama import MODELS, codec, discover_models

from hypotez_providers import (
    MAX_MALFORMED_IN_A_ROW,
    Chunk,
    CompletionOptions,
    ConnectionFailed,
    ConnectionRefused,
    MalformedResponse,
    NotFound,
    Registry,
    Router,
    ServerError,
    Usage,
    create_completion,
)
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import Fault, closed_port_url
from hypotez_providers.testing.ollama import MID_STREAM_ERROR, FakeOllama

MODEL = "llama3.2:latest"
MESSAGES = [{"role": "user", "content": "Tell me something"}]
PIECES = ["Hello!", " How", " can", " I", " help", " you", " today?"]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def make_registry(url, models=(MODEL,), **environ):
    listed = ", ".join(f'"{name}"' for name in models)
    settings = parse_settings(f"[providers.ollama]\nmodels = [{listed}]\n")
    return Registry(settings=settings, environ={"HYPOTEZ_OLLAMA_BASE_URL": url, **environ})


@pytest.fixture
def fake():
    with FakeOllama() as upstream:
        yield upstream


@pytest.fixture
def registry(fake):
    made = make_registry(fake.url)
    yield made
    made.close()


@pytest.fixture
def ollama(registry):
    return registry.provider("ollama")


# --- metadata and discovery ------------------------------------------------------------------


def test_the_entry_point_lists_ollama_with_its_metadata():
    registry = Registry(environ={})
    info = registry.provider("ollama").info
    assert (info.name, info.url) == ("ollama", "http://localhost:11434")
    assert info.models == MODELS and "llama3.2" in info.models
    assert (info.supports_stream, info.needs_auth, info.api_key_env) == (True, False, None)
    assert info.params[:3] == ("model: str", "messages: list[dict[str, Any]]", "stream: bool")
    assert "ollama" in {record.name for record in registry.plugins()}


def test_the_settings_models_replace_the_default_list(ollama):
    assert ollama.models == (MODEL,)


def test_discover_models_lists_the_pulled_models_from_api_tags():
    with FakeOllama(models=("llama3.2:latest", "qwen3:8b")) as upstream:
        registry = make_registry(upstream.url)
        assert discover_models(registry.provider("ollama")) == ["llama3.2:latest", "qwen3:8b"]
        [request] = upstream.requests
    assert (request.method, request.path) == ("GET", "/api/tags")


def test_discover_models_raises_typed_errors():
    registry = make_registry(closed_port_url())
    with pytest.raises(ConnectionRefused):
        discover_models(registry.provider("ollama"))


def test_discover_models_refuses_an_answer_that_is_not_a_model_list(fake, ollama):
    fake.faults.append(Fault(status=200, body='{"tags": []}'))
    with pytest.raises(MalformedResponse, match="model list"):
        discover_models(ollama)


# --- the request -----------------------------------------------------------------------------


def test_a_whole_answer_is_asked_with_stream_false_and_no_options(fake, ollama):
    ollama.complete(MODEL, MESSAGES)
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/api/chat")
    assert request.json == {"model": MODEL, "messages": MESSAGES, "stream": False}
    assert "authorization" not in request.headers


def test_a_stream_is_asked_with_stream_true(fake, ollama):
    list(ollama.stream(MODEL, MESSAGES))
    assert fake.requests[0].json["stream"] is True


def test_options_travel_in_ollamas_options_object(fake, ollama):
    ollama.complete(
        MODEL,
        MESSAGES,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop="\n\n",
        presence_penalty=0.5,
        frequency_penalty=0.25,
        max_tokens=50,
        extra={"num_ctx": 8192, "top_k": 40},
    )
    sent = fake.requests[0].json
    assert sent["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["\n\n"],
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "num_predict": 50,
        "num_ctx": 8192,
        "top_k": 40,
    }
    assert "max_tokens" not in sent and "temperature" not in sent


def test_images_and_roles_are_sent_in_ollamas_shape(fake, ollama):
    messages = [
        {"role": "developer", "content": "Describe images."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        },
    ]
    ollama.complete(MODEL, messages)
    assert fake.requests[0].json["messages"] == [
        {"role": "system", "content": "Describe images."},
        {"role": "user", "content": "What is this?", "images": [PNG]},
    ]


def test_a_key_if_set_is_sent_as_a_bearer_token(fake):
    registry = make_registry(fake.url, HYPOTEZ_OLLAMA_API_KEY="sk-proxy-123456")
    registry.provider("ollama").complete(MODEL, MESSAGES)
    assert fake.requests[0].headers["authorization"] == "Bearer sk-proxy-123456"


# --- the answer ------------------------------------------------------------------------------


def test_a_whole_answer_has_text_finish_reason_and_usage(ollama, fake):
    answer = ollama.complete(MODEL, MESSAGES)
    assert answer.text == fake.reply
    assert (answer.provider, answer.model, answer.finish_reason) == ("ollama", MODEL, "stop")
    assert answer.usage == Usage(prompt_tokens=3, completion_tokens=7, total_tokens=10)


def test_a_stream_yields_the_pieces_in_order_then_reason_and_usage(ollama):
    chunks = list(ollama.stream(MODEL, MESSAGES))
    assert [chunk.text for chunk in chunks if chunk.text] == PIECES
    last = chunks[-1]
    assert (last.text, last.finish_reason, last.model) == ("", "stop", MODEL)
    assert last.usage == Usage(prompt_tokens=3, completion_tokens=7, total_tokens=10)


def test_num_predict_cuts_the_answer_with_finish_reason_length(ollama):
    chunks = list(ollama.stream(MODEL, MESSAGES, max_tokens=2))
    assert "".join(chunk.text for chunk in chunks) == "Hello! How"
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 2
    assert ollama.complete(MODEL, MESSAGES, max_tokens=3).finish_reason == "length"


def test_the_model_is_accepted_without_its_latest_tag():
    with FakeOllama() as upstream:
        registry = make_registry(upstream.url, models=("llama3.2",))
        assert registry.provider("ollama").complete("llama3.2", MESSAGES).text == upstream.reply


def test_the_first_piece_reaches_the_caller_before_the_upstream_sends_the_last(fake, registry):
    fake.hold_before_last = threading.Event()
    stream = create_completion(MODEL, MESSAGES, stream=True, provider="ollama", registry=registry)
    first = next(stream)
    assert first == "Hello!"
    assert not fake.last_chunk_sent.is_set()
    fake.hold_before_last.set()
    rest = list(stream)
    assert fake.last_chunk_sent.is_set()
    assert first + "".join(rest) == fake.reply


def test_the_router_streams_an_ollama_upstream(fake, registry):
    routed = Router(registry).stream(MODEL, MESSAGES)
    chunks = list(routed)
    assert "".join(chunk.text for chunk in chunks) == fake.reply
    assert chunks[-1].finish_reason == "stop"
    assert [(attempt.provider, attempt.outcome) for attempt in routed.attempts] == [
        ("ollama", "ok")
    ]


def test_the_router_retries_a_500_then_gets_the_answer(fake, registry):
    fake.faults.append(Fault(status=500))
    answer = Router(registry, sleep=lambda seconds: None).complete(MODEL, MESSAGES)
    assert answer.text == fake.reply
    assert [attempt.outcome for attempt in answer.attempts] == ["failed", "ok"]


# --- failures --------------------------------------------------------------------------------


def test_an_unpulled_model_is_not_found(fake):
    registry = make_registry(fake.url, models=("mistral",))
    with pytest.raises(NotFound, match='model "mistral" not found, try pulling it first') as caught:
        registry.provider("ollama").complete("mistral", MESSAGES)
    assert (caught.value.status, caught.value.retryable) == (404, False)


def test_a_500_is_a_retryable_server_error_with_ollamas_message(fake, ollama):
    fake.faults.append(Fault(status=500))
    with pytest.raises(ServerError, match="llama runner process has terminated") as caught:
        list(ollama.stream(MODEL, MESSAGES))
    assert (caught.value.status, caught.value.retryable) == (500, True)


@pytest.mark.parametrize(
    ("fault", "error_type", "match"),
    [
        (Fault(error_event_after=2), ServerError, f"mid-stream: {MID_STREAM_ERROR}"),
        (Fault(truncate_after=2), MalformedResponse, "truncated"),
        (Fault(drop_after=2), ConnectionFailed, "mid-stream"),
    ],
)
def test_stream_faults_raise_typed_errors_after_the_pieces_received(
    fake, ollama, fault, error_type, match
):
    fake.faults.append(fault)
    received = []
    with pytest.raises(error_type, match=match) as caught:
        for chunk in ollama.stream(MODEL, MESSAGES):
            received.append(chunk.text)
    assert caught.value.provider == "ollama"
    assert "".join(received) == "Hello! How"


# --- tolerance: a line that is not JSON is skipped and counted -------------------------------


def test_the_fakes_broken_line_is_skipped_and_the_answer_is_complete(fake, ollama):
    fake.faults.append(Fault(malformed=True))
    chunks = list(ollama.stream(MODEL, MESSAGES))
    assert "".join(c.text for c in chunks) == "".join(PIECES)
    assert chunks[-1].finish_reason == "stop"
    assert ollama.context.stats.malformed_events == 1


def serve_lines(fake, *lines):
    """Answer every request with exactly these NDJSON lines, each one HTTP chunk, then end."""

    def handle(request, fault, responder):
        responder.start_stream("application/x-ndjson")
        for line in lines:
            responder.write_chunk(line + b"\n")
        responder.end_stream()

    fake.handle = handle


def line(text):
    return json.dumps(
        {"model": MODEL, "message": {"role": "assistant", "content": text}, "done": False}
    ).encode()


DONE = json.dumps(
    {"model": MODEL, "message": {"content": ""}, "done": True, "done_reason": "stop"}
).encode()
BROKEN = b'{"model": "llama3.2:latest", "created_at":'


def streamed_text(ollama):
    return "".join(chunk.text for chunk in ollama.stream(MODEL, MESSAGES))


def test_one_broken_line_mid_stream_is_skipped_and_counted(fake, ollama):
    serve_lines(fake, line("Hel"), BROKEN, line("lo"), DONE)
    assert streamed_text(ollama) == "Hello"
    assert ollama.context.stats.malformed_events == 1


def test_as_many_broken_lines_in_a_row_as_allowed_then_a_good_one_completes(fake, ollama):
    serve_lines(fake, line("Hel"), *[BROKEN] * MAX_MALFORMED_IN_A_ROW, line("lo"), DONE)
    assert streamed_text(ollama) == "Hello"
    assert ollama.context.stats.malformed_events == MAX_MALFORMED_IN_A_ROW


def test_one_more_broken_line_in_a_row_is_malformed_naming_the_provider(fake, ollama):
    serve_lines(fake, line("Hel"), *[BROKEN] * (MAX_MALFORMED_IN_A_ROW + 1), line("lo"), DONE)
    received = []
    with pytest.raises(MalformedResponse, match="undecodable stream events in a row") as caught:
        for chunk in ollama.stream(MODEL, MESSAGES):
            received.append(chunk.text)
    assert caught.value.provider == "ollama" and received == ["Hel"]


def test_a_broken_last_line_is_a_truncated_answer_that_says_what_was_skipped(fake, ollama):
    serve_lines(fake, line("Hel"), BROKEN)
    with pytest.raises(MalformedResponse, match=r"truncated \(1 undecodable event was skipped\)"):
        streamed_text(ollama)


def test_the_truncation_note_counts_only_this_streams_skipped_lines(fake, ollama):
    serve_lines(fake, line("Hel"), BROKEN, BROKEN, line("lo"), DONE)
    assert streamed_text(ollama) == "Hello"
    serve_lines(fake, line("Hel"), BROKEN)
    with pytest.raises(MalformedResponse, match=r"\(1 undecodable event was skipped\)"):
        streamed_text(ollama)
    assert ollama.context.stats.malformed_events == 3
    serve_lines(fake, line("Hel"))
    with pytest.raises(MalformedResponse, match="truncated") as caught:
        streamed_text(ollama)
    assert "skipped" not in str(caught.value)


def test_a_malformed_whole_answer_is_reported(fake, ollama):
    fake.faults.append(Fault(malformed=True))
    with pytest.raises(MalformedResponse, match="expected JSON"):
        ollama.complete(MODEL, MESSAGES)


# --- the pure mapping ------------------------------------------------------------------------


def test_build_payload_always_says_whether_to_stream_and_omits_empty_options():
    for stream in (True, False):
        payload = codec.build_payload(MODEL, MESSAGES, stream, CompletionOptions())
        assert payload == {"model": MODEL, "messages": MESSAGES, "stream": stream}


def test_stop_is_always_a_list_and_extra_wins():
    options = CompletionOptions(stop=["a", "b"], max_tokens=5, extra={"num_predict": 9})
    assert codec.to_ollama_options(options) == {"stop": ["a", "b"], "num_predict": 9}


def test_text_parts_are_joined_and_unfetchable_images_dropped():
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "one"},
            {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
            {"type": "text", "text": "two"},
        ],
    }
    assert codec.to_ollama_message(message) == {"role": "user", "content": "one\ntwo"}


def test_image_data_takes_base64_as_is_and_encodes_plain_data_urls():
    assert codec.image_data(f"data:image/png;base64,{PNG}") == PNG
    assert (
        codec.image_data("data:image/svg+xml,%3Csvg%2F%3E") == base64.b64encode(b"<svg/>").decode()
    )
    assert codec.image_data("https://example.com/x.png") is None


@pytest.mark.parametrize(
    ("done_reason", "expected"),
    [("stop", "stop"), ("length", "length"), ("load", "load"), (None, None), ("", None)],
)
def test_finish_reason_maps_done_reason(done_reason, expected):
    assert codec.finish_reason(done_reason) == expected


def test_parse_line_gives_pieces_the_final_chunk_and_nothing_for_empty_pieces():
    piece = {"model": MODEL, "message": {"role": "assistant", "content": "Hi"}, "done": False}
    empty = {"model": MODEL, "message": {"role": "assistant", "content": ""}, "done": False}
    final = {
        "model": MODEL,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": "length",
        "prompt_eval_count": 26,
        "eval_count": 290,
    }
    assert codec.parse_line("ollama", piece) == Chunk(text="Hi")
    assert codec.parse_line("ollama", empty) is None
    assert codec.parse_line("ollama", final) == Chunk(
        finish_reason="length",
        usage=Usage(prompt_tokens=26, completion_tokens=290, total_tokens=316),
        model=MODEL,
    )


def test_parse_line_without_counters_has_no_usage():
    chunk = codec.parse_line("ollama", {"message": {"content": ""}, "done": True})
    assert chunk is not None and chunk.usage is None


@pytest.mark.parametrize(
    ("line", "error_type", "match"),
    [
        ({"error": "boom"}, ServerError, "error line mid-stream: boom"),
        ([1, 2], MalformedResponse, "not an object"),
        ({"message": "text"}, MalformedResponse, "malformed message"),
        ({"choices": []}, MalformedResponse, "not an Ollama chat object"),
    ],
)
def test_parse_line_refuses_errors_and_foreign_lines(line, error_type, match):
    with pytest.raises(error_type, match=match):
        codec.parse_line("ollama", line)


def test_parse_stream_stops_at_the_done_line_and_requires_it():
    lines = [
        {"message": {"content": "a"}, "done": False},
        {"message": {"content": ""}, "done": True, "done_reason": "stop"},
        {"message": {"content": "ignored"}, "done": False},
    ]
    assert [chunk.text for chunk in codec.parse_stream("ollama", lines)] == ["a", ""]
    with pytest.raises(MalformedResponse, match="truncated"):
        list(codec.parse_stream("ollama", lines[:1]))


def test_parse_response_needs_a_finished_answer():
    body = {"message": {"content": "all"}, "done": True, "done_reason": "stop", "eval_count": 1}
    assert codec.parse_response("ollama", body).text == "all"
    with pytest.raises(MalformedResponse, match="not a finished"):
        codec.parse_response("ollama", {"message": {"content": "x"}, "done": False})
    with pytest.raises(ServerError, match="reports an error: oops"):
        codec.parse_response("ollama", {"error": "oops"})
