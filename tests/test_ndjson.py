"""Tests for the incremental newline-delimited JSON decoder in ``hypotez_providers.ndjson``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypotez_providers.limits import LimitExceeded
from hypotez_providers.ndjson import BadLine, NDJSONDecoder, iter_ndjson

MB = 1 << 20


def _decode(*pieces: bytes) -> list[Any]:
    decoder = NDJSONDecoder()
    values = [value for piece in pieces for value in decoder.feed(piece)]
    return values + decoder.close()


def _split(stream: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[start:end] for start, end in pairwise(bounds)]


def test_each_line_is_one_value() -> None:
    assert _decode(b'{"a": 1}\n[1, 2]\n"text"\n3\nnull\ntrue\n') == [
        {"a": 1},
        [1, 2],
        "text",
        3,
        None,
        True,
    ]


def test_feed_returns_only_the_lines_it_completes() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"a": 1}\n{"b"') == [{"a": 1}]
    assert decoder.feed(b": 2}") == []
    assert decoder.feed(b"\n") == [{"b": 2}]
    assert decoder.close() == []


def test_blank_and_whitespace_only_lines_are_skipped() -> None:
    assert _decode(b"\n1\n\n  \n\t\r\n2\n\n") == [1, 2]


def test_crlf_line_ends_are_accepted() -> None:
    assert _decode(b'{"a": 1}\r\n{"b": 2}\r\n') == [{"a": 1}, {"b": 2}]


def test_last_line_without_newline_is_returned_by_close() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'1\n{"last": true}') == [1]
    assert decoder.close() == [{"last": True}]


def test_close_with_nothing_buffered_returns_nothing() -> None:
    decoder = NDJSONDecoder()
    decoder.feed(b"1\n")
    assert decoder.close() == []


def test_close_skips_a_blank_unfinished_line() -> None:
    decoder = NDJSONDecoder()
    decoder.feed(b"1\n  ")
    assert decoder.close() == []


def test_close_empties_the_buffer() -> None:
    decoder = NDJSONDecoder()
    decoder.feed(b"7")
    assert decoder.close() == [7]
    assert decoder.close() == []


def test_a_line_split_byte_by_byte_decodes_whole() -> None:
    stream = b'{"key": [1, 2, {"x": null}]}\n'
    assert _decode(*(stream[index : index + 1] for index in range(len(stream)))) == [
        {"key": [1, 2, {"x": None}]}
    ]


def test_utf8_characters_split_across_pieces_decode_whole() -> None:
    stream = '{"text": "héllo 世界 🙂"}\n'.encode()
    assert _decode(*(stream[index : index + 1] for index in range(len(stream)))) == [
        {"text": "héllo 世界 🙂"}
    ]


def test_an_invalid_line_comes_out_as_a_bad_line_in_its_place() -> None:
    decoder = NDJSONDecoder()
    first, bad, last = decoder.feed(b'{"ok": 1}\nthis is not json\n2\n')
    assert (first, last) == ({"ok": 1}, 2)
    assert type(bad) is BadLine and bad.line == b"this is not json"
    assert str(bad) == "not a JSON line: b'this is not json'"


def test_an_invalid_last_line_is_a_bad_line_on_close() -> None:
    decoder = NDJSONDecoder()
    assert decoder.feed(b'{"unterminated": ') == []
    [bad] = decoder.close()
    assert type(bad) is BadLine and "unterminated" in str(bad)


def test_an_invalid_utf8_line_is_a_bad_line() -> None:
    [bad] = _decode(b'"\xff"\n')
    assert type(bad) is BadLine and bad.line == b'"\xff"'


def test_a_bad_line_shows_at_most_200_bytes() -> None:
    [bad] = _decode(b"x" * 1000)
    assert len(bad.line) == 1000 and str(bad).count("x") == 200 and "x" * 200 in repr(bad)


def test_iter_ndjson_decodes_pieces_and_the_last_line_without_newline() -> None:
    one, two, bad, three = iter_ndjson([b'1\n{"a"', b": 2}\nnope\n", b"3"])
    assert (one, two, three) == (1, {"a": 2}, 3)
    assert type(bad) is BadLine and bad.line == b"nope"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(_json_values, max_size=8),
    ascii_only=st.booleans(),
    trailing_newline=st.booleans(),
    data=st.data(),
)
def test_serialised_values_decode_back_whatever_the_split(
    values: list[Any], ascii_only: bool, trailing_newline: bool, data: st.DataObject
) -> None:
    stream = "\n".join(json.dumps(value, ensure_ascii=ascii_only) for value in values)
    if values and trailing_newline:
        stream += "\n"
    encoded = stream.encode()
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=12))
    assert _decode(*_split(encoded, cuts)) == values


def _is_bad_line(line: bytes) -> bool:
    if not line.strip():
        return False  # a blank line is skipped, not bad
    try:
        json.loads(line)
    except ValueError:
        return True
    return False


_bad_lines = st.sampled_from(
    [b'{"n": ', b"not json", b'"\xff"', b"{'single': 1}", b"[1, 2", b"\r\x00"]
) | st.binary(min_size=1, max_size=20).map(lambda raw: raw.replace(b"\n", b"")).filter(_is_bad_line)


@settings(max_examples=300, deadline=None)
@given(
    lines=st.lists(st.tuples(st.booleans(), _json_values, _bad_lines), max_size=10),
    trailing_newline=st.booleans(),
    data=st.data(),
)
def test_good_and_bad_lines_give_the_same_values_and_bad_count_whatever_the_split(
    lines: list[tuple[bool, Any, bytes]], trailing_newline: bool, data: st.DataObject
) -> None:
    encoded = b"\n".join(json.dumps(value).encode() if good else bad for good, value, bad in lines)
    if lines and trailing_newline:
        encoded += b"\n"
    cuts = data.draw(st.lists(st.integers(0, len(encoded)), max_size=12))
    decoded = _decode(*_split(encoded, cuts))
    assert [value for value in decoded if type(value) is not BadLine] == [
        value for good, value, _ in lines if good
    ]
    assert [value.line for value in decoded if type(value) is BadLine] == [
        bad for good, _, bad in lines if not good
    ]


def test_a_20_mb_line_in_4_kib_pieces_decodes_in_linear_time() -> None:
    # Copying the buffered line per piece, this took about 20 s; linear, a fraction of one.
    stream = b'"' + b"x" * (20 * MB) + b'"\n'
    decoder = NDJSONDecoder(max_line=32 * MB)
    started = time.perf_counter()
    values = [v for at in range(0, len(stream), 4096) for v in decoder.feed(stream[at : at + 4096])]
    elapsed = time.perf_counter() - started
    assert [len(value) for value in values] == [20 * MB]
    assert elapsed < 3


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_a_line_of_max_line_bytes_is_read_and_one_byte_more_raises_whatever_the_split(
    size: int,
) -> None:
    stream = b'{"n": 1}\n"' + b"a" * 98 + b'"\n'  # a second line of 100 bytes
    pieces = _split(stream, range(size, len(stream), size))
    assert list(iter_ndjson(pieces, max_line=100)) == [{"n": 1}, "a" * 98]
    with pytest.raises(
        LimitExceeded, match=r"an NDJSON line is over the 99-byte limit \(max_line\)"
    ):
        list(iter_ndjson(pieces, max_line=99))


def test_an_unfinished_line_raises_as_soon_as_it_passes_max_line() -> None:
    decoder = NDJSONDecoder(max_line=1000)
    for _ in range(10):
        decoder.feed(b"1" * 100)
    with pytest.raises(LimitExceeded):
        decoder.feed(b"1")


@settings(max_examples=200, deadline=None)
@given(
    stream=st.lists(st.sampled_from([b"1", b"22", b"[1, 2]", b"x", b"\n", b"\r\n", b" "])).map(
        b"".join
    ),
    max_line=st.integers(1, 12),
    data=st.data(),
)
def test_the_limit_is_reached_or_not_whatever_the_split(
    stream: bytes, max_line: int, data: st.DataObject
) -> None:
    def outcome(pieces: Sequence[bytes]) -> object:
        try:
            return [repr(value) for value in iter_ndjson(pieces, max_line=max_line)]
        except LimitExceeded:
            return "over"

    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12))
    expected = "over" if any(len(line) > max_line for line in stream.split(b"\n")) else None
    whole = outcome([stream])
    assert outcome(_split(stream, cuts)) == whole
    assert expected is None or whole == expected
    if whole != "over":
        assert whole == [repr(value) for value in _decode(stream)]
