"""The providers' session sends, on its fast path, exactly what requests' Session.request would.

``ProviderSession.send_bytes`` prepares a request once per method, URL and headers and sets
only the body and its length per call. These tests capture the raw bytes on a socket and hold
them equal to what ``Session.request`` sends for the same call, through the cases where a
stale or partial preparation would differ: other bodies, changed session headers, cookies set
by the server, netrc credentials, a proxy from the environment, and a redirect.
"""

from __future__ import annotations

import socket
import threading

import pytest

from hypotez_providers._session import ProviderSession
from hypotez_providers.testing import FakeOpenAI


class RawServer:
    """Keep-alive HTTP/1.1 on 127.0.0.1 that records every request's bytes as received."""

    def __init__(self, extra_headers: bytes = b"", status: bytes = b"200 OK") -> None:
        self.requests: list[bytes] = []
        self.extra_headers = extra_headers
        self.status = status
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        with connection:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, rest = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(rest) < length:
                    rest += connection.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
                connection.sendall(
                    b"HTTP/1.1 "
                    + self.status
                    + b"\r\nContent-Length: 2\r\n"
                    + self.extra_headers
                    + b"\r\nok"
                )

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def server():
    made = RawServer()
    yield made
    made.close()


def session() -> ProviderSession:
    made = ProviderSession(4)
    made.headers["Accept-Encoding"] = "gzip, deflate"
    return made


def both_ways(server, method, path, body, headers, fresh=session):
    """The bytes sent by send_bytes and by Session.request for one call, fresh sessions each."""
    fast, slow = fresh(), fresh()
    fast.send_bytes(method, server.url + path, body, headers, (2, 2)).close()
    slow.request(
        method,
        server.url + path,
        data=body,
        headers=headers,
        timeout=(2, 2),
        stream=True,
        allow_redirects=False,
    ).close()
    *_, sent_fast, sent_slow = server.requests
    return sent_fast, sent_slow


HEADERS = {"Authorization": "Bearer sk-test-0123", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "body", "headers"),
    [
        ("POST", b'{"model":"m","messages":[]}', HEADERS),
        ("POST", b"x" * 100_000, HEADERS),
        ("POST", "déjà vu".encode(), {"x-api-key": "k", "anthropic-version": "2023-06-01"}),
        ("POST", None, HEADERS),
        ("GET", None, {"Authorization": "Bearer sk-test-0123"}),
        ("GET", None, None),
    ],
)
def test_the_fast_path_sends_what_session_request_sends(server, method, body, headers):
    sent_fast, sent_slow = both_ways(server, method, "/v1/chat/completions?x=1", body, headers)
    assert sent_fast == sent_slow


def test_a_prepared_request_reused_carries_each_call_s_own_body_and_length(server):
    made, plain = session(), session()
    for body in (b'{"a":1}', b'{"a":12345}', b"{}", b'{"a":1}'):
        made.send_bytes("POST", server.url + "/p", body, HEADERS, (2, 2)).close()
        plain.request(
            "POST",
            server.url + "/p",
            data=body,
            headers=HEADERS,
            timeout=(2, 2),
            stream=True,
            allow_redirects=False,
        ).close()
    sent = server.requests
    assert sent[0::2] == sent[1::2]
    assert sent[4].endswith(b"\r\n\r\n{}") and b"Content-Length: 2\r\n" in sent[4]


def test_a_session_header_changed_after_a_call_is_sent_from_then_on(server):
    made = session()
    made.send_bytes("POST", server.url + "/p", b"{}", HEADERS, (2, 2)).close()
    made.headers["User-Agent"] = "plugin/1.0"
    made.headers["X-Extra"] = "yes"
    made.send_bytes("POST", server.url + "/p", b"{}", HEADERS, (2, 2)).close()
    made.headers = {"X-Only": "this"}  # replaced outright
    made.send_bytes("POST", server.url + "/p", b"{}", HEADERS, (2, 2)).close()
    first, second, third = server.requests
    assert b"User-Agent: plugin/1.0\r\n" in second and b"X-Extra: yes\r\n" in second
    assert b"plugin/1.0" not in first
    assert b"X-Only: this\r\n" in third and b"X-Extra" not in third


def test_cookies_set_by_the_server_are_sent_back_as_requests_would():
    cookie_server = RawServer(extra_headers=b"Set-Cookie: session=abc123; Path=/\r\n")
    try:
        fast, slow = session(), session()
        for _ in range(2):
            fast.send_bytes("POST", cookie_server.url + "/p", b"{}", HEADERS, (2, 2)).close()
            slow.request(
                "POST",
                cookie_server.url + "/p",
                data=b"{}",
                headers=HEADERS,
                timeout=(2, 2),
                stream=True,
                allow_redirects=False,
            ).close()
        first_fast, first_slow, second_fast, second_slow = cookie_server.requests
        assert first_fast == first_slow and b"Cookie" not in first_fast
        assert second_fast == second_slow and b"Cookie: session=abc123\r\n" in second_fast
    finally:
        cookie_server.close()


def test_netrc_credentials_are_applied_as_requests_applies_them(server, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password from-netrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    sent_fast, sent_slow = both_ways(server, "POST", "/p", b"{}", {"X-Key": "k"})
    assert sent_fast == sent_slow and b"Authorization: Basic " in sent_fast


def test_a_proxy_from_the_environment_and_no_proxy_are_honoured(server, monkeypatch):
    with FakeOpenAI(path="/never") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")
        monkeypatch.delenv("no_proxy", raising=False)
        session().send_bytes("POST", server.url + "/p", b"{}", HEADERS, (2, 2)).close()
        assert [request.path for request in proxy.requests] == [server.url + "/p"]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        session().send_bytes("POST", server.url + "/p", b"{}", HEADERS, (2, 2)).close()
        assert len(proxy.requests) == 1 and len(server.requests) == 1


def test_a_redirect_is_returned_not_followed():
    moved = RawServer(status=b"307 Temporary Redirect", extra_headers=b"Location: /elsewhere\r\n")
    try:
        answer = session().send_bytes("POST", moved.url + "/p", b"{}", HEADERS, (2, 2))
        assert answer.status_code == 307 and answer.history == []
        assert len(moved.requests) == 1
    finally:
        moved.close()
