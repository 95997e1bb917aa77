"""The gateway's stream relay: the call ends exactly once, however the server stops reading."""

from __future__ import annotations

import threading
import time

from hypotez_providers import Registry, Router
from hypotez_providers.gateway.openai_wire import ChunkStream
from hypotez_providers.gateway.relay import Relay
from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI

HI = [{"role": "user", "content": "hi"}]


def _relay(fake: FakeOpenAI) -> tuple[Relay, list[str]]:
    settings = parse_settings(f'[endpoints.up]\nbase_url = "{fake.url}/v1"\nmodels = ["m"]\n')
    router = Router(Registry(settings=settings, environ={}, load_entry_points=False))
    stream = router.stream("m", HI)
    first = next(stream)
    ended: list[str] = []
    encoder = ChunkStream(completion_id="chatcmpl-t", model="m", include_usage=False)
    return Relay(stream, first, encoder, ended.append), ended


def _wait_closed(fake: FakeOpenAI) -> None:
    deadline = time.monotonic() + 3
    while fake.open_connections() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.open_connections() == 0


def test_read_to_the_end_ends_once_ok() -> None:
    with FakeOpenAI(models=None, pieces=[f" p{i}" for i in range(50)]) as fake:
        relay, ended = _relay(fake)
        body = b"".join(relay)
        relay.close()
        assert body.count(b"data: ") == 51 + 1 and body.endswith(b"data: [DONE]\n\n")
        assert ended == ["ok"]


def test_closed_before_iterating_closes_the_upstream_and_ends_once() -> None:
    with FakeOpenAI(models=None, chunk_count=100_000) as fake:
        relay, ended = _relay(fake)
        relay.close()
        relay.close()
        assert ended == ["disconnected"]
        _wait_closed(fake)


def test_closed_mid_stream_stops_the_pump_and_ends_once() -> None:
    with FakeOpenAI(models=None, chunk_count=100_000) as fake:
        relay, ended = _relay(fake)
        pieces = iter(relay)
        next(pieces)
        next(pieces)
        relay.close()
        deadline = time.monotonic() + 3
        while not ended and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ended == ["disconnected"]
        _wait_closed(fake)
        assert not [t for t in threading.enumerate() if t.name == "hypotez-relay"]
