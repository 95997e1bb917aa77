"""Tests for the incremental newline-delimited JSON decoder in ``hypotez_providers.ndjson``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hypotez_providers.ndjson import BadLine, NDJSONDecoder, iter_ndjson


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
