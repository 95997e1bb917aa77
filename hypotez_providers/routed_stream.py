"""A routed stream: chunks as they arrive, failover before the first one, rescue after it.

Until the first chunk reaches the caller, a failing provider is replaced unseen. After that,
by default, a failure raises :class:`StreamInterrupted` with the text received. With
``rescue="restart"`` the answer starts again at the next provider, behind a text-less chunk
``Chunk(rescue="restart")`` that tells the caller to discard what it has; with
``rescue="continue"`` a provider that accepts an assistant prefill is asked to continue the
text received, behind ``Chunk(rescue="continue")`` marking the splice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

from ._call import Rescue, RoutedCall
from ._deadline import Watch
from ._hedge import PLAIN, Answering
from .context import ProviderContext
from .errors import AllProvidersFailed, ProviderError, Routing, StreamInterrupted
from .results import Attempt, Chunk
from .selection import Candidate

_FIRST = "no first chunk"
_IDLE = "no progress mid-stream (keep-alives and empty deltas do not count)"


@dataclass(slots=True)
class _Opened:
    """A stream that produced its first chunk (``None``: an empty answer), ready to relay."""

    first: Chunk | None
    rest: Iterator[Chunk]
    watch: Watch
    context: ProviderContext
    #: Called once the stream is over (the request leaves the in-flight count), if tracked.
    done: Callable[[], None] | None = None


def carries(chunk: Chunk) -> bool:
    """Whether a chunk is progress (text, a finish reason, usage, tool calls), not empty."""
    return bool(
        chunk.text
        or chunk.finish_reason
        or chunk.usage
        or chunk.rescue
        or chunk.tool_call_deltas
        or chunk.tool_calls
    )


class RoutedStream(Iterator[Chunk]):
    """The chunks of a routed stream, with ``provider`` (who answers) and live ``attempts``."""

    def __init__(
        self, call: RoutedCall, rescue: Rescue | None, answering: Answering = PLAIN
    ) -> None:
        self._call = call
        self._rescue = rescue
        self._answering = answering
        self._chunks = self._generate()
        #: The provider answering, once its first chunk has arrived (the rescuer's after one).
        self.provider: str | None = None

    @property
    def attempts(self) -> list[Attempt]:
        """Every attempt so far, skipped providers included."""
        return list(self._call.attempts)

    def __next__(self) -> Chunk:
        return next(self._chunks)

    def __iter__(self) -> Iterator[Chunk]:
        # The generator itself: a for loop then skips __next__'s frame on every chunk.
        return self._chunks

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._chunks.close()

    def _generate(self) -> Generator[Chunk, None, None]:
        call = self._call
        found = self._answering.first_answer(
            call, self._opener(call.messages), _discard, until_done=True
        )
        if found is None:
            raise AllProvidersFailed(call.model, call.attempts)
        candidate, opened = found
        received: list[str] = []
        unsaid = ""
        while True:
            self.provider = candidate.provider.name
            try:
                yield from self._relay(candidate, opened, received, unsaid)
                return
            except ProviderError as error:
                text = "".join(received)
                rescued = self._rescued(candidate, text, error) if self._rescue else None
                if rescued is None:
                    raise StreamInterrupted(candidate.provider.name, text, error) from error
            candidate, opened, unsaid = rescued
            if self._rescue == "restart":
                received.clear()
            try:
                yield Chunk(rescue=self._rescue, provider=candidate.provider.name)
            except BaseException:  # closed at the marker: the rescuer's stream is open
                _discard(opened)
                raise

    def _relay(
        self, candidate: Candidate, opened: _Opened, received: list[str], unsaid: str
    ) -> Iterator[Chunk]:
        """Yield the opened stream's chunks, holding it to the idle and deadline clocks.

        ``unsaid``: white space the continued text already ended with, dropped from the start
        of the continuation (a prefill is sent without trailing white space).
        """
        call, watch = self._call, opened.watch
        rest = call.limits.metered(candidate, opened.first, opened.rest)
        name = candidate.provider.name
        idle = call.clocks.idle_timeout or candidate.provider.settings.timeout
        started = call.clock()
        # The attempt was recorded at its first chunk; events skipped later are added at the end.
        answered = _answered(call.attempts, name)
        try:
            first = opened.first
            if first is not None:
                if unsaid:
                    first, unsaid = _drop_unsaid(first, unsaid)
                if carries(first):
                    received.append(first.text)
                    yield first
                keep = received.append
                monotonic = time.monotonic
                watch.begin_wait(idle, _IDLE)
                for chunk in rest:
                    # The hot path, once per chunk: the wait ends, the caller's time is its own.
                    watch.waiting = False
                    if watch.expired is not None:
                        raise watch.error(name)
                    if unsaid:
                        chunk, unsaid = _drop_unsaid(chunk, unsaid)
                    if chunk.text or chunk.finish_reason or chunk.usage or carries(chunk):
                        keep(chunk.text)
                        yield chunk
                    watch.since = monotonic()
                    watch.waiting = True
                watch.waiting = False
                if watch.expired is not None:
                    raise watch.error(name)
            skipped = opened.context.stats.malformed_events
            if skipped:
                attempt = call.attempts[answered]
                call.attempts[answered] = attempt.model_copy(update={"malformed_events": skipped})
        except ProviderError as error:
            failure = watch.error(name) if watch.expired is not None else error
            call.failed_mid_stream(
                candidate, failure, call.clock() - started, opened.context.stats.malformed_events
            )
            raise failure from None
        finally:
            watch.close()
            close = getattr(rest, "close", None)
            if close is not None:
                close()
            if opened.done is not None:
                opened.done()

    def _rescued(
        self, failed: Candidate, text: str, error: ProviderError
    ) -> tuple[Candidate, _Opened, str] | None:
        """Open the rescuing stream after ``failed`` broke off, or ``None`` when none answers."""
        call, mode = self._call, self._rescue
        order = list(call.candidates)
        after = order[order.index(failed) + 1 :] if failed in order else order
        if call.decision is Routing.RETRY:
            after = [failed, *after]  # the retry policy allows the same provider again
        messages = call.messages
        unsaid = ""
        if mode == "continue":
            after = [c for c in after if c.provider.info.capabilities.prefill]
            prefill = text.rstrip()
            unsaid = text[len(prefill) :]
            if prefill:
                messages = [*messages, {"role": "assistant", "content": prefill}]
        call.rescuing = mode
        try:
            found = self._answering.first_answer(
                call, self._opener(messages), _discard, after, until_done=True, hedged=False
            )
        except ProviderError:
            return None  # the rescuer refused the request itself: report the first break
        finally:
            call.rescuing = None
        if found is None:
            return None
        return found[0], found[1], unsaid

    def _opener(
        self, messages: list[dict[str, Any]]
    ) -> Callable[[Candidate, ProviderContext, Watch], _Opened]:
        call = self._call

        def open_stream(candidate: Candidate, context: ProviderContext, watch: Watch) -> _Opened:
            provider = candidate.provider
            limit = call.clocks.first_chunk_timeout or provider.settings.timeout
            watch.begin_wait(limit, _FIRST)
            chunks = provider.chunks(candidate.model, messages, True, call.options, context=context)
            try:
                for chunk in chunks:
                    if watch.expired is not None:
                        raise watch.error(provider.name)
                    if carries(chunk):
                        watch.end_wait()
                        return _Opened(chunk, chunks, watch, context)
            except ProviderError as error:
                if watch.expired is not None:
                    raise watch.error(provider.name) from error
                raise
            except BaseException:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
                raise
            return _Opened(None, chunks, watch, context)

        return open_stream


def _drop_unsaid(chunk: Chunk, unsaid: str) -> tuple[Chunk, str]:
    text = chunk.text
    if text.startswith(unsaid):
        return chunk.model_copy(update={"text": text[len(unsaid) :]}), ""
    if unsaid.startswith(text):
        return chunk.model_copy(update={"text": ""}), unsaid[len(text) :]
    return chunk, ""


def _discard(opened: _Opened) -> None:
    """Close a stream opened but never relayed (it lost a hedged race, or the caller left)."""
    opened.watch.close()
    close = getattr(opened.rest, "close", None)
    if close is not None:
        close()
    if opened.done is not None:
        opened.done()


def _answered(attempts: list[Attempt], provider: str) -> int:
    """The index of the answering attempt: the last success of ``provider``.

    A hedged race may record its cancelled leg around it, so it need not be the last.
    """
    for index in range(len(attempts) - 1, -1, -1):
        attempt = attempts[index]
        if attempt.provider == provider and attempt.outcome == "ok":
            return index
    return len(attempts) - 1
