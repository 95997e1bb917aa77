"""Importing the package, and starting the command, pay only for what is used (issue 15).

No timing is asserted: the tests check which modules and plugins get loaded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import hypotez_providers

#: Loaded only by the parts that need them: the CLI, retries, shared state, the gateway.
NOT_FOR_A_PLAIN_CALL = ("click", "tenacity", "redis", "prometheus_client", "gunicorn")

MARKER_PLUGIN = """
import os
from pathlib import Path

Path(os.environ["HYPOTEZ_TEST_MARKER"]).write_text("imported")

from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="marker", url="https://marker.example", models=["marker-1"],
                        supports_stream=False, needs_auth=False)

@hookimpl
def create_completion(model, messages, stream):
    return ["ok"]
"""


def loaded_after(statement: str) -> set[str]:
    """Top-level names of the modules loaded in a fresh interpreter after ``statement``."""
    probe = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return {name.split(".")[0] for name in json.loads(result.stdout)}


def test_importing_the_package_loads_none_of_its_heavier_dependencies():
    loaded = loaded_after("import hypotez_providers")
    assert not loaded & {*NOT_FOR_A_PLAIN_CALL, "msgspec", "pluggy", "requests"}


def test_a_plain_router_call_needs_no_cli_retry_state_or_gateway_modules():
    loaded = loaded_after(
        "from hypotez_providers import Registry, Router, Settings\n"
        "Router(Registry(settings=Settings(), load_entry_points=False))"
    )
    assert "hypotez_providers" in loaded and not loaded & set(NOT_FOR_A_PLAIN_CALL)


def test_the_first_party_plugins_do_not_load_the_settings_file_machinery():
    probe = (
        "import sys, json\n"
        "import hypotez_providers, hypotez_gravityengine, hypotez_openai, hypotez_anthropic, "
        "hypotez_ollama\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    modules = set(json.loads(result.stdout))
    unneeded = {
        "hypotez_providers.settings",
        "hypotez_providers.gateway",
        "hypotez_providers.state",
        "hypotez_providers.router",
        "tenacity",
        "click",
    }
    assert not modules & unneeded


def test_every_public_name_is_there_loaded_or_not():
    assert set(hypotez_providers.__all__) <= set(dir(hypotez_providers))
    for name in hypotez_providers.__all__:
        assert getattr(hypotez_providers, name) is not None
    namespace: dict[str, object] = {}
    exec("from hypotez_providers import *", namespace)
    assert set(hypotez_providers.__all__) <= set(namespace)


def test_an_unknown_name_is_an_attribute_error():
    try:
        hypotez_providers.NotAName  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as error:
        assert "NotAName" in str(error)
    else:
        raise AssertionError("no AttributeError")


def run_hypotez(*arguments: str, site: object, marker: object) -> subprocess.CompletedProcess[str]:
    """``hypotez ARGUMENTS`` with the marker plugin installed on ``site``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    env["HYPOTEZ_TEST_MARKER"] = str(marker)
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_version_and_help_load_no_plugin_and_a_command_does(tmp_path, plugin_distribution):
    plugin_distribution(
        "hypotez-marker", "hypotez_marker_plugin", MARKER_PLUGIN, entry_name="marker"
    )
    site, marker = tmp_path / "site-packages", tmp_path / "imported"
    for arguments in (["--version"], ["--help"], ["-h"], []):
        result = run_hypotez(*arguments, site=site, marker=marker)
        # With no arguments click shows the help as a usage error (exit 2).
        assert result.returncode == (0 if arguments else 2), result.stderr
        assert not marker.exists(), arguments
    assert "chat" in run_hypotez("--help", site=site, marker=marker).stdout
    listing = run_hypotez("providers", site=site, marker=marker)
    assert listing.returncode == 0, listing.stderr
    assert marker.read_text() == "imported" and "marker" in listing.stdout


def test_version_works_while_the_settings_are_broken(tmp_path):
    broken = tmp_path / "config.toml"
    broken.write_text("[providers.nobody]\nbase_url = 'http://127.0.0.1:9'\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env["HYPOTEZ_CONFIG"] = str(broken)
    result = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (0, "hypotez, version 0.1.0\n")
    listing = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "providers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert listing.returncode == 2 and "nobody" in listing.stderr
