"""Tests for the incremental server-sent-events decoder in ``hypotez_providers.sse``.

The rules come from the WHATWG event-stream interpretation:
https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from itertools import pairwise

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hypotez_providers.limits import DEFAULT_MAX_LINE, LimitExceeded
from hypotez_providers.sse import SSEDecoder, SSEEvent, iter_sse

MB = 1 << 20


def _decode(*pieces: bytes) -> list[SSEEvent]:
    return list(iter_sse(pieces))


def _split(stream: bytes, cuts: Sequence[int]) -> list[bytes]:
    bounds = [0, *sorted(cuts), len(stream)]
    return [stream[start:end] for start, end in pairwise(bounds)]


# --- examples, one rule each ------------------------------------------------------------------


def test_done_sentinel_arrives_as_an_ordinary_data_event() -> None:
    events = _decode(b'data: {"text": "hi"}\n\ndata: [DONE]\n\n')
    assert events == [SSEEvent(data='{"text": "hi"}'), SSEEvent(data="[DONE]")]


def test_data_lines_accumulate_joined_by_newline() -> None:
    assert _decode(b"data: one\ndata: two\ndata: three\n\n") == [SSEEvent(data="one\ntwo\nthree")]


def test_empty_data_lines_keep_their_place_in_multiline_data() -> None:
    assert _decode(b"data: a\ndata:\ndata: b\n\n") == [SSEEvent(data="a\n\nb")]


def test_event_field_sets_the_event_type() -> None:
    assert _decode(b"event: delta\ndata: x\n\n") == [SSEEvent(data="x", event="delta")]


def test_event_type_defaults_to_message_and_resets_after_dispatch() -> None:
    events = _decode(b"event: delta\ndata: 1\n\ndata: 2\n\n")
    assert [event.event for event in events] == ["delta", "message"]


def test_lf_line_ends_are_understood() -> None:
    assert _decode(b"data: a\ndata: b\n\n") == [SSEEvent(data="a\nb")]


def test_cr_only_line_ends_are_understood() -> None:
    assert _decode(b"event: e\rdata: a\rdata: b\r\rdata: c\r\r") == [
        SSEEvent(data="a\nb", event="e"),
        SSEEvent(data="c"),
    ]


def test_crlf_line_ends_are_understood() -> None:
    assert _decode(b"data: a\r\ndata: b\r\n\r\n") == [SSEEvent(data="a\nb")]


def test_mixed_line_ends_in_one_stream_are_understood() -> None:
    assert _decode(b"data: a\rdata: b\r\ndata: c\n\r\n") == [SSEEvent(data="a\nb\nc")]


def test_crlf_split_across_pieces_is_one_line_end() -> None:
    # Were the CR and the LF two line ends, the LF would be a blank line dispatching "a" alone.
    assert _decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [SSEEvent(data="a\nb")]


def test_cr_ending_a_piece_then_cr_is_two_line_ends() -> None:
    assert _decode(b"data: a\r", b"\rdata: b\r\r") == [SSEEvent(data="a"), SSEEvent(data="b")]


def test_cr_ending_a_piece_survives_an_empty_piece_before_its_lf() -> None:
    assert _decode(b"data: a\r", b"", b"\ndata: b\n\n") == [SSEEvent(data="a\nb")]


def test_utf8_characters_split_across_pieces_decode_whole() -> None:
    stream = "data: héllo, 世界 🙂\n\n".encode()
    pieces = [stream[index : index + 1] for index in range(len(stream))]
    assert _decode(*pieces) == [SSEEvent(data="héllo, 世界 🙂")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert _decode(b"data: a\xffb\n\n") == [SSEEvent(data="a\ufffdb")]


def test_leading_bom_is_stripped() -> None:
    assert _decode(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent(data="x")]


def test_leading_bom_split_across_pieces_is_stripped() -> None:
    assert _decode(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [SSEEvent(data="x")]


def test_leading_bom_is_stripped_only_once() -> None:
    # The second BOM belongs to the field name, which is then unknown and ignored.
    assert _decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n") == [SSEEvent(data="y")]


def test_bom_after_the_start_of_the_stream_is_kept() -> None:
    assert _decode("data: \ufeffx\n\n".encode()) == [SSEEvent(data="\ufeffx")]


def test_comment_lines_are_ignored() -> None:
    stream = b": keep-alive\ndata: a\n:\n: data: not this\ndata: b\n\n"
    assert _decode(stream) == [SSEEvent(data="a\nb")]


def test_comment_only_stream_dispatches_nothing() -> None:
    assert _decode(b": ping\n\n: ping\n\n") == []


def test_one_leading_space_of_a_value_is_stripped() -> None:
    assert _decode(b"data:   x\n\n") == [SSEEvent(data="  x")]


def test_value_without_a_space_after_the_colon_is_taken_whole() -> None:
    assert _decode(b"data:x\n\n") == [SSEEvent(data="x")]


def test_colons_after_the_first_belong_to_the_value() -> None:
    assert _decode(b"data: a: b:c\n\n") == [SSEEvent(data="a: b:c")]


def test_line_without_colon_is_a_field_with_empty_value() -> None:
    assert _decode(b"data\n\n") == [SSEEvent(data="")]
    assert _decode(b"data\ndata\n\n") == [SSEEvent(data="\n")]


def test_field_names_are_case_sensitive() -> None:
    assert _decode(b"Data: x\nEVENT: e\n\ndata: y\n\n") == [SSEEvent(data="y")]


def test_unknown_fields_are_ignored() -> None:
    assert _decode(b"foo: bar\ndata: x\nbaz\n\n") == [SSEEvent(data="x")]


def test_id_is_attached_and_persists_across_events() -> None:
    events = _decode(b"id: 7\ndata: a\n\ndata: b\n\nid: 8\ndata: c\n\n")
    assert [event.id for event in events] == ["7", "7", "8"]


def test_id_set_in_an_event_without_data_still_persists() -> None:
    assert _decode(b"id: 3\n\ndata: a\n\n") == [SSEEvent(data="a", id="3")]


def test_empty_id_sets_the_last_id_to_empty() -> None:
    events = _decode(b"id: 1\ndata: a\n\nid\ndata: b\n\n")
    assert [event.id for event in events] == ["1", ""]


def test_id_containing_nul_is_ignored() -> None:
    events = _decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [event.id for event in events] == ["1", "1"]


def test_retry_of_ascii_digits_sets_the_reconnection_time() -> None:
    events = _decode(b"retry: 1500\ndata: a\n\ndata: b\n\n")
    assert [event.retry for event in events] == [1500, 1500]


@pytest.mark.parametrize("value", [b"", b"15a", b"-1", b"1.5", b" 15", "\u0661\u0665".encode()])
def test_retry_that_is_not_all_ascii_digits_is_ignored(value: bytes) -> None:
    events = _decode(b"retry: 100\n\nretry: " + value + b"\ndata: a\n\n")
    assert events == [SSEEvent(data="a", retry=100)]


def test_huge_retry_value_does_not_raise() -> None:
    events = _decode(b"retry: " + b"9" * 5000 + b"\ndata: a\n\n")
    assert [event.data for event in events] == ["a"]


def test_lf_starting_a_piece_ends_the_line_begun_after_an_earlier_cr() -> None:
    assert _decode(b"data: a\rdata: b", b"\n\n") == [SSEEvent(data="a\nb")]


def test_empty_data_buffer_dispatches_nothing_and_resets_the_event_type() -> None:
    assert _decode(b"event: lost\n\ndata: x\n\n") == [SSEEvent(data="x")]


def test_unfinished_event_at_end_of_stream_is_discarded() -> None:
    assert _decode(b"data: a\n\ndata: b\n") == [SSEEvent(data="a")]
    assert _decode(b"data: a\n\ndata: b") == [SSEEvent(data="a")]


def test_event_completes_only_on_the_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(data="a")]


def test_pending_is_true_when_the_stream_is_cut_mid_line() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\ndata: b")
    assert decoder.pending


def test_pending_is_true_when_the_stream_is_cut_between_data_and_blank_line() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n")
    assert decoder.pending


def test_pending_is_false_after_a_complete_event() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\r\n\r\n")
    assert not decoder.pending


def test_pending_is_false_for_a_fresh_decoder() -> None:
    assert not SSEDecoder().pending


def test_events_are_frozen() -> None:
    event = SSEEvent(data="x")
    with pytest.raises(AttributeError):
        event.data = "y"  # type: ignore[misc]


# --- an independent reference, line by line on the whole stream ------------------------------

_LINE_END = re.compile(r"\r\n|\r|\n")


def _reference_events(stream: bytes) -> list[SSEEvent]:
    """Decode a whole stream the way the standard reads, with no incremental state."""
    text = stream.decode("utf-8", "replace")
    text = text.removeprefix("\ufeff")
    lines = _LINE_END.split(text)
    lines.pop()  # whatever follows the last line end is an unfinished line
    events: list[SSEEvent] = []
    data, event_type, last_id, retry = "", "", None, None
    for line in lines:
        if line == "":
            if data == "":
                event_type = ""
                continue
            events.append(
                SSEEvent(data.removesuffix("\n"), event_type or "message", last_id, retry)
            )
            data, event_type = "", ""
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
        else:
            field, value = line, ""
        if field == "data":
            data += value + "\n"
        elif field == "event":
            event_type = value
        elif field == "id" and "\0" not in value:
            last_id = value
        elif field == "retry" and value and all(char in "0123456789" for char in value):
            retry = int(value)
    return events


def test_reference_agrees_with_the_examples_above() -> None:
    stream = (
        b"\xef\xbb\xbfid: 1\rretry: 9\r\nevent: e\ndata: a\ndata:  b\n\n: c\nevent: x\n\ndata\n\n"
    )
    expected = [SSEEvent("a\n b", "e", "1", 9), SSEEvent("", "message", "1", 9)]
    assert _reference_events(stream) == expected
    assert _decode(stream) == expected


# --- properties -------------------------------------------------------------------------------

# Values never hold CR or LF (they would end the line) nor NUL (it voids an id); the alphabet
# leans on the characters a parser might trip over: ':', spaces, other Unicode line breaks.
_VALUE_CHARS = st.one_of(
    st.sampled_from(":  :\t\x0b\x0c\x1c\x85\u2028\ufeffdata"),
    st.characters(codec="utf-8", exclude_characters="\r\n\0"),
)
_values = st.text(_VALUE_CHARS, max_size=12)
_LINE_ENDS = ("\n", "\r", "\r\n")


@st.composite
def _event_streams(draw: st.DrawFn, *, mixed: bool) -> tuple[bytes, list[SSEEvent]]:
    """A serialised stream of events, and the events a correct decoder must give back.

    With ``mixed`` every line draws its own line end; otherwise one line end serves the stream.
    """
    line_end = draw(st.sampled_from(_LINE_ENDS))
    lines: list[str] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None
    retry: int | None = None
    for _ in range(draw(st.integers(0, 5))):
        # An event with no data lines dispatches nothing, but its id and retry still count.
        data_lines = draw(st.lists(_values, max_size=3))
        event_type = draw(st.none() | _values.filter(bool))
        event_id = draw(st.none() | _values)
        event_retry = draw(st.none() | st.integers(0, 10**6))
        fields = [f"data: {value}" for value in data_lines]
        if event_type is not None:
            fields.insert(draw(st.integers(0, len(fields))), f"event: {event_type}")
        if event_id is not None:
            fields.insert(draw(st.integers(0, len(fields))), f"id: {event_id}")
            last_id = event_id
        if event_retry is not None:
            fields.insert(draw(st.integers(0, len(fields))), f"retry: {event_retry}")
            retry = event_retry
        for field in fields:
            lines.extend(":" + comment for comment in draw(st.lists(_values, max_size=1)))
            lines.append(field)
        lines.append("")
        if data_lines:
            expected.append(
                SSEEvent("\n".join(data_lines), event_type or "message", last_id, retry)
            )
    text = []
    previous_end = ""
    for line in lines:
        end = draw(st.sampled_from(_LINE_ENDS)) if mixed else line_end
        if previous_end == "\r" and line == "" and end == "\n":
            end = "\r\n"  # a CR then a lone LF would read as one CRLF, swallowing the blank line
        text.append(line + end)
        previous_end = end
    return "".join(text).encode(), expected


@st.composite
def _with_cuts(draw: st.DrawFn, streams: st.SearchStrategy[bytes]) -> tuple[bytes, list[int]]:
    """A stream and the positions at which to cut it into pieces."""
    stream = draw(streams)
    return stream, draw(st.lists(st.integers(0, len(stream)), max_size=12))


@st.composite
def _events_with_cuts(draw: st.DrawFn, *, mixed: bool) -> tuple[bytes, list[SSEEvent], list[int]]:
    stream, expected = draw(_event_streams(mixed=mixed))
    return stream, expected, draw(st.lists(st.integers(0, len(stream)), max_size=12))


def _feed_all(pieces: Sequence[bytes]) -> tuple[list[SSEEvent], bool]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events, decoder.pending


def _assert_decodes_back(stream: bytes, expected: list[SSEEvent], cuts: list[int]) -> None:
    whole, whole_pending = _feed_all([stream])
    split, split_pending = _feed_all(_split(stream, cuts))
    assert split == whole
    assert whole == expected
    assert not whole_pending and not split_pending


# A regression input: a piece holding a CR-ended line and then the start of the next line, the
# next piece starting with that line's LF (which ends the line; it is not half of a CRLF).
_CR_THEN_PARTIAL_LINE = (b"data: a\rdata: b\n\n", [SSEEvent(data="a\nb")], [15])


@settings(max_examples=150, deadline=None)
@given(case=_events_with_cuts(mixed=False))
def test_events_with_one_line_end_style_decode_back_whatever_the_split(
    case: tuple[bytes, list[SSEEvent], list[int]],
) -> None:
    _assert_decodes_back(*case)


@settings(max_examples=150, deadline=None)
@given(case=_events_with_cuts(mixed=True))
@example(case=_CR_THEN_PARTIAL_LINE)
def test_events_with_mixed_line_ends_decode_back_whatever_the_split(
    case: tuple[bytes, list[SSEEvent], list[int]],
) -> None:
    _assert_decodes_back(*case)


@settings(max_examples=200, deadline=None)
@given(case=_with_cuts(st.binary(max_size=200)))
@example(case=(_CR_THEN_PARTIAL_LINE[0], _CR_THEN_PARTIAL_LINE[2]))
def test_arbitrary_bytes_decode_the_same_whatever_the_split(
    case: tuple[bytes, list[int]],
) -> None:
    stream, cuts = case
    whole, whole_pending = _feed_all([stream])
    split, split_pending = _feed_all(_split(stream, cuts))
    assert split == whole
    assert split_pending == whole_pending
    assert whole == _reference_events(stream)


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=200))
def test_arbitrary_bytes_fed_at_once_match_the_reference(stream: bytes) -> None:
    assert _feed_all([stream])[0] == _reference_events(stream)


_TRICKY_TEXT = st.text(
    st.sampled_from("\r\n:  data:event:id:retry\x00\ufeff0123456789xyzé世"), max_size=120
).map(lambda text: ("\ufeff" + text) if text.startswith("d") else text)


@settings(max_examples=200, deadline=None)
@given(text=_TRICKY_TEXT)
def test_decoder_fed_at_once_matches_the_reference_on_tricky_text(text: str) -> None:
    stream = text.encode()
    assert _feed_all([stream])[0] == _reference_events(stream)


@settings(max_examples=200, deadline=None)
@given(case=_with_cuts(_TRICKY_TEXT.map(str.encode)))
@example(case=(_CR_THEN_PARTIAL_LINE[0], _CR_THEN_PARTIAL_LINE[2]))
def test_decoder_fed_in_pieces_matches_the_reference_on_tricky_text(
    case: tuple[bytes, list[int]],
) -> None:
    stream, cuts = case
    assert _feed_all(_split(stream, cuts))[0] == _reference_events(stream)


# --- linear time and the line limit -----------------------------------------------------------


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"])
def test_a_20_mb_line_in_4_kib_pieces_decodes_in_linear_time(line_end: bytes) -> None:
    # Copying the buffered line per piece, this took about 30 s; linear, a fraction of one.
    stream = b"data: " + b"x" * (20 * MB) + line_end * 2
    decoder = SSEDecoder(max_line=32 * MB)
    started = time.perf_counter()
    events = [e for at in range(0, len(stream), 4096) for e in decoder.feed(stream[at : at + 4096])]
    elapsed = time.perf_counter() - started
    assert [len(event.data) for event in events] == [20 * MB]
    assert elapsed < 3


def test_the_default_max_line_is_4_mib() -> None:
    assert DEFAULT_MAX_LINE == 4 * MB
    line = b"data: " + b"x" * (DEFAULT_MAX_LINE - 6) + b"\n\n"
    assert [len(event.data) for event in _decode(line)] == [DEFAULT_MAX_LINE - 6]
    with pytest.raises(LimitExceeded, match=r"an SSE line is over the 4,194,304-byte limit"):
        _decode(b"data: x" + line)


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_a_line_of_max_line_bytes_is_read_and_one_byte_more_raises_whatever_the_split(
    size: int,
) -> None:
    stream = b"data: " + b"y" * 94 + b"\r\n\r\n"  # a line of 100 bytes
    pieces = _split(stream, range(size, len(stream), size))
    assert list(iter_sse(pieces, max_line=100)) == [SSEEvent("y" * 94)]
    with pytest.raises(LimitExceeded) as caught:
        list(iter_sse(pieces, max_line=99))
    assert (caught.value.what, caught.value.limit, caught.value.setting) == (
        "an SSE line",
        99,
        "max_line",
    )


def test_an_unfinished_line_raises_as_soon_as_it_passes_max_line() -> None:
    decoder = SSEDecoder(max_line=1000)
    for _ in range(9):
        decoder.feed(b"x" * 100)
    decoder.feed(b"x" * 100)  # 1,000 bytes: not over yet
    with pytest.raises(LimitExceeded):
        decoder.feed(b"x")


@pytest.mark.parametrize("pieces", [1, 3], ids=["in one piece", "across pieces"])
def test_an_events_data_longer_than_max_line_raises(pieces: int) -> None:
    stream = b"data: 12345\n" * 4 + b"\n"  # lines of 11 bytes, data of 23 characters
    cut = _split(stream, [12, 24][: pieces - 1])
    assert list(iter_sse(cut, max_line=23)) == [SSEEvent("12345\n12345\n12345\n12345")]
    with pytest.raises(LimitExceeded, match="an SSE event's data is over the 22-byte limit"):
        list(iter_sse(cut, max_line=22))


def test_an_event_that_never_ends_raises_once_its_data_passes_max_line() -> None:
    decoder = SSEDecoder(max_line=1000)
    with pytest.raises(LimitExceeded, match="event's data"):
        for _ in range(1000):
            decoder.feed(b"data: " + b"z" * 90 + b"\n")
    assert len(decoder._data) < 20


@settings(max_examples=200, deadline=None)
@given(case=_with_cuts(_TRICKY_TEXT.map(str.encode)), max_line=st.integers(1, 40))
def test_the_limit_is_reached_or_not_whatever_the_split(
    case: tuple[bytes, list[int]], max_line: int
) -> None:
    stream, cuts = case

    def outcome(pieces: Sequence[bytes]) -> object:
        try:
            return list(iter_sse(pieces, max_line=max_line))
        except LimitExceeded:
            return "over"

    whole = outcome([stream])
    assert outcome(_split(stream, cuts)) == whole
    if whole != "over":
        assert whole == _reference_events(stream)
