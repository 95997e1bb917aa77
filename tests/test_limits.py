"""Bounded memory over real HTTP: long lines, endless bodies, compression bombs, content codings.

The fakes in ``hypotez_providers.testing`` cannot send these bodies, so a tiny server here sends
exact bytes. Memory is measured with tracemalloc (the peak of Python's allocations during the
call, the server thread's included).
"""

from __future__ import annotations

import contextlib
import itertools
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hypotez_providers import (
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_LINE,
    AllProvidersFailed,
    HttpTransport,
    MalformedResponse,
    ProviderInfo,
    ProviderTimeout,
    RateLimited,
    Registry,
    Router,
    SSEEvent,
    hookimpl,
)
from hypotez_providers._deadline import Watch
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI, Fault

MB = 1 << 20
SECRET = "sk-test-secret-key-0123456789"
PAYLOAD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANSWER = b'{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}'
EVENTS = b'data: {"n": 1}\n\ndata: {"n": 2}\n\ndata: [DONE]\n\n'
DECODED_EVENTS = [SSEEvent('{"n": 1}'), SSEEvent('{"n": 2}'), SSEEvent("[DONE]")]
WBITS = {"gzip": 31, "deflate": 15, "raw deflate": -15}


class ExactUpstream:
    """Answers every request with the status, headers and body pieces ``answer()`` gives.

    ``chunked`` sends each piece as one HTTP chunk; otherwise the pieces are joined and sent
    with a Content-Length (``length`` overrides it, for a body that never ends). Writing stops
    when the client goes away. ``received`` records the request headers.
    """

    def __init__(self, answer: Callable[[], tuple[int, dict[str, str], Iterable[bytes]]]) -> None:
        self.answer = answer
        self.chunked = True
        self.length: int | None = None
        self.received: list[dict[str, str]] = []
        self.gone = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: object) -> None:
                """Stay quiet."""

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.received.append({k.lower(): v for k, v in self.headers.items()})
                status, headers, pieces = upstream.answer()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                try:
                    if upstream.chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for piece in pieces:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        body = b"".join(pieces) if upstream.length is None else pieces
                        length = upstream.length if upstream.length is not None else len(body)
                        self.send_header("Content-Length", str(length))
                        self.end_headers()
                        for piece in [body] if isinstance(body, bytes) else body:
                            self.wfile.write(piece)
                    self.wfile.flush()
                except OSError:
                    upstream.gone.set()
                    self.close_connection = True

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/chat/completions"

    def __enter__(self) -> ExactUpstream:
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """The client going away mid-answer is what these tests do."""


def answer(body: Iterable[bytes], status: int = 200, **headers: str):
    def make() -> tuple[int, dict[str, str], Iterable[bytes]]:
        return status, {"Content-Type": "application/json", **headers}, body

    return make


def sse(body: Iterable[bytes], **headers: str):
    return answer(body, **{"Content-Type": "text/event-stream", **headers})


def pieces_of(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[at : at + size] for at in range(0, len(data), size)]


def repeated(piece: bytes, total: int) -> Iterator[bytes]:
    """``total`` bytes of ``piece`` repeated, generated as sent (never held whole)."""
    whole, rest = divmod(total, len(piece))
    yield from itertools.repeat(piece, whole)
    if rest:
        yield piece[:rest]


def compressed(data: bytes, kind: str) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, WBITS[kind])
    return packer.compress(data) + packer.flush()


def bomb(kind: str, mib: int = 512) -> bytes:
    """``mib`` MiB of zeros, compressed as ``kind`` into about ``mib`` KiB, built in a blink.

    After a full flush a compressor forgets its history, so each MiB of zeros compresses to
    the same bytes: one segment is repeated, then the end block and trailer are written by hand.
    """
    block = bytes(MB)
    packer = zlib.compressobj(9, zlib.DEFLATED, WBITS[kind])
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    segment = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    header = first[: len(first) - len(segment)]
    assert first[len(header) :] == segment
    trailer = b""
    if kind == "gzip":
        crc = 0
        for _ in range(mib):
            crc = zlib.crc32(block, crc)
        trailer = struct.pack("<II", crc, (mib * MB) & 0xFFFFFFFF)
    elif kind == "deflate":
        adler = 1
        for _ in range(mib):
            adler = zlib.adler32(block, adler)
        trailer = struct.pack(">I", adler)
    return header + segment * mib + b"\x03\x00" + trailer


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    made = bomb("gzip")
    assert len(made) < 0.6 * MB
    return made


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Yields a list that holds, afterwards, the peak bytes allocated inside the block."""
    result: list[int] = []
    tracemalloc.start()
    try:
        yield result
    finally:
        result.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


@pytest.fixture
def transport():
    made = HttpTransport("acme", connect_timeout=2, read_timeout=5, secrets=(SECRET,))
    yield made
    made.close()


def stream_of(transport: HttpTransport, url: str) -> list[SSEEvent]:
    return list(transport.post_sse(url, {"stream": True}))


# --- stream lines -----------------------------------------------------------------------------


def test_one_20_mb_sse_line_is_a_malformed_response_naming_the_provider_and_the_limit(transport):
    line = itertools.chain([b"data: "], repeated(b"x" * 4096, 20 * MB), [b"\n\n"])
    with ExactUpstream(sse(line)) as upstream, peak_memory() as peak:
        started = time.monotonic()
        with pytest.raises(MalformedResponse) as caught:
            stream_of(transport, upstream.url)
        elapsed = time.monotonic() - started
    message = str(caught.value)
    assert caught.value.provider == "acme"
    assert "an SSE line is over the 4,194,304-byte limit (max_line)" in message
    assert elapsed < 5
    assert peak[0] < 20 * MB, f"peak {peak[0] / MB:.1f} MB"


def test_a_20_mb_sse_line_under_a_raised_limit_is_read_in_linear_time():
    # Copying the buffer per piece, this took 33 s (4 KiB chunks); linear, a fraction of one.
    transport = HttpTransport("acme", read_timeout=5, max_line=32 * MB)
    line = itertools.chain([b"data: "], repeated(b"x" * 4096, 20 * MB), [b"\n\n"])
    with ExactUpstream(sse(line)) as upstream:
        started = time.monotonic()
        (event,) = stream_of(transport, upstream.url)
        elapsed = time.monotonic() - started
    transport.close()
    assert len(event.data) == 20 * MB
    assert elapsed < 5


def test_an_sse_event_whose_data_lines_add_up_past_max_line_is_a_malformed_response():
    transport = HttpTransport("acme", read_timeout=5, max_line=64 * 1024)
    lines = repeated(b"data: " + b"y" * 1000 + b"\n", 10 * MB)  # never a blank line
    with (
        ExactUpstream(sse(lines)) as upstream,
        peak_memory() as peak,
        pytest.raises(MalformedResponse, match=r"an SSE event's data is over the 65,536"),
    ):
        stream_of(transport, upstream.url)
    transport.close()
    assert peak[0] < 5 * MB, f"peak {peak[0] / MB:.1f} MB"


def test_one_20_mb_ndjson_line_is_a_malformed_response(transport):
    line = itertools.chain([b'{"a": "'], repeated(b"x" * 4096, 20 * MB), [b'"}\n'])
    with (
        ExactUpstream(answer(line)) as upstream,
        peak_memory() as peak,
        pytest.raises(MalformedResponse, match=r"an NDJSON line is over the 4,194,304-byte"),
    ):
        list(transport.post_ndjson(upstream.url, {}))
    assert peak[0] < 20 * MB, f"peak {peak[0] / MB:.1f} MB"


def test_max_line_is_set_on_the_transport_and_lines_up_to_it_are_read():
    event = b"data: " + b"z" * 994 + b"\n\n"  # a line of exactly 1,000 bytes
    with ExactUpstream(sse([event])) as upstream:
        fits = HttpTransport("acme", max_line=1000)
        assert stream_of(fits, upstream.url) == [SSEEvent("z" * 994)]
        short = HttpTransport("acme", max_line=999)
        with pytest.raises(MalformedResponse, match=r"over the 999-byte limit \(max_line\)"):
            stream_of(short, upstream.url)
    assert (fits.max_line, HttpTransport("x").max_line) == (1000, DEFAULT_MAX_LINE)


# --- whole answers ----------------------------------------------------------------------------


def test_an_endless_fast_body_ends_at_max_body_promptly_with_memory_bounded(transport):
    endless = itertools.repeat(b" " * 65536)
    with ExactUpstream(answer(endless)) as upstream, peak_memory() as peak:
        started = time.monotonic()
        with pytest.raises(MalformedResponse) as caught:
            transport.post_json(upstream.url, {})
        elapsed = time.monotonic() - started
        assert upstream.gone.wait(5), "the connection was closed, so the server stopped"
    assert "the answer is over the 33,554,432-byte limit (max_body)" in str(caught.value)
    assert elapsed < 10
    assert peak[0] < 100 * MB, f"peak {peak[0] / MB:.1f} MB"


def test_an_endless_trickle_from_the_fake_ends_at_a_small_max_body():
    transport = HttpTransport("acme", read_timeout=5, max_body=200)
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(endless=True, stall_interval=0.001))
        with pytest.raises(MalformedResponse, match=r"over the 200-byte limit \(max_body\)"):
            transport.post_json(fake.url + "/v1/chat/completions", PAYLOAD)
    transport.close()


@pytest.mark.parametrize("chunked", [True, False])
def test_a_whole_answer_of_exactly_max_body_bytes_is_read_and_one_more_is_not(chunked):
    with ExactUpstream(answer(pieces_of(ANSWER, 7))) as upstream:
        upstream.chunked = chunked
        fits = HttpTransport("acme", max_body=len(ANSWER))
        assert fits.post_json(upstream.url, {})["choices"][0]["message"]["content"] == "hi"
        short = HttpTransport("acme", max_body=len(ANSWER) - 1)
        with pytest.raises(MalformedResponse, match="max_body"):
            short.post_json(upstream.url, {})
    assert HttpTransport("x").max_body == DEFAULT_MAX_BODY


# --- content codings --------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_gzip_bomb_is_a_malformed_response_with_memory_bounded(transport, gzip_bomb, chunked):
    with ExactUpstream(answer(pieces_of(gzip_bomb), **{"Content-Encoding": "gzip"})) as upstream:
        upstream.chunked = chunked
        with peak_memory() as peak:
            started = time.monotonic()
            with pytest.raises(MalformedResponse) as caught:
                transport.post_json(upstream.url, {})
            elapsed = time.monotonic() - started
    assert "the answer is over the 33,554,432-byte limit (max_body)" in str(caught.value)
    assert elapsed < 10
    # 0.5 MB that would expand to 512 MB: read up to the 32 MiB limit, never further.
    assert peak[0] < 100 * MB, f"peak {peak[0] / MB:.1f} MB"


@pytest.mark.parametrize("kind", ["deflate", "raw deflate"])
def test_a_deflate_bomb_is_a_malformed_response_with_memory_bounded(transport, kind):
    made = bomb(kind, 64)
    with (
        ExactUpstream(answer(pieces_of(made), **{"Content-Encoding": "deflate"})) as upstream,
        peak_memory() as peak,
        pytest.raises(MalformedResponse, match="max_body"),
    ):
        transport.post_json(upstream.url, {})
    assert peak[0] < 100 * MB, f"peak {peak[0] / MB:.1f} MB"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_gzip_bomb_in_a_stream_ends_at_max_line_with_memory_bounded(
    transport, gzip_bomb, chunked
):
    headers = {"Content-Encoding": "gzip"}
    with ExactUpstream(sse(pieces_of(gzip_bomb), **headers)) as upstream:
        upstream.chunked = chunked
        with peak_memory() as peak, pytest.raises(MalformedResponse, match="max_line"):
            stream_of(transport, upstream.url)
    assert peak[0] < 20 * MB, f"peak {peak[0] / MB:.1f} MB"


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw deflate"])
def test_compressed_streams_are_decoded_whatever_the_framing(transport, kind, chunked):
    encoding = "deflate" if "deflate" in kind else "gzip"
    body = pieces_of(compressed(EVENTS, kind), 5)
    with ExactUpstream(sse(body, **{"Content-Encoding": encoding})) as upstream:
        upstream.chunked = chunked
        assert stream_of(transport, upstream.url) == DECODED_EVENTS


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("kind", ["gzip", "deflate", "raw deflate"])
def test_compressed_whole_answers_are_decoded_whatever_the_framing(transport, kind, chunked):
    encoding = "deflate" if "deflate" in kind else "gzip"
    body = pieces_of(compressed(ANSWER, kind), 5)
    with ExactUpstream(answer(body, **{"Content-Encoding": encoding})) as upstream:
        upstream.chunked = chunked
        assert transport.post_json(upstream.url, {})["choices"][0]["message"]["content"] == "hi"


def test_gzip_members_one_after_another_are_one_body(transport):
    body = compressed(ANSWER[:20], "gzip") + compressed(ANSWER[20:], "gzip")
    with ExactUpstream(answer([body], **{"Content-Encoding": "gzip"})) as upstream:
        assert transport.post_json(upstream.url, {})["choices"][0]["message"]["content"] == "hi"


def test_only_the_codings_read_with_bounded_memory_are_asked_for(transport):
    with ExactUpstream(answer([ANSWER])) as upstream:
        transport.post_json(upstream.url, {})
    assert upstream.received[0]["accept-encoding"] == "gzip, deflate"


@pytest.mark.parametrize("streamed", [False, True])
def test_a_coding_that_was_not_asked_for_is_a_malformed_response_naming_it(transport, streamed):
    with (
        ExactUpstream(sse([b"\x0b\x02\x80data"], **{"Content-Encoding": "br"})) as upstream,
        pytest.raises(MalformedResponse, match=r"Content-Encoding 'br' is not gzip or deflate"),
    ):
        if streamed:
            stream_of(transport, upstream.url)
        else:
            transport.post_json(upstream.url, {})


@pytest.mark.parametrize("streamed", [False, True])
def test_a_corrupt_gzip_body_is_a_malformed_response(transport, streamed):
    corrupt = compressed(EVENTS, "gzip")[:10] + b"\xff" * 40  # a reserved block type
    with (
        ExactUpstream(sse([corrupt], **{"Content-Encoding": "gzip"})) as upstream,
        pytest.raises(MalformedResponse, match="the gzip body does not decode"),
    ):
        if streamed:
            stream_of(transport, upstream.url)
        else:
            transport.post_json(upstream.url, {})


def test_a_compressed_error_body_is_decoded_for_its_message(transport):
    error = compressed(b'{"error": {"message": "Slow down, please"}}', "gzip")
    with (
        ExactUpstream(answer([error], 429, **{"Content-Encoding": "gzip"})) as upstream,
        pytest.raises(RateLimited, match="Slow down, please"),
    ):
        transport.post_json(upstream.url, {})


@pytest.mark.parametrize("streamed", [False, True])
def test_an_error_body_bomb_is_cut_at_64_kib_with_memory_bounded(transport, gzip_bomb, streamed):
    with (
        ExactUpstream(answer(pieces_of(gzip_bomb), 500, **{"Content-Encoding": "gzip"})) as up,
        peak_memory() as peak,
        pytest.raises(Exception) as caught,
    ):
        if streamed:
            stream_of(transport, up.url)
        else:
            transport.post_json(up.url, {})
    assert caught.value.status == 500 and caught.value.provider == "acme"
    assert peak[0] < 5 * MB, f"peak {peak[0] / MB:.1f} MB"


def test_a_trickled_gzip_stream_is_still_cut_by_the_deadline_watch():
    def slowly() -> Iterator[bytes]:
        for byte in compressed(EVENTS * 100, "gzip"):
            time.sleep(0.02)
            yield bytes([byte])

    transport = HttpTransport("acme", read_timeout=5)
    with ExactUpstream(sse(slowly(), **{"Content-Encoding": "gzip"})) as upstream:
        watch = Watch(time.monotonic() + 0.3, "timeout=0.3s")
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match="deadline"):
            stream_of(transport.for_attempt(watch), upstream.url)
        elapsed = time.monotonic() - started
    transport.close()
    assert elapsed < 0.3 + 0.5


class Endless:
    """A plugin that never stops yielding: a whole answer from it must not take the host down."""

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="endless",
            url="http://127.0.0.1",
            models=["m"],
            supports_stream=True,
            needs_auth=False,
        )

    @hookimpl
    def create_completion(self, model, messages, stream):
        piece = "x" * 65536
        while True:
            yield piece


def test_a_plugin_that_never_stops_yielding_is_bounded_on_a_whole_answer():
    registry = Registry(
        settings=parse_settings("[providers.endless]\nmax_body = 4194304\n"),
        load_entry_points=False,
        environ={},
    )
    registry.register(Endless())
    tracemalloc.start()
    try:
        with pytest.raises(AllProvidersFailed) as caught:
            Router(registry).complete("m", [{"role": "user", "content": "hi"}])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "max_body" in str(caught.value)
    assert peak < 64 * 1024 * 1024


def test_the_limits_are_settable_per_provider_in_the_settings():
    with FakeOpenAI(path="/api/openai/v1/chat/completions", models=None, reply="y" * 8192) as fake:
        registry = Registry(
            settings=parse_settings(
                "[providers.gravityengine]\nmax_body = 2048\nmax_line = 4096\n"
            ),
            environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url},
        )
        transport = registry.provider("gravityengine").context.transport
        assert (transport.max_body, transport.max_line) == (2048, 4096)
        with pytest.raises(AllProvidersFailed) as caught:
            Router(registry).complete("gpt-3.5-turbo-16k", [{"role": "user", "content": "hi"}])
        registry.close()
    assert "max_body" in str(caught.value)
