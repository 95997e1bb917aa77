"""A conformance battery for a provider plugin, run against a local fake of its wire format.

``run_conformance("openai")`` starts the fake matching the provider, points the provider at
it through the environment with a planted key, and returns one :class:`CheckResult` per
property: whole and streamed answers, typed errors for each HTTP failure, no key leaks, input
checked before any I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..errors import (
    AuthenticationFailed,
    BadRequest,
    HypotezError,
    InvalidInput,
    NotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
)
from ..provider_settings import RetryPolicy
from ..registry import Registry
from ..router import Router
from ..settings import Settings
from .anthropic import FakeAnthropic
from .faults import Fault
from .ollama import FakeOllama
from .openai import FakeOpenAI
from .server import FakeUpstream

CANARY_KEY = "sk-conformance-canary-7f3a9c2e51b04d68"
_MESSAGES = [{"role": "user", "content": "hello"}]
_GRAVITY_PATH = "/api/openai/v1/chat/completions"
_REPLY = "one two three four five six"


@dataclass(frozen=True)
class CheckResult:
    """One property's outcome: its name, whether it held, and why not (or what was seen)."""

    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class _Target:
    make_fake: Callable[[], FakeUpstream]
    url_suffix: str
    model: str


#: Wire formats the battery can fake, by the first-party provider that speaks them.
WIRE_FORMATS = ("openai", "gravityengine", "anthropic", "ollama")

_TARGETS: dict[str, _Target] = {
    "openai": _Target(lambda: FakeOpenAI(models=None, reply=_REPLY), "/v1", "gpt-4o-mini"),
    "gravityengine": _Target(
        lambda: FakeOpenAI(path=_GRAVITY_PATH, models=None, reply=_REPLY), "", "gpt-3.5-turbo-16k"
    ),
    "anthropic": _Target(lambda: FakeAnthropic(models=None, reply=_REPLY), "", "claude-haiku-4-5"),
    "ollama": _Target(
        lambda: FakeOllama(models=("llama3.2:latest",), reply=_REPLY), "", "llama3.2"
    ),
}
_ERROR_KINDS: list[tuple[int, type[ProviderError], bool]] = [
    (429, RateLimited, True),
    (500, ServerError, True),
    (503, Overloaded, True),
    (401, AuthenticationFailed, False),
    (404, NotFound, False),
    (400, BadRequest, False),
]


def run_conformance(
    name: str, *, wire_format: str | None = None, model: str | None = None
) -> list[CheckResult]:
    """Run every check against provider ``name``; one result per property, in a fixed order.

    ``wire_format`` (one of :data:`WIRE_FORMATS`, default ``name``) picks the fake upstream;
    ``model`` (default: the format's usual model) must be one the provider lists. The provider
    is pointed at the fake with ``HYPOTEZ_<NAME>_BASE_URL`` and ``HYPOTEZ_<NAME>_API_KEY``.
    """
    target = _TARGETS[wire_format or name]
    chosen = model or target.model
    checks: list[Callable[[_Run], str]] = [
        _metadata,
        _whole_answer,
        _streams_before_last,
        _errors_typed,
        _deadline_holds,
        _key_never_leaks,
        _input_checked_before_io,
        _connection_released,
    ]
    results = []
    for check in checks:
        label = check.__name__.lstrip("_").replace("_", " ")
        with _run(name, target, chosen) as run:
            try:
                seen = check(run)
            except _Failed as failure:
                results.append(CheckResult(label, False, str(failure)))
            except Exception as error:  # noqa: BLE001 - a plugin may raise anything
                results.append(CheckResult(label, False, f"raised {_describe(error)}"))
            else:
                results.append(CheckResult(label, True, seen))
    return results


class _Failed(Exception):
    pass


@dataclass
class _Run:
    name: str
    fake: FakeUpstream
    registry: Registry
    model: str


@contextmanager
def _run(name: str, target: _Target, model: str) -> Iterator[_Run]:
    with target.make_fake() as fake:
        prefix = f"HYPOTEZ_{name.upper().replace('-', '_')}"
        environ = {
            f"{prefix}_BASE_URL": fake.url + target.url_suffix,
            f"{prefix}_API_KEY": CANARY_KEY,
        }
        registry = Registry(settings=Settings(), environ=environ)
        try:
            yield _Run(name, fake, registry, model)
        finally:
            registry.close()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:200]}"


def _metadata(run: _Run) -> str:
    provider = run.registry.provider(run.name)
    info = type(provider.info).model_validate(provider.info.model_dump())
    if info.name != run.name:
        raise _Failed(f"info.name is {info.name!r}, not {run.name!r}")
    if not info.params:
        raise _Failed("params were not derived from the create_completion hook")
    if run.model not in provider.models:
        raise _Failed(f"model {run.model!r} not among {provider.models}")
    return f"{len(provider.models)} models, params {sorted(info.params)}"


def _whole_answer(run: _Run) -> str:
    completion = run.registry.provider(run.name).complete(run.model, _MESSAGES)
    if completion.text != _REPLY:
        raise _Failed(f"answer {completion.text!r}, expected {_REPLY!r}")
    return "whole answer received"


def _streams_before_last(run: _Run) -> str:
    run.fake.hold_before_last = threading.Event()
    try:
        chunks = iter(run.registry.provider(run.name).stream(run.model, _MESSAGES))
        first = next(chunks, None)
        if first is None:
            raise _Failed("the stream yielded nothing")
        if run.fake.last_chunk_sent.is_set():
            raise _Failed("the first piece came only after the last was sent (buffered)")
        run.fake.hold_before_last.set()
        text = first.text + "".join(chunk.text for chunk in chunks)
    finally:
        run.fake.hold_before_last.set()
    if text != _REPLY:
        raise _Failed(f"streamed {text!r}, expected {_REPLY!r}")
    return "first piece arrived before the last was sent"


def _errors_typed(run: _Run) -> str:
    provider = run.registry.provider(run.name)
    wrong = []
    for status, kind, retryable in _ERROR_KINDS:
        headers = {"Retry-After": "7"} if status == 429 else {}
        run.fake.faults.append(Fault(status=status, headers=headers))
        try:
            provider.complete(run.model, _MESSAGES)
        except kind as error:
            if error.retryable != retryable:
                wrong.append(f"{status}: retryable={error.retryable}")
            elif status == 429 and getattr(error, "retry_after", None) != 7:
                wrong.append(f"429: retry_after={getattr(error, 'retry_after', None)}, expected 7")
        except Exception as error:  # noqa: BLE001 - a plugin may raise anything
            wrong.append(f"{status}: {type(error).__name__}, expected {kind.__name__}")
        else:
            wrong.append(f"{status}: no error raised")
    if wrong:
        raise _Failed("; ".join(wrong))
    return "429, 500, 503, 401, 404, 400 typed, Retry-After parsed"


def _deadline_holds(run: _Run) -> str:
    run.registry.provider(run.name)
    run.fake.fail_every_request = Fault(trickle=0.05)
    started = time.monotonic()
    try:
        for _ in Router(run.registry).stream(
            run.model, _MESSAGES, provider=run.name, timeout=0.3, retry=RetryPolicy(attempts=1)
        ):
            pass
    except HypotezError:
        pass
    elapsed = time.monotonic() - started
    if elapsed > 0.55:
        raise _Failed(f"a 0.3 s deadline ended after {elapsed:.2f} s")
    return f"a 0.3 s deadline ended after {elapsed:.2f} s"


def _key_never_leaks(run: _Run) -> str:
    provider = run.registry.provider(run.name)
    records: list[logging.LogRecord] = []
    handler = _Collect(records)
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    seen = [repr(provider), repr(provider.settings), str(provider.settings)]
    try:
        for status in (401, 500):
            run.fake.faults.append(Fault(status=status, body=f"bad key {CANARY_KEY}"))
            try:
                provider.complete(run.model, _MESSAGES)
            except Exception as error:  # noqa: BLE001 - a plugin may raise anything
                seen += [str(error), repr(error), repr(error.args)]
                if isinstance(error, HypotezError):
                    seen.append(repr(error.info()) if hasattr(error, "info") else "")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    seen += [record.getMessage() for record in records]
    leaks = [text for text in seen if CANARY_KEY in text]
    if leaks:
        example = leaks[0].replace(CANARY_KEY, "<planted key>")[:120]
        raise _Failed(f"the key appeared in {len(leaks)} place(s), e.g. {example!r}")
    return f"no key in {len(seen)} errors, reprs and log records"


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _input_checked_before_io(run: _Run) -> str:
    provider = run.registry.provider(run.name)
    try:
        provider.complete(run.model, [{"role": "nobody", "content": 3}])
    except InvalidInput:
        pass
    else:
        raise _Failed("bad messages were accepted")
    if run.fake.requests:
        raise _Failed(f"{len(run.fake.requests)} request(s) reached the upstream")
    return "bad messages raised InvalidInput with no request sent"


def _connection_released(run: _Run) -> str:
    provider = run.registry.provider(run.name)
    run.fake.hold_before_last = threading.Event()
    chunks = provider.stream(run.model, _MESSAGES)
    first = next(iter(chunks), None)
    if first is None:
        raise _Failed("the stream yielded nothing")
    close = getattr(chunks, "close", None)
    if close is not None:
        close()
    run.fake.hold_before_last.set()
    run.fake.hold_before_last = None
    deadline = time.monotonic() + 2
    while run.fake.open_connections() and time.monotonic() < deadline:
        if provider.complete(run.model, _MESSAGES).text == _REPLY:
            return "after an early close the next call reused the pool"
        time.sleep(0.01)
    if run.fake.open_connections():
        raise _Failed("the connection stayed open after the stream was closed")
    return "the connection was closed with the stream"
