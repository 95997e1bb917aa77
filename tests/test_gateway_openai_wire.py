"""OpenAI's stream events as the gateway writes them: the fast path equals the general one."""

from __future__ import annotations

import json

from hypotez_providers.gateway.failures import Failure
from hypotez_providers.gateway.openai_wire import ChunkStream, encode
from hypotez_providers.results import Chunk, Usage
from hypotez_providers.tools import ToolCallDelta

TEXTS = ["hi", ' wörld "quoted"\n', "\\ back \t tab", "emoji 🎉", "lone \ud800 surrogate", ""]


def _events(data: bytes) -> list[dict]:
    return [json.loads(part[6:]) for part in data.split(b"\n\n") if part.startswith(b"data: {")]


def test_text_chunks_on_the_fast_path_equal_the_general_encoding() -> None:
    fast = ChunkStream(completion_id="chatcmpl-1", model="m", include_usage=False)
    fast.feed(Chunk(text="first"))
    for text in TEXTS:
        data = fast.feed(Chunk(text=text))
        if not text:
            assert data == b""
            continue
        [event] = _events(data)
        general = fast._event({"content": text}, None)  # the path every other chunk takes
        assert event == _events(general)[0]
        assert event["choices"][0]["delta"] == {"content": text}


def test_a_whole_stream_reads_as_openai_sends_it() -> None:
    stream = ChunkStream(completion_id="chatcmpl-2", model="m", include_usage=True)
    data = stream.start() + stream.feed(Chunk(text="Hel")) + stream.feed(Chunk(text="lo"))
    data += stream.feed(
        Chunk(tool_call_deltas=(ToolCallDelta(index=0, id="call_1", name="f", arguments="{}"),))
    )
    data += stream.feed(
        Chunk(finish_reason="stop", usage=Usage(prompt_tokens=3, completion_tokens=2))
    )
    data += stream.finish()
    events = _events(data)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert events[1]["choices"][0]["delta"] == {"content": "lo"}
    assert events[2]["choices"][0]["delta"]["tool_calls"][0]["function"] == {
        "arguments": "{}",
        "name": "f",
    }
    assert events[3]["choices"][0]["finish_reason"] == "stop"
    assert events[4]["choices"] == [] and events[4]["usage"]["total_tokens"] == 5
    assert data.endswith(b"data: [DONE]\n\n")
    assert all(event["id"] == "chatcmpl-2" for event in events)


def test_an_error_event_never_ends_with_done() -> None:
    stream = ChunkStream(completion_id="chatcmpl-3", model="m", include_usage=False)
    data = stream.feed(Chunk(text="x")) + stream.error(Failure(502, "upstream", "it broke \ud800"))
    assert b"[DONE]" not in data
    assert _events(data)[-1]["error"]["type"] == "api_error"
    assert json.loads(encode({"a": "\ud800"})) == {"a": "\ud800"}
