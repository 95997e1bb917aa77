"""``hypotez config`` shows the [state], [gateway] and [balancing] tables with secrets masked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SETTINGS = """\
[state]
url = "redis://:hunter2-state-password@127.0.0.1:6390/0"
[gateway]
api_keys = ["gw-admin-abcdefgh12345678"]
[[gateway.clients]]
name = "notebooks"
key = "gw-notebooks-99998888"
models = ["m"]
[balancing]
strategy = "least_busy"
"""
SECRETS = ("hunter2-state-password", "gw-admin-abcdefgh12345678", "gw-notebooks-99998888")


def _config(tmp_path: Path, *args: str) -> str:
    settings = tmp_path / "config.toml"
    settings.write_text(SETTINGS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env.update(HYPOTEZ_CONFIG=str(settings), HOME=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "config", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_the_new_tables_are_shown_and_no_secret_even_in_part(tmp_path: Path) -> None:
    shown = _config(tmp_path)
    assert 'url = "redis://***@127.0.0.1:6390/0"' in shown
    assert "[gateway]" in shown and 'strategy = "least_busy"' in shown
    as_json = _config(tmp_path, "--json")
    data = json.loads(as_json)
    assert data["state"]["url"] == "redis://***@127.0.0.1:6390/0"
    assert data["gateway"]["clients"][0]["name"] == "notebooks"
    for secret in SECRETS:
        for text in (shown, as_json):
            assert secret not in text and secret[-6:] not in text
