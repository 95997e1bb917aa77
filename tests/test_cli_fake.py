"""``hypotez fake``, run as a subprocess: the lines it prints point ``hypotez chat`` at it."""

from __future__ import annotations

import json
import os
import signal
import stat
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


def _normalised(text: str, home: str) -> str:
    """Output with what differs between runs (ports, pids, times, ids, home) made constant."""
    import re

    text = text.replace(home, "/home/you")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"pid \d+", "pid N", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "TIME", text)
    text = re.sub(r"conversation [0-9a-f]{32}", "conversation ID", text)
    # A conformance check's detail varies with timing; its verdict and name do not.
    return re.sub(r"^(PASS|FAIL)  ([^:]+):.*$", r"\1  \2", text, flags=re.M)


def _session(block: str) -> list[tuple[str, str]]:
    """``$ command`` lines of a page's text block, each with the output shown after it."""
    steps: list[tuple[str, str]] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            steps.append((line[2:].strip(), ""))
        else:
            command, output = steps[-1]
            steps[-1] = (command, output + line)
    return steps


def test_the_cli_page_session_replays_with_shell_commands_only(tmp_path):
    import re
    import shutil
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "cli.md").read_text()
    start_fake = re.findall(r"```sh\n(.*?)```", page, re.S)[0].strip()
    texts = re.findall(r"```text\n(.*?)```", page, re.S)
    session = next(block for block in texts if block.startswith('$ hypotez chat "hi"\nhypotez:'))
    without = next(block for block in texts if block.startswith('$ hypotez chat "hi"\nUsage:'))
    assert start_fake == "hypotez fake"
    assert shutil.which("hypotez"), "the hypotez command is installed with the package"
    home, fresh = tmp_path / "you", tmp_path / "fresh"
    home.mkdir()
    fake = subprocess.Popen(
        ["bash", "-c", f"exec {start_fake}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_home_env(home),
    )
    try:
        assert fake.stdout is not None
        fake.stdout.readline()  # announced by now
        steps = _session(session)
        assert len(steps) >= 13
        for command, shown in steps:
            result = subprocess.run(
                ["bash", "-c", command],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=_home_env(home, COLUMNS="100"),
                timeout=60,
            )
            assert result.returncode == 0, (command, result.stdout)
            assert _normalised(result.stdout, str(home)) == _normalised(shown, "/home/you"), command
    finally:
        assert _interrupt(fake) == 0
    [(command, shown)] = _session(without)
    result = subprocess.run(
        ["bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_home_env(fresh),
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == shown


# -- the announcement: a running fake answers `hypotez chat "hi"` in any other terminal -------


def _home_env(home, **extra: str) -> dict[str, str]:
    """A throwaway user: settings, keys, announcements and log all under ``home``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HYPOTEZ_", "XDG_")) and not k.endswith("_API_KEY")
    }
    env["HOME"] = str(home)
    env.update(extra)
    return env


def _announced_fake(home, *arguments: str) -> subprocess.Popen[str]:
    """``hypotez fake`` for the user at ``home``, returned once its first line is out."""
    process = subprocess.Popen(
        [sys.executable, "-m", "hypotez_providers", "fake", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_home_env(home),
    )
    assert process.stdout is not None
    # The announcement is written before the first line is printed.
    assert process.stdout.readline().startswith(("export ", "[providers."))
    return process


def _hypotez(home, *arguments: str, stdin: str = "", **extra: str):
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        input=stdin,
        env=_home_env(home, **extra),
        timeout=60,
    )


def _announcement(home, form: str = "gravityengine"):
    from pathlib import Path

    return Path(home) / ".config" / "hypotez" / "fakes" / f"{form}.json"


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_with_a_fake_running_chat_answers_with_no_model_and_no_export_continues_and_logs(
    tmp_path,
):
    fake = _announced_fake(tmp_path, "--reply", "Hi from the fake.")
    try:
        first = _hypotez(tmp_path, "chat", "hi")
        second = _hypotez(tmp_path, "chat", "-c", "and then?")
        logs = _hypotez(tmp_path, "logs", "--json")
    finally:
        assert _interrupt(fake) == 0
    assert first.returncode == 0, first.stderr
    assert first.stdout == "Hi from the fake.\n"
    note = "hypotez: gravityengine -> fake upstream http://127.0.0.1:"
    assert first.stderr.count(note) == 1
    assert f"(hypotez fake, pid {fake.pid})" in first.stderr
    assert "gpt-3.5-turbo-16k" in first.stderr
    assert second.returncode == 0, second.stderr
    assert second.stdout == "Hi from the fake.\n"
    assert logs.returncode == 0, logs.stderr
    assert note not in logs.stderr  # a command that calls no provider says nothing of it
    calls = json.loads(logs.stdout)
    assert sorted(call["prompt"] for call in calls) == ["and then?", "hi"]
    assert {call["provider"] for call in calls} == {"gravityengine"}
    assert {call["model"] for call in calls} == {"gpt-3.5-turbo-16k"}
    assert len({call["conversation_id"] for call in calls}) == 1


def test_fake_says_that_chat_in_another_terminal_now_answers_from_it(tmp_path):
    fake = _announced_fake(tmp_path, "--format", "ollama")
    try:
        path = _announcement(tmp_path, "ollama")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        announced = json.loads(path.read_text())
        assert fake.stderr is not None
        told = [fake.stderr.readline() for _ in range(5)]  # the settings lines come first
    finally:
        assert _interrupt(fake) == 0
    assert any('hypotez chat "hi" now answers from it (llama3.2)' in line for line in told), told
    assert announced["provider"] == "ollama"
    assert announced["model"] == "llama3.2"
    assert announced["pid"] == fake.pid
    assert announced["base_url"].startswith("http://127.0.0.1:")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_announcement_is_removed_when_the_fake_is_stopped(tmp_path, stop):
    fake = _announced_fake(tmp_path)
    path = _announcement(tmp_path)
    try:
        assert path.exists()
        fake.send_signal(stop)
        code = fake.wait(timeout=10)
    finally:
        if fake.poll() is None:
            fake.kill()
    assert code == 0
    assert not path.exists()
    assert list(path.parent.iterdir()) == []
    result = _hypotez(tmp_path, "chat", "hi")
    assert result.returncode == 2
    assert "hypotez fake" in result.stderr


def test_a_stale_announcement_is_ignored_and_removed(tmp_path):
    from hypotez_providers.testing import FakeOpenAI

    # A stale file pointing at an upstream that would answer: honouring it would succeed.
    with FakeOpenAI(path=GRAVITYENGINE_PATH, models=None, reply="Stale.") as upstream:
        path = _announcement(tmp_path)
        path.parent.mkdir(parents=True)
        path.write_text(
            json.dumps(
                {
                    "form": "gravityengine",
                    "url": upstream.url,
                    "base_url": upstream.url,
                    "provider": "gravityengine",
                    "model": "gpt-3.5-turbo-16k",
                    "pid": _dead_pid(),
                    "api_key": None,
                }
            )
        )
        result = _hypotez(tmp_path, "chat", "hi")
        assert upstream.requests == []
    assert result.returncode == 2
    assert result.stdout == ""
    assert "no model" in result.stderr
    assert "run hypotez fake in another terminal" in result.stderr
    assert "fake upstream" not in result.stderr
    assert not path.exists()


@pytest.mark.parametrize("where", ["environment", "settings"])
def test_an_explicit_base_url_wins_over_the_running_fake(tmp_path, where):
    from hypotez_providers.testing import FakeOpenAI

    with FakeOpenAI(path=GRAVITYENGINE_PATH, models=None, reply="Configured.") as configured:
        extra = {}
        if where == "environment":
            extra["HYPOTEZ_GRAVITYENGINE_BASE_URL"] = configured.url
        else:
            settings = tmp_path / ".config" / "hypotez" / "config.toml"
            settings.parent.mkdir(parents=True)
            settings.write_text(f'[providers.gravityengine]\nbase_url = "{configured.url}"\n')
        fake = _announced_fake(tmp_path, "--reply", "From the fake.")
        try:
            named = _hypotez(tmp_path, "chat", "-m", "gpt-3.5-turbo-16k", "hi", **extra)
            unnamed = _hypotez(tmp_path, "chat", "hi", **extra)
        finally:
            assert _interrupt(fake) == 0
    assert named.returncode == 0, named.stderr
    assert named.stdout == "Configured.\n"
    assert "fake upstream" not in named.stderr
    # The fake stands in for no provider, so it gives no model either.
    assert unnamed.returncode == 2
    assert "no model" in unnamed.stderr


def test_a_keyed_provider_sends_the_fake_only_its_placeholder_key(tmp_path):
    from hypotez_providers.testing import FakeOpenAI

    real = "sk-real-key-0123456789abcdef"
    with FakeOpenAI(models=None, reply="Keyed.") as upstream:
        path = _announcement(tmp_path, "openai")
        path.parent.mkdir(parents=True)
        # Announced by this (live) process, as hypotez fake --format openai does.
        path.write_text(
            json.dumps(
                {
                    "form": "openai",
                    "url": upstream.url,
                    "base_url": upstream.url + "/v1",
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "pid": os.getpid(),
                    "api_key": "fake-key",
                }
            )
        )
        result = _hypotez(tmp_path, "chat", "hi", OPENAI_API_KEY=real)
        sent = upstream.requests
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Keyed.\n"
    assert "hypotez: openai -> fake upstream" in result.stderr
    assert [request.headers["authorization"] for request in sent] == ["Bearer fake-key"]
    assert sent[0].json["model"] == "gpt-4o-mini"
    assert real not in sent[0].body.decode()
