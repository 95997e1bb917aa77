"""The Gravityengine plugin over real HTTP against a fake upstream at its chat path."""

from __future__ import annotations

import threading

import pytest

from hypotez_providers import (
    ConnectionFailed,
    InvalidInput,
    MalformedResponse,
    Registry,
    ServerError,
    UnknownModel,
    create_completion,
)
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI, Fault

MESSAGES = [{"role": "user", "content": "Tell me something"}]
MODEL = "gpt-3.5-turbo-16k"


def test_metadata_is_the_seeds():
    info = Registry(environ={}).provider("gravityengine").info
    assert info.url == "https://gpt4.xunika.uk"
    assert info.models == ("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613")
    assert (info.supports_stream, info.needs_auth) == (True, False)
    assert info.params[:3] == ("model: str", "messages: list[dict[str, Any]]", "stream: bool")


def test_it_posts_the_openai_payload_with_the_seeds_defaults(gravity_registry, gravity_upstream):
    answer = gravity_registry.provider("gravityengine").complete(MODEL, MESSAGES)
    [request] = gravity_upstream.requests
    assert request.path == "/api/openai/v1/chat/completions"
    assert request.json == {
        "model": MODEL,
        "messages": MESSAGES,
        "temperature": 0.7,
        "presence_penalty": 0,
    }
    assert "authorization" not in request.headers
    assert answer.text == gravity_upstream.reply
    assert (answer.provider, answer.model, answer.finish_reason) == ("gravityengine", MODEL, "stop")
    assert answer.usage is not None and answer.usage.completion_tokens == 7


def test_the_callers_options_override_the_defaults(gravity_registry, gravity_upstream):
    gravity_registry.provider("gravityengine").complete(
        MODEL, MESSAGES, temperature=0.1, max_tokens=3, extra={"user": "u1"}
    )
    sent = gravity_upstream.requests[0].json
    assert (sent["temperature"], sent["max_tokens"], sent["user"]) == (0.1, 3, "u1")
    assert sent["presence_penalty"] == 0


def test_streaming_yields_each_piece_as_the_upstream_sends_it(gravity_registry, gravity_upstream):
    chunks = list(gravity_registry.provider("gravityengine").stream(MODEL, MESSAGES))
    texts = [chunk.text for chunk in chunks if chunk.text]
    assert texts == ["Hello!", " How", " can", " I", " help", " you", " today?"]
    assert chunks[-1].finish_reason == "stop"
    assert gravity_upstream.requests[0].json["stream"] is True


def test_the_first_piece_reaches_the_caller_before_the_upstream_sends_the_last(
    gravity_registry, gravity_upstream
):
    gravity_upstream.hold_before_last = threading.Event()
    stream = create_completion(
        MODEL, MESSAGES, stream=True, provider="gravityengine", registry=gravity_registry
    )
    first = next(stream)
    assert first == "Hello!"
    assert not gravity_upstream.last_chunk_sent.is_set()
    gravity_upstream.hold_before_last.set()
    rest = list(stream)
    assert gravity_upstream.last_chunk_sent.is_set()
    assert first + "".join(rest) == gravity_upstream.reply


def test_a_length_cut_is_reported(gravity_registry):
    chunks = list(gravity_registry.provider("gravityengine").stream(MODEL, MESSAGES, max_tokens=2))
    assert "".join(c.text for c in chunks) == "Hello! How"
    assert chunks[-1].finish_reason == "length"


def test_the_direct_call_yields_one_piece_without_streaming(gravity_registry):
    pieces = list(
        create_completion(MODEL, MESSAGES, provider="gravityengine", registry=gravity_registry)
    )
    assert pieces == ["Hello! How can I help you today?"]


@pytest.mark.parametrize(
    ("fault", "error_type", "match"),
    [
        (Fault(truncate_after=2), MalformedResponse, "truncated"),
        (Fault(error_event_after=2), ServerError, "mid-stream"),
        (Fault(drop_after=2), ConnectionFailed, "mid-stream"),
    ],
)
def test_stream_faults_raise_typed_errors_after_the_pieces_received(
    gravity_registry, gravity_upstream, fault, error_type, match
):
    gravity_upstream.faults.append(fault)
    received = []
    with pytest.raises(error_type, match=match) as caught:
        for chunk in gravity_registry.provider("gravityengine").stream(MODEL, MESSAGES):
            received.append(chunk.text)
    assert caught.value.provider == "gravityengine"
    assert "".join(received) == "Hello! How"


def test_one_malformed_stream_event_is_skipped_and_the_answer_is_complete(
    gravity_registry, gravity_upstream
):
    gravity_upstream.faults.append(Fault(malformed=True))
    provider = gravity_registry.provider("gravityengine")
    assert (
        "".join(chunk.text for chunk in provider.stream(MODEL, MESSAGES)) == gravity_upstream.reply
    )
    assert provider.context.stats.malformed_events == 1


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ({"model": "gpt-4"}, "model"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": []}, "messages"),
        ({"temperature": 5}, "temperature"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    gravity_registry, gravity_upstream, call, field
):
    arguments = {"model": MODEL, "messages": MESSAGES, **call}
    with pytest.raises(InvalidInput) as caught:
        create_completion(
            arguments.pop("model"),
            arguments.pop("messages"),
            stream=True,
            provider="gravityengine",
            registry=gravity_registry,
            **arguments,
        )
    assert caught.value.field == field
    assert gravity_upstream.requests == []


def test_an_unknown_model_suggests_the_close_ones(gravity_registry):
    with pytest.raises(UnknownModel, match=r"did you mean 'gpt-3\.5-turbo-16k'"):
        gravity_registry.provider("gravityengine").complete("gpt-3.5-turbo-16", MESSAGES)


def test_the_base_url_comes_from_the_settings_file_too(gravity_upstream):
    settings = parse_settings(f'[providers.gravityengine]\nbase_url = "{gravity_upstream.url}"\n')
    registry = Registry(settings=settings, environ={})
    assert registry.provider("gravityengine").complete(MODEL, MESSAGES).text.startswith("Hello!")


def test_the_environment_beats_the_settings_file():
    with FakeOpenAI(path="/api/openai/v1/chat/completions", models=None, reply="from env") as fake:
        settings = parse_settings('[providers.gravityengine]\nbase_url = "http://127.0.0.1:9"\n')
        registry = Registry(settings=settings, environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url})
        assert registry.provider("gravityengine").complete(MODEL, MESSAGES).text == "from env"


def test_a_connection_failure_at_the_historical_host_says_it_is_gone_and_what_to_do():
    # The historical host is never contacted: the rewording is checked on a made error.
    from hypotez_gravityengine import HISTORICAL_URL, explain_unreachable

    from hypotez_providers import ConnectionRefused

    failed = ConnectionFailed("gravityengine", "host name not found")
    explained = explain_unreachable(failed, HISTORICAL_URL + "/")
    assert type(explained) is ConnectionFailed and explained.retryable
    assert "host name not found" in str(explained)
    assert "historical host https://gpt4.xunika.uk is gone" in str(explained)
    assert "HYPOTEZ_GRAVITYENGINE_BASE_URL" in str(explained)
    assert "hypotez fake --format gravityengine" in str(explained)
    refused = explain_unreachable(ConnectionRefused("gravityengine", "refused"), HISTORICAL_URL)
    assert type(refused) is ConnectionRefused
    assert explain_unreachable(failed, "http://127.0.0.1:1") is failed


def test_a_connection_failure_elsewhere_keeps_its_own_message():
    from hypotez_providers.testing import closed_port_url

    settings = parse_settings(f'[providers.gravityengine]\nbase_url = "{closed_port_url()}"\n')
    provider = Registry(settings=settings, environ={}).provider("gravityengine")
    with pytest.raises(ConnectionFailed) as caught:
        provider.complete(MODEL, MESSAGES)
    assert "historical" not in str(caught.value)
