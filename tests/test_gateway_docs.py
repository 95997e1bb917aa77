"""docs/gateway.md's settings and client code run as written, against a real gateway."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypotez_providers.settings import parse_settings
from hypotez_providers.testing import FakeOpenAI, Fault
from tests._gateway import clean_environ, running_gateway
from tests.test_docs_examples import code_blocks

PAGE = "docs/gateway.md"


def test_the_pages_settings_and_clients_work_with_failover(tmp_path: Path) -> None:
    first_toml = code_blocks(PAGE, "toml")[0]
    with (
        FakeOpenAI(models=None, reply="down") as primary,
        FakeOpenAI(
            models=None, reply="Hello from the backup.", api_key="gsk-groq-test-1234"
        ) as backup,
    ):
        config = first_toml.replace("http://10.0.0.5:8000/v1", primary.url + "/v1").replace(
            "https://api.groq.com/openai/v1", backup.url + "/v1"
        )
        parse_settings(config)  # the page's settings are valid as written
        primary.fail_every_request = Fault(status=503)
        with running_gateway(tmp_path, config, GROQ_API_KEY="gsk-groq-test-1234") as gateway:
            for number, code in enumerate(code_blocks(PAGE, "python")):
                script = tmp_path / f"client{number}.py"
                script.write_text(code.replace("http://127.0.0.1:4000", gateway.url))
                done = subprocess.run(
                    [sys.executable, str(script)],
                    env=clean_environ(tmp_path),
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                assert done.returncode == 0, done.stderr
                assert "Hello from the backup." in done.stdout
        assert primary.requests  # the alias tried the primary first
    for block in code_blocks(PAGE, "toml")[1:]:
        parse_settings(block)


def test_the_readmes_curl_example_gets_an_answer(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    section = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = section.split("## Serve it to any client", 1)[1].split("\n## ", 1)[0]
    [block] = code_blocks_in(section, "sh")
    curl = block.split("\n", 1)[1]  # the line after 'hypotez serve'
    with (
        FakeOpenAI(
            path="/api/openai/v1/chat/completions", models=None, reply="Hi from Gravityengine."
        ) as fake,
        running_gateway(tmp_path, "", HYPOTEZ_GRAVITYENGINE_BASE_URL=fake.url) as gateway,
    ):
        done = subprocess.run(
            ["bash", "-c", curl.replace("http://127.0.0.1:4000", gateway.url)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["choices"][0]["message"]["content"] == "Hi from Gravityengine."


def code_blocks_in(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)
