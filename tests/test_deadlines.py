"""The call's clocks hold whatever the server does: trickles, keep-alives, pings, silence.

Every case runs for the OpenAI-style (Gravityengine), Anthropic and Ollama providers against
their fake upstreams on 127.0.0.1, streamed and whole, with real time: the bound asserted is
the issue's, ``timeout=`` overrun by at most 0.25 s.
"""

from __future__ import annotations

import time
from contextlib import ExitStack, contextmanager

import pytest

from hypotez_providers import (
    AllProvidersFailed,
    InvalidInput,
    ProviderInfo,
    ProviderTimeout,
    Registry,
    RetryPolicy,
    Router,
    Settings,
    StreamInterrupted,
    hookimpl,
)
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI, Fault

OVERRUN = 0.25
GRAVITY_PATH = "/api/openai/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "hello"}]
REPLY = " ".join(f"word{i}" for i in range(30))
ONE_TRY = RetryPolicy(attempts=1)

VENDORS = {
    "gravityengine": (
        lambda: FakeOpenAI(path=GRAVITY_PATH, models=None, reply=REPLY),
        "gpt-3.5-turbo-16k",
    ),
    "anthropic": (lambda: FakeAnthropic(models=None, reply=REPLY), "claude-haiku-4-5"),
    "ollama": (lambda: FakeOllama(models=("llama3.2:latest",), reply=REPLY), "llama3.2"),
}


@contextmanager
def vendor_router(name, settings=None):
    make, model = VENDORS[name]
    with make() as fake:
        environ = {
            f"HYPOTEZ_{name.upper()}_BASE_URL": fake.url,
            "HYPOTEZ_ANTHROPIC_API_KEY": "test-key-anthropic",
        }
        registry = Registry(settings=settings or Settings(), environ=environ)
        try:
            yield Router(registry), fake, model
        finally:
            registry.close()


def run(router, model, provider, streamed, **limits):
    """Make the call; return (elapsed seconds, the exception raised or None)."""
    started = time.monotonic()
    try:
        if streamed:
            for _ in router.stream(model, MESSAGES, provider=provider, retry=ONE_TRY, **limits):
                pass
        else:
            router.complete(model, MESSAGES, provider=provider, retry=ONE_TRY, **limits)
    except (AllProvidersFailed, StreamInterrupted) as error:
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def cause(error):
    if isinstance(error, StreamInterrupted):
        return error.cause
    failed = [a for a in error.attempts if a.outcome == "failed"]
    return failed[-1].error, failed[-1].message


ANY_ANSWER = {
    "one byte per 100 ms": Fault(trickle=0.1),
    "headers one byte per 100 ms": Fault(slow_headers=0.1),
    "an endless body": Fault(endless=True, stall_interval=0.05),
    "silence": Fault(delay=30),
}
STREAMS_ONLY = {
    "keep-alive comments": Fault(stall_after=1, stall_with="comment", stall_interval=0.05),
    "pings": Fault(stall_after=1, stall_with="ping", stall_interval=0.05),
    "empty deltas": Fault(stall_after=1, stall_with="empty_delta", stall_interval=0.05),
}
CASES = [
    pytest.param(fault, streamed, id=f"{what}-{'stream' if streamed else 'whole'}")
    for what, fault in {**ANY_ANSWER, **STREAMS_ONLY}.items()
    for streamed in (True, False)
    if streamed or what in ANY_ANSWER
]


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize(("fault", "streamed"), CASES)
def test_timeout_is_a_wall_clock_deadline_whatever_the_server_sends(vendor, streamed, fault):
    with vendor_router(vendor) as (router, fake, model):
        fake.fail_every_request = fault
        elapsed, error = run(router, model, vendor, streamed, timeout=0.35)
    assert error is not None, "the slow server cannot finish within the deadline"
    assert elapsed <= 0.35 + OVERRUN, f"overran the deadline: {elapsed:.3f}s"
    if isinstance(error, AllProvidersFailed):
        kind, message = cause(error)
        assert kind == "ProviderTimeout" and "deadline" in message
    else:
        assert isinstance(error.cause, ProviderTimeout) and "deadline" in str(error.cause)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
@pytest.mark.parametrize("kind", ["comment", "ping", "empty_delta", "silence"])
def test_keepalives_do_not_count_as_progress_for_the_idle_clock(vendor, kind):
    with vendor_router(vendor) as (router, fake, model):
        fake.fail_every_request = Fault(stall_after=2, stall_with=kind, stall_interval=0.05)
        stream = router.stream(model, MESSAGES, provider=vendor, idle_timeout=0.4, retry=ONE_TRY)
        texts = [next(stream).text]
        started = time.monotonic()
        with pytest.raises(StreamInterrupted) as caught:
            for chunk in stream:
                texts.append(chunk.text)
        elapsed = time.monotonic() - started
    assert isinstance(caught.value.cause, ProviderTimeout)
    assert "no progress" in str(caught.value.cause)
    assert 0.3 <= elapsed <= 0.4 + OVERRUN
    assert caught.value.text == "".join(texts)


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_slow_caller_is_not_mistaken_for_a_silent_provider(vendor):
    with vendor_router(vendor) as (router, _fake, model):
        chunks = []
        for chunk in router.stream(model, MESSAGES, provider=vendor, idle_timeout=0.2):
            chunks.append(chunk)
            if len(chunks) == 2:
                time.sleep(0.4)  # the caller, not the provider, takes its time
    assert "".join(c.text for c in chunks).strip() == REPLY


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_the_first_chunk_clock_ends_a_stream_that_never_starts(vendor):
    with vendor_router(vendor) as (router, fake, model):
        fake.fail_every_request = Fault(stall_after=0, stall_with="comment", stall_interval=0.05)
        elapsed, error = run(router, model, vendor, True, first_chunk_timeout=0.4)
    kind, message = cause(error)
    assert kind == "ProviderTimeout" and "no first chunk within 0.4s" in message
    assert elapsed <= 0.4 + OVERRUN


class Trickling:
    """A plugin that yields one piece every 50 ms for ever, through no transport at all."""

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="trickling",
            url="http://127.0.0.1",
            models=["m"],
            supports_stream=True,
            needs_auth=False,
        )

    @hookimpl
    def create_completion(self, model, messages, stream):
        while True:
            time.sleep(0.05)
            yield "x"


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
def test_the_deadline_holds_for_plugin_output_too(streamed):
    registry = Registry(settings=Settings(), load_entry_points=False, environ={})
    registry.register(Trickling())
    elapsed, error = run(Router(registry), "m", "trickling", streamed, timeout=0.5)
    assert error is not None
    assert elapsed <= 0.5 + OVERRUN


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", "abc"),
        ("timeout", float("nan")),
        ("timeout", -1),
        ("timeout", 0),
        ("first_chunk_timeout", float("inf")),
        ("idle_timeout", True),
    ],
)
def test_bad_clock_values_are_the_callers_error_before_anything_is_sent(name, value):
    with vendor_router("gravityengine") as (router, fake, model):
        with pytest.raises(InvalidInput) as caught:
            router.stream(model, MESSAGES, **{name: value})
        assert caught.value.field == name
        assert fake.requests == []
        assert router.health()[0].failures == 0


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_an_idle_timeout_longer_than_the_providers_read_timeout_is_honoured(vendor):
    settings = parse_settings(f"[providers.{vendor}]\ntimeout = 0.3\n")
    with vendor_router(vendor, settings) as (router, fake, model):
        fake.fail_every_request = Fault(stall_after=3, stall_with="silence", stall_for=0.6)
        stream = router.stream(model, MESSAGES, provider=vendor, idle_timeout=1.5, retry=ONE_TRY)
        assert "".join(chunk.text for chunk in stream).strip() == REPLY


@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "whole"])
def test_the_deadline_holds_across_retries_and_fallbacks_of_slow_providers(streamed):
    """Three providers, each slow its own way, retries allowed: the call still ends on time."""
    with ExitStack() as stack:
        fakes = {
            name: stack.enter_context(FakeOpenAI(path=GRAVITY_PATH, models=None))
            for name in ("one", "two", "three")
        }
        fakes["one"].fail_every_request = Fault(trickle=0.05)
        fakes["two"].fail_every_request = Fault(status=503)
        fakes["three"].fail_every_request = Fault(
            stall_after=0, stall_with="ping", stall_interval=0.02
        )
        endpoints = "".join(
            f'[endpoints.{name}]\nbase_url = "{fake.url}"\nmodels = ["m"]\n'
            f'path = "{GRAVITY_PATH}"\n'
            for name, fake in fakes.items()
        )
        registry = Registry(
            settings=parse_settings('[routes]\nm = ["one", "two", "three"]\n' + endpoints),
            load_entry_points=False,
            environ={},
        )
        stack.callback(registry.close)
        router = Router(registry)
        started = time.monotonic()
        with pytest.raises(AllProvidersFailed):
            policy = RetryPolicy(attempts=3, initial_backoff=0.05, jitter=0)
            if streamed:
                list(router.stream("m", MESSAGES, timeout=0.8, retry=policy))
            else:
                router.complete("m", MESSAGES, timeout=0.8, retry=policy)
        assert time.monotonic() - started <= 0.8 + OVERRUN


@pytest.mark.parametrize("vendor", sorted(VENDORS))
def test_a_whole_answer_is_bounded_by_the_providers_timeout_even_when_trickled(vendor):
    settings = parse_settings(f"[providers.{vendor}]\ntimeout = 0.4\n")
    with vendor_router(vendor, settings) as (router, fake, model):
        fake.fail_every_request = Fault(trickle=0.01)
        elapsed, error = run(router, model, vendor, False)
    kind, message = cause(error)
    assert kind == "ProviderTimeout" and "no whole answer within 0.4s" in message
    assert elapsed <= 0.4 + OVERRUN


class OwnSession:
    """A plugin that sends with ``context.session`` itself, as legacy-style code does."""

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="own",
            url="http://127.0.0.1",
            models=["m"],
            supports_stream=False,
            needs_auth=False,
        )

    @hookimpl
    def create_completion(self, model, messages, stream, context):
        url = context.base_url + "/v1/chat/completions"
        answer = context.session.post(url, json={"model": model, "messages": messages}, timeout=30)
        yield answer.json()["choices"][0]["message"]["content"]


def test_a_plugin_using_the_context_session_is_held_to_the_deadline_and_told_why():
    with FakeOpenAI(models=None) as fake:
        fake.fail_every_request = Fault(trickle=0.02)
        registry = Registry(
            settings=Settings(), load_entry_points=False, environ={"HYPOTEZ_OWN_BASE_URL": fake.url}
        )
        registry.register(OwnSession())
        elapsed, error = run(Router(registry), "m", "own", False, timeout=0.4)
        registry.close()
    kind, message = cause(error)
    assert kind == "ProviderTimeout" and "deadline" in message
    assert elapsed <= 0.4 + OVERRUN
