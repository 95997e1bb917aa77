"""The hypotez command, run as a real subprocess against fake upstreams on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hypotez_providers.testing import FakeOpenAI, Fault, closed_port_url

from ._secrets import (
    ENV_KEY,
    HEADER_KEY,
    MISSPELLED_KEY,
    URL_PASSWORD,
    URL_USER,
    X_API_KEY,
    EchoingUpstream,
    leaks,
)

MODEL = "gpt-3.5-turbo-16k"
BROKEN = "import not_a_module_that_exists\n"
GRAVITY_PATH = "/api/openai/v1/chat/completions"
COMMAND = """
from hypotez_providers import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def hello():
        '''Say hello from a plugin.'''
        print("hello from a plugin command")
"""


def run(*arguments, stdin=None, pythonpath=None, **environ):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env.update(environ)
    env.setdefault("XDG_CONFIG_HOME", os.environ.get("XDG_CONFIG_HOME", "/nonexistent"))
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        input=stdin,
    )


@pytest.fixture
def gravity():
    with FakeOpenAI(path=GRAVITY_PATH, models=None, reply="Streamed from the fake.") as fake:
        yield fake


def test_chat_streams_the_answer_to_stdout(gravity):
    result = run("chat", "-m", MODEL, "Hello?", HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Streamed from the fake.\n"
    assert result.stderr == ""
    assert gravity.requests[0].json["stream"] is True


def test_chat_reads_stdin_takes_a_system_message_options_and_reports_attempts(gravity):
    result = run(
        "chat",
        "-m",
        MODEL,
        "-s",
        "Be brief.",
        "-o",
        "temperature=0.1",
        "-o",
        "max_tokens=2",
        "--no-stream",
        "-v",
        stdin="from stdin",
        HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Streamed from\n"
    sent = gravity.requests[0].json
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "from stdin"},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.1, 2)
    assert "answered by gravityengine" in result.stderr
    assert "gravityengine (gpt-3.5-turbo-16k): ok" in result.stderr


def test_chat_exit_codes_say_usage_error_or_every_provider_failed(gravity):
    bad_option = run(
        "chat", "-m", MODEL, "-o", "temperature=9", "x", HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url
    )
    assert bad_option.returncode == 2 and "temperature" in bad_option.stderr
    unknown = run("chat", "-m", "gpt-3.5-turbo-1", "x", HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    assert unknown.returncode == 2 and "closest: gpt-3.5-turbo-16k" in unknown.stderr
    gravity.fail_every_request = Fault(status=401)
    failed = run("chat", "-m", MODEL, "x", HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    assert failed.returncode == 1
    assert "every provider failed" in failed.stderr and "AuthenticationFailed" in failed.stderr
    missing = run("chat", "x")
    assert missing.returncode == 2 and "--model" in missing.stderr


def test_check_reports_a_dead_and_a_live_provider(tmp_path, gravity):
    config = tmp_path / "config.toml"
    config.write_text(f'[endpoints.dead]\nbase_url = "{closed_port_url()}/v1"\nmodels = ["m"]\n')
    result = run(
        "check",
        "gravityengine",
        "dead",
        "--json",
        "--timeout",
        "5",
        HYPOTEZ_CONFIG=str(config),
        HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url,
    )
    assert result.returncode == 1
    rows = {row["provider"]: row for row in json.loads(result.stdout)}
    assert rows["gravityengine"]["outcome"] == "ok"
    assert rows["gravityengine"]["first_chunk"] <= rows["gravityengine"]["latency"]
    assert rows["dead"]["outcome"] == "failed" and "ConnectionRefused" in rows["dead"]["error"]
    assert "not working: dead" in result.stderr
    table = run("check", "gravityengine", HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    assert table.returncode == 0
    assert table.stdout.splitlines()[1].split()[:3] == ["gravityengine", MODEL, "ok"]


def test_demo_shows_a_routed_answer_and_a_failover():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("answered by healthy") == 3
    assert "refusing (demo-model): failed, ConnectionRefused" in out
    assert "limited (demo-model): failed, RateLimited, HTTP 429" in out
    assert "refusing (demo-model): skipped: circuit open" in out


def test_providers_lists_name_models_auth_key_and_health_as_table_and_json():
    table = run("providers")
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].split() == [
        "NAME",
        "STREAM",
        "AUTH",
        "KEY",
        "HEALTH",
        "MODELS",
    ]
    listed = {p["name"]: p for p in json.loads(run("providers", "--json").stdout)}
    assert listed["gravityengine"]["models"] == ["gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613"]
    assert listed["gravityengine"]["health"] == "closed"
    assert listed["openai"]["needs_auth"] and not listed["openai"]["key_set"]
    with_key = json.loads(
        run("providers", "--json", OPENAI_API_KEY="sk-cli-secret-0123456789").stdout
    )
    assert next(p for p in with_key if p["name"] == "openai")["key_set"]


def test_models_lists_models_and_aliases_in_routing_order(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[aliases]\nold = ["gravityengine:gpt-3.5-turbo-0613"]\n')
    rows = {
        r["model"]: r
        for r in json.loads(run("models", "--json", HYPOTEZ_CONFIG=str(config)).stdout)
    }
    assert rows[MODEL]["providers"] == ["gravityengine"] and not rows[MODEL]["alias"]
    assert rows["old"] == {
        "model": "old",
        "alias": True,
        "providers": ["gravityengine:gpt-3.5-turbo-0613"],
        "skipped": {},
    }
    assert rows["gpt-4o-mini"]["skipped"]["openai"].startswith("no API key")


def test_plugins_shows_a_broken_plugin_with_its_reason_and_the_others_working(
    tmp_path, plugin_distribution
):
    plugin_distribution("hypotez-broken", "hypotez_broken_cli", BROKEN, entry_name="broken")
    result = run("plugins", pythonpath=tmp_path / "site-packages")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "broken" in lines["broken"] and "ModuleNotFoundError" in lines["broken"]
    assert "hypotez-broken" in lines["broken"]
    assert " ok " in lines["gravityengine"]


def test_a_plugin_adds_its_own_subcommand(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-hello", "hypotez_hello_cli", COMMAND, entry_name="hello")
    site = tmp_path / "site-packages"
    result = run("hello", pythonpath=site)
    assert (result.returncode, result.stdout) == (0, "hello from a plugin command\n")
    assert "hello" in run("--help", pythonpath=site).stdout


def test_config_masks_keys_and_init_writes_an_example(tmp_path):
    config = tmp_path / "hypotez" / "config.toml"
    secret = "sk-config-secret-0123456789"
    shown = run("config", XDG_CONFIG_HOME=str(tmp_path), OPENAI_API_KEY=secret)
    assert shown.returncode == 0
    assert secret not in shown.stdout and 'api_key = "***6789"' in shown.stdout
    assert "not created yet" in shown.stdout
    assert run("config", "path", XDG_CONFIG_HOME=str(tmp_path)).stdout.strip() == str(config)
    assert run("config", "init", HYPOTEZ_CONFIG=str(config)).stdout.strip() == str(config)
    assert config.read_text().startswith("# hypotez settings")
    again = run("config", "init", HYPOTEZ_CONFIG=str(config))
    assert again.returncode == 1 and "--force" in again.stderr
    assert run("providers", HYPOTEZ_CONFIG=str(config)).returncode == 0, "the example parses"


def test_a_malformed_settings_file_is_a_usage_error_naming_the_line(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[providers.gravityengine]\ntimeout = 'slow'\n")
    result = run("providers", HYPOTEZ_CONFIG=str(config))
    assert result.returncode == 2
    assert f"{config}, line 2: providers.gravityengine.timeout" in result.stderr


@pytest.mark.parametrize(
    "command", ["chat", "providers", "models", "plugins", "check", "demo", "config"]
)
def test_every_command_has_help_with_an_example(command):
    result = run(command, "--help")
    assert result.returncode == 0 and "Example" in result.stdout


def test_no_colour_when_not_a_terminal():
    assert "\x1b[" not in run("demo").stdout


# -- planted keys never show in any output ---------------------------------------------------------

ECHO_MODEL = "m-echo"
CANARY_SETTINGS = """
[endpoints.azure]
base_url = "http://{user}:{password}@{host}/v1"
models = ["{model}"]
headers = {{ "api-key" = "{header}" }}

[endpoints.keyed]
base_url = "{echo}/v1"
models = ["{model}"]
api_key_env = "KEYED_API_KEY"

[providers.anthropic]
models = ["{model}"]

[providers.openai]
models = ["{model}"]

[providers.gravityengine]
models = ["{model}"]

[routes]
{model} = ["azure", "keyed", "anthropic", "openai", "gravityengine"]

[retry]
attempts = 1
"""


@pytest.fixture
def canary_world(tmp_path, gravity):
    """Settings and environment planting every canary, aimed at upstreams that echo them."""
    with (
        EchoingUpstream(status=401) as echo,
        FakeOpenAI(models=None, api_key="sk-the-right-key-0000000000") as openai,
    ):
        config = tmp_path / "config.toml"
        config.write_text(
            CANARY_SETTINGS.format(
                user=URL_USER,
                password=URL_PASSWORD,
                host=echo.url.removeprefix("http://"),
                echo=echo.url,
                header=HEADER_KEY,
                model=ECHO_MODEL,
            )
        )
        environ = {
            "HYPOTEZ_CONFIG": str(config),
            "KEYED_API_KEY": ENV_KEY,
            "OPENAI_API_KEY": ENV_KEY,
            "ANTHROPIC_API_KEY": X_API_KEY,
            "HYPOTEZ_OPENAI_BASE_URL": openai.url + "/v1",
            "HYPOTEZ_ANTHROPIC_BASE_URL": echo.url,
            "HYPOTEZ_GRAVITYENGINE_BASE_URL": gravity.url,
        }
        yield environ, echo, openai


def assert_nothing_leaked(result):
    assert not leaks(result.stdout), result.stdout
    assert not leaks(result.stderr), result.stderr


@pytest.mark.parametrize("streamed", [False, True])
def test_chat_verbose_shows_every_failed_attempt_without_a_key(canary_world, streamed):
    environ, echo, openai = canary_world
    stream = [] if streamed else ["--no-stream"]
    result = run("chat", "-m", ECHO_MODEL, "-v", *stream, "hi", **environ)
    assert result.returncode == 0, result.stderr
    assert_nothing_leaked(result)
    assert "answered by gravityengine" in result.stderr
    for name in ("azure", "keyed", "anthropic", "openai"):
        assert f"{name} ({ECHO_MODEL}): failed, AuthenticationFailed" in result.stderr
    assert "authorization: Basic ***" in result.stderr  # the echoed URL password
    assert "api-key: ***" in result.stderr and "x-api-key: ***" in result.stderr
    received = " ".join(str(request.headers) for request in echo.requests + openai.requests)
    assert ENV_KEY in received and X_API_KEY in received and HEADER_KEY in received


def test_chat_when_every_provider_fails_names_them_without_a_key(canary_world):
    environ, _, _ = canary_world
    result = run("chat", "-m", ECHO_MODEL, "--provider", "azure", "hi", **environ)
    assert result.returncode == 1
    assert "AuthenticationFailed" in result.stderr
    assert_nothing_leaked(result)


def test_check_reports_failures_without_a_key_as_json_and_table(canary_world):
    environ, _, _ = canary_world
    names = ("azure", "keyed", "anthropic", "openai")
    as_json = run("check", *names, "--json", "--timeout", "5", **environ)
    assert as_json.returncode == 1
    assert_nothing_leaked(as_json)
    rows = {row["provider"]: row for row in json.loads(as_json.stdout)}
    assert all(rows[name]["outcome"] == "failed" for name in names)
    assert "***" in rows["keyed"]["error"]
    as_table = run("check", *names, "--timeout", "5", **environ)
    assert as_table.returncode == 1
    assert_nothing_leaked(as_table)


def test_config_shows_every_setting_with_keys_headers_and_url_passwords_masked(canary_world):
    environ, _, _ = canary_world
    text = run("config", **environ)
    assert text.returncode == 0, text.stderr
    assert_nothing_leaked(text)
    assert 'headers = { api-key = "***3210" }' in text.stdout
    shown = run("config", "--json", **environ)
    assert shown.returncode == 0, shown.stderr
    assert_nothing_leaked(shown)
    data = json.loads(shown.stdout)
    assert data["endpoints"]["azure"]["headers"] == {"api-key": "***3210"}
    assert data["endpoints"]["azure"]["base_url"].startswith("http://***@127.0.0.1:")
    assert data["providers"]["openai"]["api_key"] == "***cdef"
    assert data["routes"] == {
        ECHO_MODEL: ["azure", "keyed", "anthropic", "openai", "gravityengine"]
    }
    assert data["retry"]["attempts"] == 1


def test_providers_plugins_and_models_listings_show_no_key(canary_world):
    environ, _, _ = canary_world
    for command in (["providers"], ["providers", "--json"], ["plugins", "--json"], ["models"]):
        result = run(*command, **environ)
        assert result.returncode == 0, result.stderr
        assert_nothing_leaked(result)
    listed = {p["name"]: p for p in json.loads(run("providers", "--json", **environ).stdout)}
    assert listed["azure"]["url"].startswith("http://***@127.0.0.1:")
    assert listed["openai"]["key_set"] and listed["keyed"]["key_set"]


def test_a_misspelled_key_setting_is_refused_without_showing_its_value(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[providers.openai]\napi_kye = "{MISSPELLED_KEY}"\n')
    for command in (["providers", "--json"], ["config"], ["chat", "-m", "gpt-4o-mini", "hi"]):
        result = run(*command, HYPOTEZ_CONFIG=str(config))
        assert result.returncode == 2
        assert "api_kye" in result.stderr
        assert_nothing_leaked(result)


def test_tables_fit_a_60_column_terminal_cutting_cells_with_an_ellipsis():
    wide = run("providers", COLUMNS="")  # piped and no COLUMNS: never cut
    assert max(len(line) for line in wide.stdout.splitlines()) > 60
    narrow = run("providers", COLUMNS="60")
    assert narrow.returncode == 0, narrow.stderr
    lines = narrow.stdout.splitlines()
    assert len(lines) == len(wide.stdout.splitlines())
    assert all(len(line) < 60 for line in lines)
    assert any(line.endswith("…") for line in lines)
    # A cut keeps whole words (model names) where it can: only a lone first name is cut.
    models = {name.strip(",") for line in wide.stdout.splitlines()[1:] for name in line.split()[5:]}
    for line in lines[1:]:
        shown = line.split(None, 5)[5].removesuffix("…").split()
        assert len(shown) == 1 or all(name.strip(",") in models for name in shown), line


def test_check_probes_the_model_asked_for_and_only_providers_serving_it(gravity):
    result = run(
        "check",
        "--model",
        "gpt-3.5-turbo-0613",
        "--json",
        HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url,
    )
    assert result.returncode == 0, result.stderr
    assert [(row["provider"], row["model"]) for row in json.loads(result.stdout)] == [
        ("gravityengine", "gpt-3.5-turbo-0613")
    ]
    assert gravity.requests[0].json["model"] == "gpt-3.5-turbo-0613"
    nobody = run("check", "--model", "no-such-model")
    assert nobody.returncode == 2
    assert "no provider serves 'no-such-model'" in nobody.stderr
    named = run("check", "gravityengine", "--model", "gpt-4o", "--json")
    rows = json.loads(named.stdout)
    assert rows[0]["outcome"] == "not served" and named.returncode == 0


def test_check_probes_each_providers_smallest_model_by_default():
    from hypotez_providers.cli.checks import smallest_model

    assert smallest_model(("gpt-5", "gpt-5-mini", "gpt-5-nano")) == "gpt-5-mini"
    assert smallest_model(("claude-opus-4-1", "claude-haiku-4-5")) == "claude-haiku-4-5"
    assert smallest_model(("llama3.3", "llama3.1:8b")) == "llama3.1:8b"
    assert smallest_model(("gpt-3.5-turbo-16k", "gpt-3.5-turbo-0613")) == "gpt-3.5-turbo-16k"
    # "mini" must be a whole part of the name: minimax is not a small model.
    assert smallest_model(("gemini", "minimax")) == "gemini"


def test_ctrl_c_ends_check_within_a_second_while_a_provider_hangs():
    import signal
    import time

    with FakeOpenAI(path=GRAVITY_PATH, models=None) as slow:
        slow.fail_every_request = Fault(delay=30)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
        env["HYPOTEZ_GRAVITYENGINE_BASE_URL"] = slow.url
        env["XDG_CONFIG_HOME"] = "/nonexistent"
        process = subprocess.Popen(
            [sys.executable, "-m", "hypotez_providers", "check", "gravityengine"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            deadline = time.monotonic() + 20
            while not slow.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert slow.requests, "the check never reached the fake"
            interrupted = time.monotonic()
            process.send_signal(signal.SIGINT)
            code = process.wait(timeout=5)
            took = time.monotonic() - interrupted
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 130
    assert took < 1.0, took
    assert "aborted" in process.stderr.read()


def test_no_provider_serves_names_the_broken_plugin_that_would(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-mistral", "hypotez_mistral_cli", BROKEN, entry_name="mistral")
    site = tmp_path / "site-packages"
    result = run("chat", "-m", "mistral-large", "hi", pythonpath=site)
    assert result.returncode == 2
    assert "no provider serves model 'mistral-large'" in result.stderr
    assert (
        "plugin 'mistral' (hypotez-mistral), which may serve it, failed to load: "
        "see `hypotez plugins`" in result.stderr
    )
    unrelated = run("chat", "-m", "gpt-9", "hi", pythonpath=site)
    assert unrelated.returncode == 2
    assert "1 plugin failed to load (mistral): see `hypotez plugins`" in unrelated.stderr


def test_an_alias_to_a_provider_not_loaded_does_not_suggest_itself(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-mistral", "hypotez_mistral_cli", BROKEN, entry_name="mistral")
    config = tmp_path / "config.toml"
    config.write_text('[aliases]\nfast = ["mistral:mistral-small"]\n')
    result = run(
        "chat",
        "-m",
        "fast",
        "hi",
        pythonpath=tmp_path / "site-packages",
        HYPOTEZ_CONFIG=str(config),
    )
    assert result.returncode == 2, result.stderr
    assert "closest: fast" not in result.stderr
    assert (
        "alias 'fast' (mistral:mistral-small) has no provider serving it: "
        "provider(s) not loaded: mistral" in result.stderr
    )
    assert "failed to load (mistral)" in result.stderr
