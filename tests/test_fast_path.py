"""The streaming fast paths give what the plain paths give: framing, events, JSON, chunks."""

from __future__ import annotations

import itertools
import json

import pytest
import urllib3.exceptions
from hypothesis import given, settings
from hypothesis import strategies as st

from hypotez_providers._body import ChunkedFraming
from hypotez_providers._json import dumps, loads
from hypotez_providers.limits import LimitExceeded
from hypotez_providers.results import Chunk, Usage
from hypotez_providers.sse import SSEDecoder, SSEEvent


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


@st.composite
def _chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes, list[int]]:
    parts = draw(st.lists(st.binary(min_size=1, max_size=80), max_size=8))
    body = b"".join(
        b"%x%s\r\n%s\r\n" % (len(part), draw(st.sampled_from([b"", b";name=value", b" "])), part)
        for part in parts
    )
    body += b"0\r\n" + draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"])) + b"\r\n"
    return body, b"".join(parts), draw(st.lists(st.integers(0, len(body)), max_size=12))


@settings(max_examples=200, deadline=None)
@given(case=_chunked_bodies())
def test_chunked_framing_gives_the_payload_however_the_body_is_cut(
    case: tuple[bytes, bytes, list[int]],
) -> None:
    body, payload, cuts = case
    framing = ChunkedFraming()
    out = b"".join(framing.feed(piece) for piece in _split(body, cuts))
    assert out == payload
    assert framing.done


@pytest.mark.parametrize("line", [b"zz\r\n", b"-5\r\n", b"\r\n", b"1" * 5000])
def test_chunked_framing_refuses_a_bad_size_line(line: bytes) -> None:
    with pytest.raises(urllib3.exceptions.ProtocolError):
        ChunkedFraming().feed(line + b"\r\n")


_EVENT_LINES = st.sampled_from(
    [
        b"data: {}",
        b'data: {"a": 1}',
        b"data: two\ndata: lines",
        b"data:no-space",
        b": a comment",
        b"event: named\ndata: x",
        b"id: 7\ndata: y",
        b"retry: 100\ndata: z",
        b"data: \xc3\xa9t\xc3\xa9",
        b"data: \xff broken utf-8",
        b"",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_EVENT_LINES, max_size=12),
    tail=st.sampled_from([b"", b"data: unfinished", b"data: held\n"]),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_sse_bulk_path_decodes_as_byte_by_byte_reading_does(
    events: list[bytes], tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(event + b"\n\n" for event in events) + tail
    bulk, single = SSEDecoder(), SSEDecoder()
    pieces = _split(stream, [cut for cut in cuts if cut <= len(stream)])
    from_bulk = [event for piece in pieces for event in bulk.feed(piece)]
    from_single = [event for at in range(len(stream)) for event in single.feed(stream[at : at + 1])]
    assert from_bulk == from_single
    assert bulk.pending == single.pending


def test_sse_bulk_path_refuses_a_line_over_max_line_across_pieces() -> None:
    decoder = SSEDecoder(max_line=100)
    assert decoder.feed(b"data: a\n\ndata: " + b"x" * 50) == [SSEEvent(data="a")]
    with pytest.raises(LimitExceeded):
        decoder.feed(b"x" * 100 + b"\n\n")


@pytest.mark.parametrize(
    "text",
    [
        '{"choices": [{"delta": {"content": "tok "}}]}',
        "123456789012345678901234567890",
        "NaN",
        "-Infinity",
        '"\\ud800"',
        "1e400",
        '{"a": 1, "a": 2}',
        '"\\u00e9"',
    ],
)
def test_loads_gives_what_json_loads_gives(text: str) -> None:
    expected = json.loads(text)
    got = loads(text)
    assert repr(got) == repr(expected)
    assert type(got) is type(expected)
    assert repr(loads(text.encode())) == repr(expected)


@pytest.mark.parametrize("text", ["", "{", "[1,]", "nul", '{"a":1}x', "\ufeff{}"])
def test_loads_refuses_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ValueError):
        loads(text)


def test_dumps_encodes_a_request_body_that_json_reads_back_the_same() -> None:
    payload = {
        "model": "m",
        "messages": [{"role": "user", "content": 'héllo \u2603 "quoted" \n'}],
        "temperature": 0.5,
        "seed": 2**70,
        "tools": ({"type": "function"},),
        "stream": True,
    }
    body = dumps(payload)
    assert body is not None
    assert json.loads(body) == json.loads(json.dumps(payload))


def test_dumps_leaves_what_it_cannot_encode_to_the_standard_library() -> None:
    assert dumps({(1, 2): "tuple key"}) is None
    assert dumps("\ud800") is None


@pytest.mark.parametrize(
    "fields",
    [
        {"text": "tok "},
        {"text": "", "finish_reason": "stop"},
        {"text": "a", "finish_reason": None, "usage": Usage(prompt_tokens=1), "model": "m"},
        {"text": "é", "model": "gpt"},
    ],
)
def test_trusted_chunk_equals_the_validated_one(fields: dict[str, object]) -> None:
    full = {"text": "", "finish_reason": None, "usage": None, "model": None, **fields}
    trusted = Chunk.trusted(**full)  # type: ignore[arg-type]
    validated = Chunk(**full)
    assert trusted == validated
    assert hash(trusted) == hash(validated)
    assert trusted.model_dump() == validated.model_dump()
    assert trusted.model_fields_set == validated.model_fields_set
    assert trusted.model_copy(update={"text": "x"}) == validated.model_copy(update={"text": "x"})
    with pytest.raises(ValueError):
        trusted.text = "changed"  # type: ignore[misc]
