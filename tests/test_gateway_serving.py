"""The gateway as a server: per-key model lists, open circuits, graceful shutdown."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import requests

from hypotez_providers.testing import FakeOpenAI, Fault
from tests._gateway import running_gateway

HI = [{"role": "user", "content": "hi"}]


def _endpoint(name: str, fake: FakeOpenAI, models: str) -> str:
    return f'[endpoints.{name}]\nbase_url = "{fake.url}/v1"\nmodels = [{models}]\n'


def test_a_client_key_reaches_only_its_models(tmp_path: Path) -> None:
    with FakeOpenAI(models=None) as fake:
        config = (
            _endpoint("up", fake, '"open-model", "closed-model"')
            + '[aliases]\nmine = ["up:open-model"]\n'
            + '[gateway]\napi_keys = ["gw-admin-key-11112222"]\n'
            + '[[gateway.clients]]\nname = "notebooks"\nkey = "gw-nb-key-33334444"\n'
            + 'models = ["mine", "open-model"]\n'
        )
        with running_gateway(tmp_path, config) as gateway:
            limited = {"Authorization": "Bearer gw-nb-key-33334444"}
            admin = {"x-api-key": "gw-admin-key-11112222"}

            def ask(model: str, headers: dict[str, str]) -> requests.Response:
                return requests.post(
                    gateway.url + "/v1/chat/completions",
                    json={"model": model, "messages": HI},
                    headers=headers,
                    timeout=10,
                )

            assert ask("mine", limited).status_code == 200
            refused = ask("closed-model", limited)
            assert refused.status_code == 403
            assert refused.json()["error"]["type"] == "permission_error"
            assert "mine, open-model" in refused.json()["error"]["message"]
            assert ask("closed-model", admin).status_code == 200
            listed = requests.get(gateway.url + "/v1/models", headers=limited, timeout=5).json()
            assert sorted(entry["id"] for entry in listed["data"]) == ["mine", "open-model"]
            everything = requests.get(gateway.url + "/v1/models", headers=admin, timeout=5)
            assert {"mine", "open-model", "closed-model"} <= {
                entry["id"] for entry in everything.json()["data"]
            }


def test_open_circuits_everywhere_is_503_without_asking(tmp_path: Path) -> None:
    with FakeOpenAI(models=None) as fake:
        config = _endpoint("only", fake, '"m"') + "[health]\nfailure_threshold = 1\n"
        with running_gateway(tmp_path, config) as gateway:
            fake.faults.append(Fault(status=500))
            fake.faults.append(Fault(status=500))
            fake.faults.append(Fault(status=500))
            first = requests.post(
                gateway.url + "/v1/chat/completions",
                json={"model": "m", "messages": HI},
                timeout=10,
            )
            assert first.status_code == 502
            asked = len(fake.requests)
            second = requests.post(
                gateway.url + "/v1/chat/completions",
                json={"model": "m", "messages": HI},
                timeout=10,
            )
            assert second.status_code == 503
            assert "circuit" in second.json()["error"]["message"]
            assert len(fake.requests) == asked  # the open circuit was not asked


def test_sigterm_lets_a_stream_in_flight_finish(tmp_path: Path) -> None:
    pieces = [f" w{number}" for number in range(12)]
    with (
        FakeOpenAI(models=None, pieces=pieces) as fake,
        running_gateway(tmp_path, _endpoint("up", fake, '"m"')) as gateway,
    ):
        fake.faults.append(Fault(trickle=0.001))  # about two seconds of stream
        received: list[bytes] = []

        def read() -> None:
            with requests.post(
                gateway.url + "/v1/chat/completions",
                json={"model": "m", "messages": HI, "stream": True},
                stream=True,
                timeout=20,
            ) as answer:
                received.extend(line for line in answer.iter_lines() if line)

        reader = threading.Thread(target=read)
        reader.start()
        while not fake.requests:
            time.sleep(0.01)
        time.sleep(0.2)
        gateway.process.send_signal(signal.SIGTERM)
        reader.join(20)
        assert gateway.process.wait(20) == 0
    text = b"".join(received)
    assert received[-1] == b"data: [DONE]"
    assert all(piece.encode() in text for piece in pieces)
