"""``hypotez fake``, run as a subprocess: the lines it prints point ``hypotez chat`` at it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import click
import pytest

from hypotez_providers.cli.fake import GRAVITYENGINE_PATH, parse_faults, pointing_lines
from hypotez_providers.testing import Fault


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env["XDG_CONFIG_HOME"] = "/nonexistent"
    env.update(extra)
    return env


def _start_fake(*arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hypotez_providers", "fake", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )


def _exports(process: subprocess.Popen[str], count: int) -> dict[str, str]:
    assert process.stdout is not None
    variables = {}
    for _ in range(count):
        line = process.stdout.readline()
        assert line.startswith("export "), line
        name, _, value = line.removeprefix("export ").strip().partition("=")
        variables[name] = value
    return variables


def _interrupt(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=10)  # generous: CI machines are busy
    finally:
        if process.poll() is None:
            process.kill()


def _chat(model: str, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "chat", "-m", model, "hi"],
        capture_output=True,
        text=True,
        env=_env(**variables),
        timeout=60,
    )


@pytest.mark.parametrize(
    ("form", "model", "lines"),
    [
        ("gravityengine", "gpt-3.5-turbo-16k", 1),
        ("anthropic", "claude-haiku-4-5", 2),
        ("ollama", "llama3.2", 1),
        ("openai", "gpt-4o-mini", 2),
    ],
)
def test_fake_prints_the_lines_that_make_chat_answer_and_stops_on_ctrl_c(form, model, lines):
    process = _start_fake("--format", form, "--reply", "Hi from the fake.")
    try:
        variables = _exports(process, lines)
        result = _chat(model, variables)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "Hi from the fake.\n"
    finally:
        code = _interrupt(process)
    assert code == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_fake_with_a_status_fault_makes_chat_fail_with_that_status():
    process = _start_fake("--format", "gravityengine", "--fault", "status=503")
    try:
        result = _chat("gpt-3.5-turbo-16k", _exports(process, 1))
    finally:
        assert _interrupt(process) == 0
    assert result.returncode == 1
    assert "503" in result.stderr


def test_fake_toml_prints_the_settings_table_on_stdout():
    process = _start_fake("--format", "openai", "--toml")
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "[providers.openai]"
        assert process.stdout.readline().startswith('base_url = "http://127.0.0.1:')
    finally:
        assert _interrupt(process) == 0


@pytest.mark.parametrize("spec", ["status=abc", "colour=red", "delay", "delay=-1", "html=maybe"])
def test_a_bad_fault_is_a_usage_error_exit_2(spec):
    result = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "fake", "--fault", spec],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=30,
    )
    assert result.returncode == 2
    assert "--fault" in result.stderr
    assert result.stdout == ""


def test_faults_map_to_the_fault_fields():
    assert parse_faults(["status=503", "delay=2", "drop_after=3"]) == Fault(
        status=503, delay=2.0, drop_after=3
    )
    assert parse_faults([]) is None
    with pytest.raises(click.BadParameter):
        parse_faults(["drop_after=-3"])


def test_openai_base_url_ends_in_v1_and_keyed_providers_get_a_dummy_key():
    exports, toml = pointing_lines("openai", "http://127.0.0.1:1")
    assert exports == [
        "export HYPOTEZ_OPENAI_BASE_URL=http://127.0.0.1:1/v1",
        "export HYPOTEZ_OPENAI_API_KEY=fake-key",
    ]
    assert toml[0] == "[providers.openai]"
    assert pointing_lines("gravityengine", "http://h:1")[0] == [
        "export HYPOTEZ_GRAVITYENGINE_BASE_URL=http://h:1"
    ]


def test_the_gravityengine_path_is_the_plugins():
    from hypotez_gravityengine import CHAT_PATH

    assert GRAVITYENGINE_PATH == CHAT_PATH


def test_sigterm_also_stops_the_fake_quietly():
    process = _start_fake("--format", "ollama")
    try:
        _exports(process, 1)
        process.terminate()
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0


def test_the_cli_page_session_replays_with_shell_commands_only(tmp_path):
    import re
    import shutil
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    setup = re.findall(r"```sh\n(.*?)```", page, re.S)[0]
    script = (
        setup
        + "hypotez chat -m gpt-3.5-turbo-16k 'What is a pluggy hook?'\n"
        + 'kill -INT "$!"\nwait "$!"\necho "fake exited $?"\n'
    )
    hypotez = shutil.which("hypotez")
    assert hypotez, "the hypotez command is installed with the package"
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "A pluggy hook is a named extension point that plugins implement.\nfake exited 0\n"
    )
