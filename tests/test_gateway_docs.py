"""docs/gateway.md's settings and client code run as written, against a real gateway."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
