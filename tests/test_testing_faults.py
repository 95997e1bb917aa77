"""The fakes' faults for deadlines, stalls and rescue, and their assistant prefill (plain HTTP)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import requests

from hypotez_providers.testing import FakeAnthropic, FakeOllama, FakeOpenAI, Fault

OPENAI_BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi"}],
}
OLLAMA_BODY = {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
PIECES = ["Alpha", " Beta", " Gamma"]


def fake_for(vendor, **kwargs):
    return {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "ollama": FakeOllama}[vendor](
        **kwargs
    )


def post(fake, body=None, *, stream=True, read=True, **kwargs):
    """POST the vendor's chat request; ``stream`` asks for a streamed answer."""
    if isinstance(fake, FakeOpenAI):
        path, payload, headers = "/v1/chat/completions", {**OPENAI_BODY, "stream": stream}, {}
    elif isinstance(fake, FakeAnthropic):
        path, payload = "/v1/messages", {**ANTHROPIC_BODY, "stream": stream}
        headers = ANTHROPIC_HEADERS
    else:
        path, payload, headers = "/api/chat", {**OLLAMA_BODY, "stream": stream}, {}
    payload.update(body or {})
    return requests.post(
        fake.url + path, json=payload, headers=headers, stream=not read, timeout=5, **kwargs
    )


def events(raw: bytes) -> list[bytes]:
    """The stream's events: SSE blocks, or NDJSON lines."""
    separator = b"\n\n" if b"\n\n" in raw else b"\n"
    return [part for part in raw.split(separator) if part]


def label(event: bytes, beat: bytes = b"\x00") -> str:
    """What one event is: a content piece (its text), a beat, undecodable, or other."""
    if beat in event:
        return "beat"
    data = event.split(b"data: ", 1)[-1]
    try:
        decoded = json.loads(data)
    except ValueError:
        return "other" if data in (b"[DONE]", b": keep-alive") else "bad"
    text = json.dumps(decoded)
    found = [piece for piece in PIECES if f'"{piece}"' in text]
    return found[0] if found else "other"


def sequence(raw: bytes, beat: bytes = b"\x00") -> list[str]:
    """The labels from the first content piece on, without the vendor's other events."""
    labels = [label(event, beat) for event in events(raw)]
    labels = [name for name in labels if name != "other"]
    first = next(i for i, name in enumerate(labels) if name in PIECES)
    return labels[first:]


def finished(raw: bytes) -> bool:
    """Whether the stream carries the vendor's end marker."""
    return any(
        marker in raw for marker in (b"data: [DONE]", b"event: message_stop", b'"done":true')
    )


def raw_exchange(url: str, request: bytes) -> list[tuple[float, bytes]]:
    """Send ``request`` on a fresh socket; every piece received, with seconds since sending."""
    host, port = url.removeprefix("http://").split(":")
    arrivals = []
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        started = time.monotonic()
        while data := sock.recv(65536):
            arrivals.append((time.monotonic() - started, data))
    return arrivals


def raw_post(path: str, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "anthropic-version: 2023-06-01\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload


def served_then_abandoned(fake, path: str, body: dict, until: bytes) -> list[threading.Thread]:
    """Ask on a raw socket, read until ``until`` arrives, then hang up; the serving threads."""
    before = set(threading.enumerate())
    host, port = fake.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(raw_post(path, body))
        received = b""
        while until not in received:
            received += sock.recv(65536)
        threads = [thread for thread in threading.enumerate() if thread not in before]
    return threads


# Slow headers and trickle


def test_slow_headers_send_the_head_one_byte_per_interval_then_the_body_at_once():
    interval = 0.002
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(slow_headers=interval))
        arrivals = raw_exchange(fake.url, raw_post("/v1/chat/completions", OPENAI_BODY))
    received = b""
    for at, data in arrivals:
        received += data
        if b"\r\n\r\n" in received:
            head_done = at
            break
    received = b"".join(data for _, data in arrivals)
    head, body = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert head_done >= (len(head) + 3) * interval
    assert len(arrivals) >= 10
    assert json.loads(body)["choices"][0]["message"]["content"].startswith("Hello!")


def test_trickle_sends_a_whole_body_one_byte_per_interval_after_a_prompt_head():
    interval = 0.02
    text = '{"error": "x"}'
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(status=422, body=text, trickle=interval))
        arrivals = raw_exchange(fake.url, raw_post("/v1/chat/completions", OPENAI_BODY))
    first_at, first = arrivals[0]
    assert first.startswith(b"HTTP/1.1 422") and first.endswith(b"\r\n\r\n")
    body = arrivals[1:]
    assert b"".join(data for _, data in body) == text.encode()
    assert body[-1][0] - first_at >= (len(text) - 1) * interval
    assert len(body) > len(text) / 2


def test_trickle_paces_every_byte_of_a_stream_framing_included():
    interval = 0.0005
    with FakeOllama(pieces=["Hi"]) as fake:
        fake.faults.append(Fault(trickle=interval))
        request = raw_post("/api/chat", {**OLLAMA_BODY, "stream": True})
        arrivals = raw_exchange(fake.url, request)
        normal = post(fake)
    received = b"".join(data for _, data in arrivals)
    head, chunked = received.split(b"\r\n\r\n", 1)
    assert b"Transfer-Encoding: chunked" in head and chunked.endswith(b"0\r\n\r\n")
    assert arrivals[-1][0] - arrivals[0][0] >= (len(chunked) - 1) * interval
    lines = [json.loads(line) for line in events(normal.content)]
    assert [line["message"]["content"] for line in lines] == ["Hi", ""]


# Stalls

BEATS = {
    ("openai", "comment"): b": keep-alive",
    ("openai", "ping"): b": keep-alive",
    ("openai", "empty_delta"): b'"delta": {"content": ""}',
    ("anthropic", "comment"): b": keep-alive",
    ("anthropic", "ping"): b'event: ping\ndata: {"type": "ping"}',
    ("anthropic", "empty_delta"): b'"delta": {"type": "text_delta", "text": ""}',
    ("ollama", "comment"): b'"content":""},"done":false',
    ("ollama", "ping"): b'"content":""},"done":false',
    ("ollama", "empty_delta"): b'"content":""},"done":false',
}


@pytest.mark.parametrize(("vendor", "kind"), sorted(BEATS))
def test_a_stall_sends_its_keep_alives_between_two_pieces_then_the_stream_finishes(vendor, kind):
    with fake_for(vendor, pieces=PIECES) as fake:
        fake.faults.append(
            Fault(stall_after=1, stall_with=kind, stall_interval=0.02, stall_for=0.1)
        )
        started = time.monotonic()
        raw = post(fake).content
        elapsed = time.monotonic() - started
    assert elapsed >= 0.09  # timers may fire a hair early
    beat = BEATS[vendor, kind]
    assert sequence(raw, beat) == ["Alpha"] + ["beat"] * 5 + [" Beta", " Gamma"]
    assert finished(raw)


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "ollama"])
def test_a_silent_stall_holds_the_next_piece_back_then_the_stream_finishes(vendor):
    with fake_for(vendor, pieces=PIECES) as fake:
        fake.faults.append(Fault(stall_after=2, stall_for=0.1))
        response = post(fake, read=False)
        arrivals = [(time.monotonic(), chunk) for chunk in response.iter_content(chunk_size=None)]
    raw = b"".join(chunk for _, chunk in arrivals)
    assert sequence(raw) == PIECES and finished(raw)
    second = next(at for at, chunk in arrivals if b" Beta" in chunk)
    third = next(at for at, chunk in arrivals if b" Gamma" in chunk)
    assert third - second >= 0.09


def test_a_stall_after_zero_comes_after_the_preamble_before_the_first_piece():
    with FakeOpenAI(pieces=PIECES) as fake:
        fake.faults.append(
            Fault(stall_after=0, stall_with="comment", stall_interval=0.02, stall_for=0.04)
        )
        raw = post(fake).content
    parts = events(raw)
    assert (
        json.loads(parts[0].removeprefix(b"data: "))["choices"][0]["delta"]["role"] == "assistant"
    )
    assert parts[1:3] == [b": keep-alive", b": keep-alive"]
    assert label(parts[3]) == "Alpha"


def test_a_stall_counting_past_the_last_piece_comes_before_the_end_marker():
    with FakeOllama(pieces=PIECES) as fake:
        fake.faults.append(
            Fault(stall_after=9, stall_with="ping", stall_interval=0.02, stall_for=0.04)
        )
        raw = post(fake).content
    lines = [json.loads(line) for line in events(raw)]
    assert [line["message"]["content"] for line in lines] == [*PIECES, "", "", ""]
    assert [line["done"] for line in lines] == [False] * 5 + [True]


def test_a_closing_stall_is_silent_then_breaks_the_connection():
    with FakeAnthropic(pieces=PIECES) as fake:
        fake.faults.append(Fault(stall_after=1, stall_with="close", stall_for=0.05))
        started = time.monotonic()
        response = post(fake, read=False)
        received = []
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in response.iter_content(chunk_size=None):
                received.append(chunk)
        elapsed = time.monotonic() - started
    raw = b"".join(received)
    assert sequence(raw) == ["Alpha"] and not finished(raw)
    assert elapsed >= 0.045


def test_a_silent_stall_ends_when_the_client_gives_up():
    with FakeOllama(pieces=PIECES) as fake:
        fake.faults.append(Fault(stall_after=1, stall_for=30))
        body = {**OLLAMA_BODY, "stream": True}
        threads = served_then_abandoned(fake, "/api/chat", body, b"Alpha")
        for thread in threads:
            thread.join(timeout=1)
        assert threads and not any(thread.is_alive() for thread in threads)


# Endless answers


def test_an_endless_whole_answer_keeps_sending_json_looking_bytes_until_stop():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(endless=True, stall_interval=0.02))
        response = post(fake, stream=False, read=False)
        received = b""
        for chunk in response.iter_content(chunk_size=None):
            received += chunk
            if received.count(b" ") >= 10:
                break
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
    assert response.headers["transfer-encoding"] == "chunked"
    assert received.startswith(b'{"id": "chatcmpl-x", "choices": [')
    assert received.endswith(b"     ")
    with pytest.raises(ValueError):
        json.loads(received)


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "ollama"])
def test_an_endless_stream_sends_keep_alives_after_the_preamble_and_no_content(vendor):
    with fake_for(vendor, pieces=PIECES) as fake:
        fake.faults.append(Fault(endless=True, stall_interval=0.02))
        response = post(fake, read=False)
        received = b""
        for chunk in response.iter_content(chunk_size=None):
            received += chunk
            if received.count(BEATS[vendor, "comment"]) >= 4:
                break
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
    assert not any(piece.encode() in received for piece in PIECES)


def test_an_endless_stream_ends_when_the_client_goes_away():
    with FakeAnthropic() as fake:
        fake.faults.append(Fault(endless=True, stall_interval=0.02))
        body = {**ANTHROPIC_BODY, "stream": True}
        threads = served_then_abandoned(fake, "/v1/messages", body, b"keep-alive")
        for thread in threads:
            thread.join(timeout=1)
        assert threads and not any(thread.is_alive() for thread in threads)


def test_stop_interrupts_a_long_delay():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(delay=30))
        outcome = []

        def ask():
            try:
                post(fake, stream=False)
            except requests.exceptions.ConnectionError as error:
                outcome.append(error)

        client = threading.Thread(target=ask)
        client.start()
        time.sleep(0.1)
        started = time.monotonic()
        fake.stop()
        assert time.monotonic() - started < 1
        client.join(timeout=2)
    assert outcome and not client.is_alive()


# Malformed events in the middle


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "ollama"])
def test_malformed_at_inserts_that_many_undecodable_events_then_goes_on(vendor):
    with fake_for(vendor, pieces=PIECES) as fake:
        fake.faults.append(Fault(malformed_at=1, malformed_count=2))
        raw = post(fake).content
    assert sequence(raw) == ["Alpha", "bad", "bad", " Beta", " Gamma"]
    assert finished(raw)


def test_a_fault_field_out_of_range_is_refused():
    with pytest.raises(ValueError, match="stall_with"):
        Fault(stall_after=1, stall_with="nap")
    with pytest.raises(ValueError, match="stall_interval"):
        Fault(endless=True, stall_interval=0)
    with pytest.raises(ValueError, match="malformed_count"):
        Fault(malformed_at=0, malformed_count=0)


# Assistant prefill


def prefilled(content):
    return {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": content}]
    }


def test_anthropic_continues_a_prefill_from_inside_a_piece():
    with FakeAnthropic() as fake:
        whole = post(fake, prefilled("Hello! Ho"), stream=False).json()
        raw = post(fake, prefilled("Hello! Ho")).content
    assert whole["content"] == [{"type": "text", "text": "w can I help you today?"}]
    assert whole["usage"]["output_tokens"] == 6
    deltas = [
        json.loads(event.split(b"data: ", 1)[1])["delta"]["text"]
        for event in events(raw)
        if event.startswith(b"event: content_block_delta")
    ]
    assert deltas == ["w", " can", " I", " help", " you", " today?"]


def test_anthropic_joins_text_blocks_of_a_prefill_and_answers_whole_when_it_does_not_match():
    blocks = [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]
    with FakeAnthropic() as fake:
        continued = post(fake, prefilled(blocks), stream=False).json()
        unrelated = post(fake, prefilled("Sure,"), stream=False).json()
    assert continued["content"][0]["text"] == " How can I help you today?"
    assert unrelated["content"][0]["text"] == "Hello! How can I help you today?"


@pytest.mark.parametrize("content", ["Hello! ", "Hello!\n", [{"type": "text", "text": "Hi "}]])
def test_anthropic_refuses_a_prefill_ending_in_whitespace(content):
    with FakeAnthropic() as fake:
        response = post(fake, prefilled(content), stream=False)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error == {
        "type": "invalid_request_error",
        "message": "final assistant content cannot end with trailing whitespace",
    }


@pytest.mark.parametrize("vendor", ["openai", "ollama"])
def test_openai_and_ollama_continue_a_prefill_only_when_asked(vendor):
    def answer(fake):
        body = post(fake, prefilled("Hello! How"), stream=False).json()
        return (
            body["choices"][0]["message"]["content"]
            if vendor == "openai"
            else body["message"]["content"]
        )

    with fake_for(vendor) as plain, fake_for(vendor, continues_prefill=True) as continuing:
        assert answer(plain) == "Hello! How can I help you today?"
        assert answer(continuing) == " can I help you today?"
