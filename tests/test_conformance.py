"""The conformance battery: first-party providers pass it, a careless plugin fails it by name."""

import subprocess
import sys

import pytest

from hypotez_providers.testing.conformance import run_conformance
from tests.test_docs_examples import code_blocks

CARELESS = """
import logging

from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="careless", url="https://careless.example", models=["m1"],
                        supports_stream=True, needs_auth=True)

@hookimpl
def create_completion(model, messages, stream, context):
    # Talks to nobody, logs its key, fails with a plain Exception, and streams nothing.
    logging.getLogger("careless").warning("calling with key %s", context.api_key)
    if messages[-1]["content"] == "hello":
        raise Exception(f"upstream refused key {context.api_key}")
    yield from ()
"""


@pytest.mark.parametrize("name", ["openai", "gravityengine", "anthropic", "ollama"])
def test_every_first_party_provider_passes_every_check(name):
    results = run_conformance(name)
    assert [r for r in results if not r.passed] == []
    assert len(results) == 8


def test_a_careless_plugin_fails_with_the_properties_named(plugin_distribution):
    plugin_distribution("hypotez-careless", "hypotez_careless", CARELESS, entry_name="careless")
    results = {r.name: r for r in run_conformance("careless", wire_format="openai", model="m1")}
    failed = {name for name, result in results.items() if not result.passed}
    assert {"whole answer", "streams before last", "errors typed", "key never leaks"} <= failed
    assert "metadata" not in failed
    assert "input checked before io" not in failed
    assert "429: PluginFailed, expected RateLimited" in results["errors typed"].reason
    assert "sk-conformance" not in results["key never leaks"].reason


def test_the_pytest_fixture_fails_a_careless_plugin(plugin_distribution, provider_conformance):
    plugin_distribution("hypotez-careless", "hypotez_careless2", CARELESS, entry_name="careless")
    with pytest.raises(pytest.fail.Exception, match="errors typed"):
        provider_conformance("careless", wire_format="openai", model="m1")
    assert len(provider_conformance("ollama")) == 8


def test_plugins_check_openai_exits_0_and_prints_each_property():
    done = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "plugins", "check", "openai"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("PASS  ") == 8
    assert "FAIL" not in done.stdout


def test_plugins_without_a_subcommand_still_lists_plugins():
    done = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "gravityengine" in done.stdout


def test_the_plugins_page_fixture_example_runs(provider_conformance):
    example = code_blocks("docs/plugins.md", "python")[-1]
    namespace: dict = {}
    exec(compile(example, "docs/plugins.md", "exec"), namespace)
    namespace["test_my_provider_conforms"](provider_conformance)
