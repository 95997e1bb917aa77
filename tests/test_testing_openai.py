"""The fake OpenAI upstream keeps its own contract (plain requests, no hypotez code)."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from hypotez_providers.testing import FakeOpenAI, Fault, closed_port_url

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
STREAM = {**BODY, "stream": True}
CHAT = "/v1/chat/completions"


def events(response):
    return [part.removeprefix("data: ") for part in response.text.split("\n\n") if part]


def parsed(raw: bytes):
    """Each SSE data payload, as JSON when it is JSON, else as text."""
    found = []
    for part in raw.decode().split("\n\n"):
        if part:
            data = part.removeprefix("data: ")
            try:
                found.append(json.loads(data))
            except ValueError:
                found.append(data)
    return found


def read_until_break(response):
    received = []
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in response.iter_content(chunk_size=None):
            received.append(chunk)
    return b"".join(received)


def test_faults_are_consumed_one_per_request_in_order():
    with FakeOpenAI() as fake:
        fake.faults.extend([Fault(status=429), Fault(status=503)])
        url = fake.url + "/v1/chat/completions"
        statuses = [requests.post(url, json=BODY, timeout=5).status_code for _ in range(3)]
    assert statuses == [429, 503, 200]


def test_every_request_fails_while_fail_every_request_is_set():
    with FakeOpenAI() as fake:
        fake.fail_every_request = Fault(status=500)
        url = fake.url + "/v1/chat/completions"
        assert {requests.post(url, json=BODY, timeout=5).status_code for _ in range(3)} == {500}


def test_a_stream_without_usage_ends_with_done_and_no_usage_field():
    with FakeOpenAI() as fake:
        response = requests.post(
            fake.url + "/v1/chat/completions", json={**BODY, "stream": True}, timeout=5
        )
    data = events(response)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data[-1] == "[DONE]"
    assert '"usage"' not in "".join(data)


def test_missing_fields_and_wrong_paths_are_refused_like_the_real_api():
    with FakeOpenAI() as fake:
        missing = requests.post(
            fake.url + "/v1/chat/completions", json={"model": "gpt-4o-mini"}, timeout=5
        )
        wrong = requests.post(fake.url + "/v1/completions", json=BODY, timeout=5)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "messages"
    assert wrong.status_code == 404 and "Invalid URL" in wrong.json()["error"]["message"]


def test_the_closed_port_refuses_connections():
    with pytest.raises(requests.ConnectionError):
        requests.post(closed_port_url(), json=BODY, timeout=2)


def test_stop_is_prompt_even_with_an_open_keep_alive_connection_and_a_held_stream():
    fake = FakeOpenAI()
    fake.start()
    fake.hold_before_last = threading.Event()
    session = requests.Session()
    session.post(fake.url + "/v1/chat/completions", json=BODY, timeout=5)
    streaming = session.post(
        fake.url + "/v1/chat/completions", json={**BODY, "stream": True}, stream=True, timeout=5
    )
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    streaming.close()


def test_a_whole_answer_has_the_chat_completion_shape_and_counts_words_as_tokens():
    body = {
        **BODY,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "say hello"}]},
        ],
    }
    with FakeOpenAI() as fake:
        first = requests.post(fake.url + CHAT, json=body, timeout=5).json()
        second = requests.post(fake.url + CHAT, json=body, timeout=5).json()
    assert isinstance(first.pop("created"), int)
    assert first == {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! How can I help you today?",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 4, "completion_tokens": 7, "total_tokens": 11},
    }
    assert second["id"] == "chatcmpl-fake2"


def test_max_tokens_cuts_the_answer_with_finish_reason_length():
    with FakeOpenAI() as fake:
        cut = requests.post(fake.url + CHAT, json={**BODY, "max_tokens": 2}, timeout=5).json()
        newer = requests.post(
            fake.url + CHAT, json={**STREAM, "max_completion_tokens": 1}, timeout=5
        )
        roomy = requests.post(fake.url + CHAT, json={**BODY, "max_tokens": 99}, timeout=5).json()
    assert cut["choices"][0]["message"]["content"] == "Hello! How"
    assert cut["choices"][0]["finish_reason"] == "length"
    assert cut["usage"]["completion_tokens"] == 2
    chunks = parsed(newer.content)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:-2]] == ["Hello!"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert roomy["choices"][0]["finish_reason"] == "stop"


def test_a_stream_sends_role_then_one_event_per_piece_then_finish_then_done():
    with FakeOpenAI(pieces=["Hi", " there"]) as fake:
        response = requests.post(fake.url + CHAT, json=STREAM, timeout=5)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["transfer-encoding"] == "chunked"
    chunks = parsed(response.content)
    assert chunks[-1] == "[DONE]"
    objects = chunks[:-1]
    assert {c["id"] for c in objects} == {"chatcmpl-fake1"}
    assert {c["object"] for c in objects} == {"chat.completion.chunk"}
    assert [c["choices"][0]["delta"] for c in objects] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hi"},
        {"content": " there"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in objects] == [None, None, None, "stop"]
    assert all("usage" not in c for c in objects)


def test_include_usage_adds_a_usage_chunk_and_null_usage_on_every_other_chunk():
    body = {**STREAM, "stream_options": {"include_usage": True}}
    with FakeOpenAI(pieces=["Hi", " there"]) as fake:
        chunks = parsed(requests.post(fake.url + CHAT, json=body, timeout=5).content)
    assert chunks[-1] == "[DONE]"
    usage_chunk = chunks[-2]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert [c["usage"] for c in chunks[:-2]] == [None] * 4


def test_chunk_count_streams_that_many_tok_pieces_under_each_request_id():
    body = {**STREAM, "stream_options": {"include_usage": True}}
    with FakeOpenAI(chunk_count=50) as fake:
        first = parsed(requests.post(fake.url + CHAT, json=STREAM, timeout=5).content)
        second = parsed(requests.post(fake.url + CHAT, json=body, timeout=5).content)
    assert [c["choices"][0]["delta"]["content"] for c in first[1:-2]] == ["tok "] * 50
    assert {c["id"] for c in first[:-1]} == {"chatcmpl-fake1"}
    assert {c["id"] for c in second[:-1]} == {"chatcmpl-fake2"}
    assert all(c["usage"] is None for c in second[:-2])


def test_an_injected_429_carries_retry_after_and_openai_rate_limit_error():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(status=429, headers={"Retry-After": "1"}))
        response = requests.post(fake.url + CHAT, json=BODY, timeout=5)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert error["message"].startswith("Rate limit reached")


def test_injected_500_and_503_are_server_errors_and_a_given_body_is_sent_as_is():
    with FakeOpenAI() as fake:
        fake.faults.extend([Fault(status=500), Fault(status=503), Fault(status=422, body="{}")])
        answers = [requests.post(fake.url + CHAT, json=BODY, timeout=5) for _ in range(3)]
    assert answers[0].json()["error"]["type"] == "server_error"
    assert answers[1].json()["error"] == {
        "message": "The server is overloaded or not ready yet.",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert (answers[2].status_code, answers[2].text) == (422, "{}")


def test_the_html_fault_is_nginx_502_page():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(html=True))
        response = requests.post(fake.url + CHAT, json=BODY, timeout=5)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"
    assert "<title>502 Bad Gateway</title>" in response.text and "nginx" in response.text


def test_malformed_breaks_the_json_body_or_one_stream_event():
    with FakeOpenAI(pieces=["Hi"]) as fake:
        fake.faults.extend([Fault(malformed=True), Fault(malformed=True)])
        whole = requests.post(fake.url + CHAT, json=BODY, timeout=5)
        stream = requests.post(fake.url + CHAT, json=STREAM, timeout=5)
    assert whole.status_code == 200
    assert whole.text == '{"id": "chatcmpl-x", "choices": ['
    with pytest.raises(ValueError):
        whole.json()
    chunks = parsed(stream.content)
    assert any(isinstance(c, str) and c.startswith("{") for c in chunks)
    assert chunks[-1] == "[DONE]"


def test_delay_holds_back_the_first_byte():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(delay=0.3))
        started = time.monotonic()
        response = requests.post(fake.url + CHAT, json=BODY, timeout=5)
        elapsed = time.monotonic() - started
    assert response.status_code == 200 and 0.3 <= elapsed < 2


def test_drop_on_connect_closes_without_an_answer():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(drop_on_connect=True))
        with pytest.raises(requests.ConnectionError):
            requests.post(fake.url + CHAT, json=BODY, timeout=5)
        assert requests.post(fake.url + CHAT, json=BODY, timeout=5).status_code == 200


def test_drop_after_breaks_the_chunked_body_after_that_many_pieces():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(drop_after=2))
        response = requests.post(fake.url + CHAT, json=STREAM, stream=True, timeout=5)
        chunks = parsed(read_until_break(response))
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hello!", " How"]


def test_truncate_after_ends_the_body_cleanly_without_done():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(truncate_after=1))
        chunks = parsed(requests.post(fake.url + CHAT, json=STREAM, timeout=5).content)
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Hello!"]


def test_error_event_after_sends_openai_error_event_and_no_done():
    with FakeOpenAI() as fake:
        fake.faults.append(Fault(error_event_after=1))
        response = requests.post(fake.url + CHAT, json=STREAM, timeout=5)
    assert response.text.endswith(
        'data: {"error": {"message": "The server had an error while processing your request.", '
        '"type": "server_error", "param": null, "code": null}}\n\n'
    )
    chunks = parsed(response.content)
    assert len(chunks) == 3 and "[DONE]" not in chunks


def test_a_stream_fault_counting_past_the_last_piece_applies_after_it():
    with FakeOpenAI(pieces=["a", "b"]) as fake:
        fake.faults.extend([Fault(truncate_after=5), Fault(drop_after=5)])
        truncated = parsed(requests.post(fake.url + CHAT, json=STREAM, timeout=5).content)
        dropped = requests.post(fake.url + CHAT, json=STREAM, stream=True, timeout=5)
        broken = parsed(read_until_break(dropped))
    assert [c["choices"][0]["delta"].get("content") for c in truncated] == ["", "a", "b"]
    assert len(broken) == 3


def test_a_wrong_or_missing_key_is_401_and_the_key_is_never_echoed():
    secret = "sk-wrong-secret-value-9876"
    with FakeOpenAI(api_key="sk-right-key-0000") as fake:
        wrong = requests.post(
            fake.url + CHAT, json=BODY, headers={"Authorization": f"Bearer {secret}"}, timeout=5
        )
        missing = requests.post(fake.url + CHAT, json=BODY, timeout=5)
        right = requests.post(
            fake.url + CHAT,
            json=BODY,
            headers={"Authorization": "Bearer sk-right-key-0000"},
            timeout=5,
        )
    assert (wrong.status_code, missing.status_code, right.status_code) == (401, 401, 200)
    error = wrong.json()["error"]
    assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Incorrect API key provided: sk-***9876. ")
    assert secret not in wrong.text and "sk-right-key-0000" not in missing.text


def test_an_unknown_model_is_404_model_not_found():
    with FakeOpenAI() as fake:
        response = requests.post(fake.url + CHAT, json={**BODY, "model": "gpt-9"}, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "The model `gpt-9` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


def test_models_none_accepts_any_model_and_echoes_it():
    with FakeOpenAI(models=None) as fake:
        answer = requests.post(fake.url + CHAT, json={**BODY, "model": "any"}, timeout=5)
    assert answer.json()["model"] == "any"


def test_bad_bodies_are_400_naming_the_field():
    cases = [
        ({"model": "gpt-4o-mini"}, "messages"),
        ({"messages": BODY["messages"]}, "model"),
        ({**BODY, "messages": []}, "messages"),
        ({**BODY, "messages": "hi"}, "messages"),
        ({**BODY, "max_tokens": 0}, "max_tokens"),
    ]
    with FakeOpenAI() as fake:
        not_json = requests.post(fake.url + CHAT, data=b"{oops", timeout=5)
        answers = [requests.post(fake.url + CHAT, json=body, timeout=5) for body, _ in cases]
    assert not_json.status_code == 400
    assert not_json.json()["error"]["type"] == "invalid_request_error"
    assert [a.status_code for a in answers] == [400] * len(cases)
    assert [a.json()["error"]["param"] for a in answers] == [name for _, name in cases]


def test_wrong_path_message_names_method_and_path():
    with FakeOpenAI() as fake:
        response = requests.post(fake.url + "/x", json=BODY, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == {
        "message": "Invalid URL (POST /x)",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


def test_requests_are_recorded_with_lower_cased_headers_and_parsed_json():
    with FakeOpenAI() as fake:
        requests.post(fake.url + CHAT, json=BODY, headers={"X-Trace": "t1"}, timeout=5)
    (recorded,) = fake.requests
    assert (recorded.method, recorded.path) == ("POST", CHAT)
    assert recorded.headers["x-trace"] == "t1"
    assert recorded.json == BODY and json.loads(recorded.body) == BODY


def test_the_first_piece_reaches_the_client_before_the_last_is_sent():
    with FakeOpenAI(pieces=["first", " middle", " last"]) as fake:
        fake.hold_before_last = threading.Event()
        with requests.post(fake.url + CHAT, json=STREAM, stream=True, timeout=5) as response:
            chunks = response.iter_content(chunk_size=None)
            received = b""
            while b'"first"' not in received:
                received += next(chunks)
            assert not fake.last_chunk_sent.is_set()
            fake.hold_before_last.set()
            received += b"".join(chunks)
        assert fake.last_chunk_sent.is_set()
    assert received.endswith(b"data: [DONE]\n\n") and b'" last"' in received
