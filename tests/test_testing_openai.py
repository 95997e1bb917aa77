"""The fake OpenAI upstream keeps its own contract (plain requests, no hypotez code)."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from hypotez_providers.testing import FakeOpenAI, Fault, closed_port_url

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def events(response):
    return [part.removeprefix("data: ") for part in response.text.split("\n\n") if part]


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
