"""The providers' session reads the environment once per origin, with requests' own rules."""

from __future__ import annotations

import contextlib

import pytest

from hypotez_providers import HttpTransport, ProviderError
from hypotez_providers.testing import FakeOpenAI, Fault, closed_port_url

PAYLOAD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def proxy():
    """A fake upstream standing in for an HTTP proxy: it records the absolute-form requests."""
    with FakeOpenAI(path="/never") as fake:
        yield fake


def send(url):
    transport = HttpTransport("probe", connect_timeout=1, read_timeout=2)
    with contextlib.suppress(ProviderError):  # only where the request went matters here
        transport.post_json(url, PAYLOAD)
    return transport


def test_an_http_proxy_from_the_environment_is_used(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    target = closed_port_url() + "/v1/chat/completions"
    send(target).close()
    assert [request.path for request in proxy.requests] == [target]


def test_no_proxy_is_honoured(monkeypatch, proxy):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with FakeOpenAI() as upstream:
        send(upstream.url + "/v1/chat/completions").close()
        assert len(upstream.requests) == 1
    assert proxy.requests == []


def test_the_environment_is_read_once_per_transport_and_afresh_by_a_new_one(monkeypatch, proxy):
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    with FakeOpenAI() as upstream:
        url = upstream.url + "/v1/chat/completions"
        transport = send(url)
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        transport.post_json(url, PAYLOAD)  # the same transport: read once, still direct
        assert len(upstream.requests) == 2 and proxy.requests == []
        transport.close()
        send(url).close()  # a new transport (a new registry) reads it again
        assert len(proxy.requests) == 1


def test_a_plugin_sending_with_the_session_itself_is_never_redirected(monkeypatch):
    with FakeOpenAI() as elsewhere, FakeOpenAI() as upstream:
        upstream.fail_every_request = Fault(
            status=307, headers={"Location": elsewhere.url + "/v1/chat/completions"}
        )
        transport = HttpTransport("plugin")
        answer = transport.session.post(
            upstream.url + "/v1/chat/completions",
            json=PAYLOAD,
            headers={"x-api-key": "sk-canary-never-elsewhere-0123456789"},
            timeout=5,
        )
        transport.close()
    assert answer.status_code == 307
    assert elsewhere.requests == []
