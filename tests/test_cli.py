"""The hypotez command, run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

BROKEN = "import not_a_module_that_exists\n"


def run(*arguments, pythonpath=None, **environ):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env.update(environ)
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_providers_lists_gravityengine_as_a_table_and_as_json(tmp_path):
    table = run("providers", XDG_CONFIG_HOME=str(tmp_path))
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "NAME",
        "STREAM",
        "AUTH",
        "KEY",
        "SET",
        "MODELS",
    ]
    assert "gravityengine" in table.stdout
    listed = json.loads(run("providers", "--json", XDG_CONFIG_HOME=str(tmp_path)).stdout)
    [gravity] = [p for p in listed if p["name"] == "gravityengine"]
    assert gravity["models"] == ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"]


def test_plugins_shows_a_broken_plugin_with_its_reason_and_the_others_working(
    tmp_path, plugin_distribution
):
    plugin_distribution("hypotez-broken", "hypotez_broken_cli", BROKEN, entry_name="broken")
    site = tmp_path / "site-packages"
    result = run("plugins", pythonpath=site, XDG_CONFIG_HOME=str(tmp_path))
    assert result.returncode == 1
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "broken" in lines["broken"] and "ModuleNotFoundError" in lines["broken"]
    assert "hypotez-broken" in lines["broken"]
    assert " ok " in lines["gravityengine"]


def test_a_malformed_settings_file_is_a_usage_error_naming_the_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[providers.gravityengine]\ntimeout = 'slow'\n")
    result = run("providers", HYPOTEZ_CONFIG=str(config))
    assert result.returncode == 2
    assert f"{config}, line 2: providers.gravityengine.timeout" in result.stderr


def test_help_shows_an_example():
    result = run("providers", "--help")
    assert result.returncode == 0 and "example: hypotez providers" in result.stdout
