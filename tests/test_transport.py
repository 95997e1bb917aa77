"""HTTP failures become typed errors naming provider, status and upstream message (real HTTP)."""

from __future__ import annotations

import pickle

import pytest

from hypotez_providers import (
    MAX_MALFORMED_IN_A_ROW,
    AuthenticationFailed,
    BadRequest,
    ConnectionFailed,
    ContextLengthExceeded,
    HttpTransport,
    MalformedResponse,
    NotFound,
    Overloaded,
    ProviderTimeout,
    RateLimited,
    ServerError,
    StreamStats,
)
from hypotez_providers.testing import FakeOpenAI, Fault, closed_port_url

PAYLOAD = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
SECRET = "sk-test-secret-key-0123456789"


@pytest.fixture
def upstream():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def transport():
    made = HttpTransport("acme", connect_timeout=2, read_timeout=0.5, secrets=(SECRET,))
    yield made
    made.close()


def url(fake):
    return fake.url + "/v1/chat/completions"


@pytest.mark.parametrize(
    ("fault", "error_type", "status", "retryable"),
    [
        (Fault(status=429, headers={"Retry-After": "2"}), RateLimited, 429, True),
        (Fault(status=500), ServerError, 500, True),
        (Fault(status=502), ServerError, 502, True),
        (Fault(status=503), Overloaded, 503, True),
        (
            Fault(
                status=529,
                body='{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
            ),
            Overloaded,
            529,
            True,
        ),
        (Fault(status=401), AuthenticationFailed, 401, False),
        (Fault(status=403), AuthenticationFailed, 403, False),
        (Fault(status=404), NotFound, 404, False),
        (Fault(status=400), BadRequest, 400, False),
        (Fault(status=422, body='{"detail": "field required"}'), BadRequest, 422, False),
        (
            Fault(
                status=400,
                body='{"error":{"message":"This model\'s maximum context length is 8192 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}',
            ),
            ContextLengthExceeded,
            400,
            False,
        ),
        (Fault(status=408), ProviderTimeout, 408, True),
    ],
)
def test_status_codes_map_to_typed_errors(
    upstream, transport, fault, error_type, status, retryable
):
    upstream.faults.append(fault)
    with pytest.raises(error_type) as caught:
        transport.post_json(url(upstream), PAYLOAD)
    error = caught.value
    assert type(error) is error_type
    assert (error.provider, error.status, error.retryable) == ("acme", status, retryable)
    assert error.upstream_message
    assert "acme" in str(error) and str(status) in str(error)


def test_rate_limit_carries_retry_after_in_seconds(upstream, transport):
    upstream.faults.append(
        Fault(status=429, headers={"retry-after-ms": "1500", "Retry-After": "2"})
    )
    with pytest.raises(RateLimited) as caught:
        transport.post_json(url(upstream), PAYLOAD)
    assert caught.value.retry_after == 1.5
    assert "Rate limit reached" in caught.value.upstream_message
    assert "retry after 1.5s" in str(caught.value)


def test_the_upstreams_own_message_is_kept(upstream, transport):
    with pytest.raises(NotFound, match="does not exist"):
        transport.post_json(url(upstream), {**PAYLOAD, "model": "gpt-nope"})


def test_an_html_error_page_is_reported_as_such(upstream, transport):
    upstream.faults.append(Fault(html=True))
    with pytest.raises(ServerError, match=r"HTML error page .'502 Bad Gateway'."):
        transport.post_json(url(upstream), PAYLOAD)


def test_an_html_page_with_status_200_is_a_malformed_response(upstream, transport):
    upstream.faults.append(
        Fault(status=200, body="<!DOCTYPE html><html><title>Login</title></html>")
    )
    with pytest.raises(MalformedResponse, match=r"HTML page .'Login'."):
        transport.post_json(url(upstream), PAYLOAD)


def test_malformed_json_is_a_malformed_response(upstream, transport):
    upstream.faults.append(Fault(malformed=True))
    with pytest.raises(MalformedResponse, match="not JSON"):
        transport.post_json(url(upstream), PAYLOAD)


def test_refused_connection_is_connection_failed(transport):
    with pytest.raises(ConnectionFailed, match="connection refused") as caught:
        transport.post_json(closed_port_url() + "/v1/chat/completions", PAYLOAD)
    assert caught.value.status is None and caught.value.retryable


def test_a_connection_closed_without_answer_is_connection_failed(upstream, transport):
    upstream.faults.append(Fault(drop_on_connect=True))
    with pytest.raises(ConnectionFailed):
        transport.post_json(url(upstream), PAYLOAD)


def test_a_slow_first_byte_is_a_timeout(upstream, transport):
    upstream.faults.append(Fault(delay=1.5))
    with pytest.raises(ProviderTimeout, match=r"nothing received for 0\.5s"):
        transport.post_json(url(upstream), PAYLOAD)


def test_a_slow_stream_start_is_a_timeout(upstream, transport):
    upstream.faults.append(Fault(delay=1.5))
    with pytest.raises(ProviderTimeout):
        list(transport.post_sse(url(upstream), {**PAYLOAD, "stream": True}))


def test_a_connection_dropped_mid_stream_is_connection_failed_after_the_first_events(
    upstream, transport
):
    upstream.faults.append(Fault(drop_after=2))
    events = []
    with pytest.raises(ConnectionFailed, match="mid-stream"):
        for event in transport.post_sse(url(upstream), {**PAYLOAD, "stream": True}):
            events.append(event)
    assert len(events) == 3  # the role chunk and two content chunks


def test_a_streamed_error_status_is_typed_before_any_event(upstream, transport):
    upstream.faults.append(Fault(status=503))
    with pytest.raises(Overloaded):
        next(transport.post_sse(url(upstream), {**PAYLOAD, "stream": True}))


def test_the_api_key_never_appears_in_errors_or_reprs(upstream, transport):
    echoed = f'{{"error": {{"message": "Incorrect API key provided: {SECRET}"}}}}'
    upstream.faults.append(Fault(status=401, body=echoed))
    with pytest.raises(AuthenticationFailed) as caught:
        transport.post_json(url(upstream), PAYLOAD, headers={"Authorization": f"Bearer {SECRET}"})
    error = caught.value
    for text in (
        str(error),
        repr(error),
        error.upstream_message,
        error.info().model_dump_json(),
        repr(transport),
    ):
        assert SECRET not in text
    assert "***" in error.upstream_message


def test_errors_survive_pickling_with_their_details(upstream, transport):
    upstream.faults.append(Fault(status=429, headers={"Retry-After": "3"}))
    with pytest.raises(RateLimited) as caught:
        transport.post_json(url(upstream), PAYLOAD)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), copy.provider, copy.status, copy.retry_after) == (
        RateLimited,
        "acme",
        429,
        3.0,
    )


def test_ndjson_streams_line_by_line(upstream, transport):
    lines = [b'{"n": 1}\n', b'{"n": 2}\n{"n"', b": 3}"]

    def handle(request, fault, responder):
        responder.start_stream("application/x-ndjson")
        for line in lines:
            responder.write_chunk(line)
        responder.end_stream()

    upstream.handle = handle
    assert list(transport.post_ndjson(upstream.url + "/any", {})) == [{"n": 1}, {"n": 2}, {"n": 3}]


def serve_ndjson(upstream, body):
    def handle(request, fault, responder):
        responder.start_stream("application/x-ndjson")
        responder.write_chunk(body)
        responder.end_stream()

    upstream.handle = handle


def test_a_broken_ndjson_line_is_skipped_and_counted(upstream, transport):
    serve_ndjson(upstream, b'{"n": 1}\n{"n": \n{"n": 2}\n')
    stats = StreamStats()
    lines = transport.post_ndjson(upstream.url + "/any", {}, stats=stats)
    assert list(lines) == [{"n": 1}, {"n": 2}]
    assert stats.malformed_events == 1


def test_too_many_broken_ndjson_lines_in_a_row_are_a_malformed_response_without_the_key(
    upstream, transport
):
    bad = f'{{"key": "{SECRET}", \n'.encode()
    serve_ndjson(upstream, b'{"n": 1}\n' + bad * (MAX_MALFORMED_IN_A_ROW + 1) + b'{"n": 2}\n')
    stats = StreamStats()
    with pytest.raises(MalformedResponse, match="undecodable stream events in a row") as caught:
        list(transport.post_ndjson(upstream.url + "/any", {}, stats=stats))
    assert caught.value.provider == "acme" and SECRET not in str(caught.value)
    assert stats.malformed_events == MAX_MALFORMED_IN_A_ROW + 1


# --- redirects: never followed, so no credential reaches another address ----------------------


@pytest.fixture
def elsewhere():
    """Another server on another port: where a redirect points. It must receive nothing."""
    with FakeOpenAI() as fake:
        yield fake


def redirect_to(location, status=307):
    return Fault(status=status, headers={"Location": location}, body="")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("streamed", [False, True])
def test_a_redirect_is_not_followed_and_names_where_it_points_without_the_key(
    upstream, transport, elsewhere, status, streamed
):
    upstream.faults.append(redirect_to(f"{url(elsewhere)}?key={SECRET}", status))
    headers = {"x-api-key": SECRET, "api-key": SECRET, "Authorization": f"Bearer {SECRET}"}
    with pytest.raises(MalformedResponse) as caught:
        if streamed:
            list(transport.post_sse(url(upstream), {**PAYLOAD, "stream": True}, headers=headers))
        else:
            transport.post_json(url(upstream), PAYLOAD, headers=headers)
    error = caught.value
    assert elsewhere.requests == []
    assert (error.provider, error.status) == ("acme", status)
    assert f"redirected to {url(elsewhere)}, not followed" in str(error)
    assert "set base_url to the final address" in str(error)
    assert SECRET not in str(error) and "key=" not in str(error)


def test_a_redirect_names_neither_the_userinfo_nor_the_query_of_its_location(upstream, transport):
    upstream.faults.append(redirect_to("https://user:hunter2@api.example.com:8443/v1/chat?a=b#c"))
    with pytest.raises(MalformedResponse) as caught:
        transport.post_json(url(upstream), PAYLOAD)
    message = caught.value.upstream_message
    assert message.startswith("redirected to https://api.example.com:8443/v1/chat, not followed")
    assert "hunter2" not in message and "user" not in message and "a=b" not in message


def test_a_relative_redirect_is_named_on_the_providers_own_origin(upstream, transport):
    upstream.faults.append(redirect_to("/v2/chat/completions", 308))
    with pytest.raises(
        MalformedResponse, match=rf"redirected to {upstream.url}/v2/chat/completions"
    ):
        transport.post_json(url(upstream), PAYLOAD)


def test_a_redirect_without_a_location_is_a_malformed_response(upstream, transport):
    upstream.faults.append(Fault(status=302, body=""))
    with pytest.raises(MalformedResponse, match="a redirect without a Location, not followed"):
        transport.post_json(url(upstream), PAYLOAD)


def test_endpoint_headers_and_anthropics_key_never_follow_a_redirect_through_the_router(
    upstream, elsewhere
):
    from hypotez_providers import AllProvidersFailed, Registry, Router
    from hypotez_providers.settings import parse_settings

    upstream.fail_every_request = redirect_to(url(elsewhere))
    settings = f"""
[endpoints.azure]
base_url = "{upstream.url}/v1"
models = ["gpt-4o-mini"]
headers = {{ api-key = "{SECRET}" }}
"""
    environ = {"HYPOTEZ_ANTHROPIC_BASE_URL": upstream.url, "ANTHROPIC_API_KEY": SECRET}
    router = Router(Registry(settings=parse_settings(settings), environ=environ))
    messages = PAYLOAD["messages"]
    for provider, model in (("azure", "gpt-4o-mini"), ("anthropic", "claude-haiku-4-5")):
        with pytest.raises(AllProvidersFailed) as caught:
            router.complete(model, messages, provider=provider)
        assert "not followed" in str(caught.value) and SECRET not in str(caught.value)
    assert len(upstream.requests) >= 2 and elsewhere.requests == []
