"""Routed streams over real HTTP: tolerant of a bad event, and rescued when asked.

A stream cut after 40 chunks or stalled after 20, from an OpenAI-style provider (Gravityengine),
with Anthropic (which accepts an assistant prefill) behind it in an alias.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager

import pytest

from hypotez_providers import (
    Chunk,
    Completion,
    InvalidInput,
    ProviderTimeout,
    Registry,
    Router,
    StreamInterrupted,
    create_completion,
)
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI, Fault

GRAVITY_PATH = "/api/openai/v1/chat/completions"
PIECES = [f" w{i}" for i in range(60)]
REPLY = "".join(PIECES)
MESSAGES = [{"role": "user", "content": "count"}]
ALIAS = """
[aliases]
smart = ["gravityengine:gpt-3.5-turbo-16k", "anthropic:claude-haiku-4-5"]
both-openai = ["gravityengine:gpt-3.5-turbo-16k", "spare:gpt-3.5-turbo-16k"]

[endpoints.spare]
base_url = "{spare}"
models = ["gpt-3.5-turbo-16k"]
path = "/api/openai/v1/chat/completions"
"""


@contextmanager
def upstreams():
    with ExitStack() as stack:
        gravity = stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None, pieces=PIECES))
        anthropic = stack.enter_context(FakeAnthropic(models=None, pieces=PIECES))
        spare = stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None, pieces=PIECES))
        environ = {
            "HYPOTEZ_GRAVITYENGINE_BASE_URL": gravity.url,
            "HYPOTEZ_ANTHROPIC_BASE_URL": anthropic.url,
            "HYPOTEZ_ANTHROPIC_API_KEY": "test-key-anthropic",
        }
        registry = Registry(settings=parse_settings(ALIAS.format(spare=spare.url)), environ=environ)
        stack.callback(registry.close)
        yield Router(registry), gravity, anthropic, spare


CUT = Fault(drop_after=40)
STALL = Fault(stall_after=20, stall_with="silence")
BREAKS = {"cut after 40": (CUT, 40), "stalled after 20": (STALL, 20)}


def read(stream):
    chunks = []
    try:
        for chunk in stream:
            chunks.append(chunk)
    except StreamInterrupted as error:
        return chunks, error
    return chunks, None


@pytest.mark.parametrize(("fault", "sent"), BREAKS.values(), ids=BREAKS.keys())
def test_without_rescue_a_broken_stream_raises_with_the_text_received(fault, sent):
    with upstreams() as (router, gravity, anthropic, _):
        gravity.fail_every_request = fault
        chunks, error = read(router.stream("smart", MESSAGES, idle_timeout=0.3))
    assert error is not None
    assert error.text == "".join(PIECES[:sent]) == "".join(c.text for c in chunks)
    assert anthropic.requests == []
    if fault is STALL:
        assert isinstance(error.cause, ProviderTimeout)


@pytest.mark.parametrize(("fault", "sent"), BREAKS.values(), ids=BREAKS.keys())
def test_restart_tells_the_caller_to_discard_then_gives_the_whole_answer(fault, sent):
    with upstreams() as (router, gravity, anthropic, _):
        gravity.fail_every_request = fault
        stream = router.stream("smart", MESSAGES, idle_timeout=0.3, rescue="restart")
        chunks, error = read(stream)
    assert error is None
    markers = [i for i, chunk in enumerate(chunks) if chunk.rescue]
    assert markers == [sent], "one reset chunk, right where the first stream broke"
    marker = chunks[sent]
    assert (marker.rescue, marker.provider, marker.text) == ("restart", "anthropic", "")
    assert "".join(c.text for c in chunks[sent + 1 :]) == REPLY
    assert Completion.from_chunks(chunks, model="m", provider="anthropic").text == REPLY
    assert stream.provider == "anthropic"
    rescuer = stream.attempts[-1]
    assert (rescuer.provider, rescuer.outcome, rescuer.rescue) == ("anthropic", "ok", "restart")
    assert anthropic.requests[0].json["messages"] == MESSAGES


@pytest.mark.parametrize(("fault", "sent"), BREAKS.values(), ids=BREAKS.keys())
def test_continue_asks_a_prefill_provider_to_finish_and_marks_the_splice(fault, sent):
    with upstreams() as (router, gravity, anthropic, _):
        gravity.fail_every_request = fault
        stream = router.stream("smart", MESSAGES, idle_timeout=0.3, rescue="continue")
        chunks, error = read(stream)
    assert error is None
    marker = chunks[sent]
    assert (marker.rescue, marker.provider) == ("continue", "anthropic")
    assert "".join(c.text for c in chunks) == REPLY, "the splice neither drops nor repeats"
    sent_messages = anthropic.requests[0].json["messages"]
    assert sent_messages[-1] == {"role": "assistant", "content": "".join(PIECES[:sent]).rstrip()}
    assert Completion.from_chunks(chunks, model="m", provider="anthropic").text == REPLY


def test_continue_keeps_trailing_white_space_from_being_said_twice():
    pieces = [" one", " two ", "three", " four"]
    with upstreams() as (router, gravity, anthropic, _):
        gravity.pieces, anthropic.pieces = pieces, pieces
        gravity.fail_every_request = Fault(drop_after=2)
        chunks, error = read(router.stream("smart", MESSAGES, rescue="continue"))
    assert error is None
    assert "".join(c.text for c in chunks) == "".join(pieces)
    assert anthropic.requests[0].json["messages"][-1]["content"] == " one two"


def test_continue_skips_providers_that_take_no_prefill_and_says_so_when_none_is_left():
    with upstreams() as (router, gravity, _, spare):
        gravity.fail_every_request = CUT
        _, error = read(router.stream("both-openai", MESSAGES, rescue="continue"))
    assert error is not None and error.text == "".join(PIECES[:40])
    assert spare.requests == [], "an OpenAI-style endpoint that declares no prefill is not asked"


def test_restart_may_use_any_provider_serving_the_alias():
    with upstreams() as (router, gravity, _, _spare):
        gravity.fail_every_request = CUT
        stream = router.stream("both-openai", MESSAGES, rescue="restart")
        chunks, error = read(stream)
    assert error is None and stream.provider == "spare"
    assert Completion.from_chunks(chunks, model="m", provider="spare").text == REPLY


@pytest.mark.parametrize("rescue", [None, "restart", "continue"])
def test_complete_asks_the_next_provider_when_an_answer_is_cut(rescue):
    with upstreams() as (router, gravity, _, _spare):
        gravity.fail_every_request = Fault(malformed=True)
        answer = router.complete("smart", MESSAGES, rescue=rescue)
    assert (answer.text, answer.provider) == (REPLY, "anthropic")


def test_a_bad_rescue_value_is_the_callers_error():
    with upstreams() as (router, gravity, _, _spare), pytest.raises(InvalidInput) as caught:
        router.stream("smart", MESSAGES, rescue="resume")
    assert caught.value.field == "rescue" and gravity.requests == []


def test_the_functional_api_refuses_a_restart_it_could_not_signal():
    with pytest.raises(InvalidInput) as caught:
        create_completion("m", MESSAGES, stream=True, rescue="restart")
    assert caught.value.field == "rescue"


# -- tolerance: one bad event does not abort a good stream --------------------------------


@contextmanager
def single(vendor):
    fakes = {
        "gravityengine": lambda: FakeOpenAI(path=GRAVITY_PATH, models=None, pieces=PIECES),
        "anthropic": lambda: FakeAnthropic(models=None, pieces=PIECES),
        "ollama": lambda: FakeOllama(models=("llama3.2:latest",), pieces=PIECES),
    }
    models = {
        "gravityengine": "gpt-3.5-turbo-16k",
        "anthropic": "claude-haiku-4-5",
        "ollama": "llama3.2",
    }
    with fakes[vendor]() as fake:
        environ = {
            f"HYPOTEZ_{vendor.upper()}_BASE_URL": fake.url,
            "HYPOTEZ_ANTHROPIC_API_KEY": "test-key-anthropic",
        }
        registry = Registry(settings=parse_settings(""), environ=environ)
        try:
            yield Router(registry), fake, models[vendor]
        finally:
            registry.close()


@pytest.mark.parametrize("vendor", ["gravityengine", "anthropic", "ollama"])
def test_a_malformed_event_mid_stream_is_skipped_and_counted_on_the_attempt(vendor):
    with single(vendor) as (router, fake, model):
        fake.fail_every_request = Fault(malformed_at=10)
        stream = router.stream(model, MESSAGES, provider=vendor)
        text = "".join(chunk.text for chunk in stream)
    assert text == REPLY
    assert stream.attempts[-1].malformed_events == 1
    assert "1 undecodable events skipped" in stream.attempts[-1].describe()


@pytest.mark.parametrize("vendor", ["gravityengine", "anthropic", "ollama"])
def test_too_many_bad_events_in_a_row_still_break_the_stream(vendor):
    with single(vendor) as (router, fake, model):
        fake.fail_every_request = Fault(malformed_at=10, malformed_count=4)
        _, error = read(router.stream(model, MESSAGES, provider=vendor))
    assert error is not None and error.text == "".join(PIECES[:10])
    assert "undecodable" in str(error.cause)


def test_a_reset_chunk_is_a_chunk_callers_can_recognise():
    marker = Chunk(rescue="restart", provider="anthropic")
    assert marker.text == "" and marker.rescue == "restart"


def test_closing_a_rescued_stream_at_its_marker_releases_the_rescuers_connection():
    with upstreams() as (router, gravity, anthropic, _):
        gravity.fail_every_request = CUT
        stream = router.stream("smart", MESSAGES, rescue="restart")
        for chunk in stream:
            if chunk.rescue:
                break
        stream.close()
        # The rescuer's answer was being read; its connection is released, the fake sees it go.
        deadline = time.monotonic() + 2
        while anthropic.open_connections() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert anthropic.open_connections() == 0
