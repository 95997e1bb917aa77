"""``hypotez chat`` as people use it, run as a subprocess against fakes on 127.0.0.1.

Piped input joined with the prompt; usage errors before anything is sent; a default model;
``-u``; the local SQLite log (failed calls too) and ``hypotez logs``; ``-c`` and ``--cid``;
``hypotez keys``; the interactive chat under a pseudo-terminal.
Every test's settings, keys and log live under its own tmp_path.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import sqlite3
import stat
import subprocess
import sys

import pytest

from hypotez_providers.testing import FakeOpenAI, Fault

from .test_cli import GRAVITY_PATH, MODEL
from .test_cli import run as run_cli

STORED_KEY = "sk-stored-key-0123456789abcdef"
ENDPOINT = """
[endpoints.keyed]
base_url = "{url}/v1"
models = ["keyed-1"]
"""


@pytest.fixture
def gravity():
    with FakeOpenAI(path=GRAVITY_PATH, models=None, reply="The fake answers.") as fake:
        yield fake


@pytest.fixture
def data_home(tmp_path):
    return tmp_path / "data-home"


def run(*arguments, data_home, stdin="", **environ):
    """The command with its log under ``data_home`` and, unless given, nothing piped in."""
    return run_cli(*arguments, stdin=stdin, XDG_DATA_HOME=str(data_home), **environ)


def chat(fake, *arguments, data_home, **environ):
    environ.setdefault("HYPOTEZ_GRAVITYENGINE_BASE_URL", fake.url)
    return run("chat", *arguments, data_home=data_home, **environ)


def sent_user_text(request):
    return request.json["messages"][-1]["content"]


def test_piped_stdin_follows_the_prompt_after_a_blank_line(gravity, data_home):
    result = chat(gravity, "-m", MODEL, "Summarise this", stdin="DATA\n", data_home=data_home)
    assert result.returncode == 0, result.stderr
    assert sent_user_text(gravity.requests[0]) == "Summarise this\n\nDATA\n"


def test_piped_stdin_alone_is_the_prompt(gravity, data_home):
    result = chat(gravity, "-m", MODEL, stdin="Only piped", data_home=data_home)
    assert result.returncode == 0, result.stderr
    assert sent_user_text(gravity.requests[0]) == "Only piped"


@pytest.mark.parametrize(
    ("arguments", "stdin"),
    [(["   "], ""), ([""], "  \n"), ([], "")],
    ids=["blank-prompt", "empty-prompt-blank-stdin", "nothing"],
)
def test_an_empty_prompt_is_a_usage_error_and_nothing_is_sent(gravity, data_home, arguments, stdin):
    result = chat(gravity, "-m", MODEL, *arguments, stdin=stdin, data_home=data_home)
    assert result.returncode == 2
    assert "prompt" in result.stderr.lower()
    assert result.stdout == ""
    assert gravity.requests == []


@pytest.mark.parametrize("timeout", ["0", "-1"])
def test_a_non_positive_timeout_is_a_usage_error_and_nothing_is_sent(gravity, data_home, timeout):
    result = chat(gravity, "-m", MODEL, "--timeout", timeout, "hi", data_home=data_home)
    assert result.returncode == 2
    assert "--timeout" in result.stderr
    assert gravity.requests == []


def test_models_default_sets_the_model_chat_uses_without_m(gravity, data_home, tmp_path):
    assert run("models", "default", data_home=data_home).returncode == 1
    result = run("models", "default", MODEL, data_home=data_home)
    assert result.returncode == 0, result.stderr
    settings = tmp_path / "config-home" / "hypotez" / "config.toml"
    assert f'default_model = "{MODEL}"' in settings.read_text()
    shown = run("models", "default", data_home=data_home)
    assert shown.stdout == MODEL + "\n"
    answered = chat(gravity, "Hello?", data_home=data_home)
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == "The fake answers.\n"
    assert gravity.requests[0].json["model"] == MODEL


def test_models_default_keeps_the_rest_of_the_settings_file(data_home, tmp_path):
    settings = tmp_path / "config-home" / "hypotez" / "config.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text('default_model = "old"\n\n[retry]\nattempts = 3\n')
    assert run("models", "default", MODEL, data_home=data_home).returncode == 0
    assert settings.read_text() == f'default_model = "{MODEL}"\n\n[retry]\nattempts = 3\n'


def test_models_default_refuses_an_unknown_model_with_the_closest(data_home, tmp_path):
    result = run("models", "default", MODEL + "x", data_home=data_home)
    assert result.returncode == 2
    assert MODEL in result.stderr
    assert not (tmp_path / "config-home" / "hypotez" / "config.toml").exists()


def test_models_without_a_subcommand_still_lists(data_home):
    result = run("models", "--json", data_home=data_home)
    assert result.returncode == 0, result.stderr
    assert any(row["model"] == MODEL for row in json.loads(result.stdout))


def test_chat_without_a_model_or_default_is_a_usage_error(gravity, data_home):
    result = chat(gravity, "hi", data_home=data_home)
    assert result.returncode == 2
    assert "hypotez models default" in result.stderr
    assert gravity.requests == []


@pytest.mark.parametrize("stream", [[], ["--no-stream"]], ids=["streamed", "whole"])
def test_u_reports_usage_and_finish_reason_on_stderr_only(data_home, tmp_path, stream):
    with FakeOpenAI(models=("keyed-1",), reply="The fake answers.") as fake:
        settings = tmp_path / "endpoint.toml"
        settings.write_text(ENDPOINT.format(url=fake.url))
        result = run(
            "chat",
            "-m",
            "keyed-1",
            "-u",
            *stream,
            "Hello?",
            data_home=data_home,
            HYPOTEZ_CONFIG=str(settings),
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The fake answers.\n"
    assert result.stderr.startswith("usage: ")
    assert "completion" in result.stderr and "tokens" in result.stderr
    assert "finish reason: stop" in result.stderr


def test_u_says_so_when_the_provider_reports_no_usage(gravity, data_home):
    result = chat(gravity, "-m", MODEL, "-u", "Hello?", data_home=data_home)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The fake answers.\n"
    assert result.stderr == "usage: not reported; finish reason: stop\n"


def test_every_call_is_recorded_in_the_sqlite_log(gravity, data_home):
    result = chat(gravity, "-m", MODEL, "Hello?", data_home=data_home)
    assert result.returncode == 0, result.stderr
    database = data_home / "hypotez" / "logs.db"
    with sqlite3.connect(database) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM calls").fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert row["model"] == MODEL
    assert row["provider"] == "gravityengine"
    assert row["prompt"] == "Hello?"
    assert json.loads(row["messages"]) == [{"role": "user", "content": "Hello?"}]
    assert row["answer"] == "The fake answers."
    assert json.loads(row["attempts"])[0]["outcome"] == "ok"
    assert row["latency"] > 0
    assert row["conversation_id"]
    assert row["timestamp"]
    path = run("logs", "path", data_home=data_home)
    assert path.stdout.strip() == str(database)


def test_logs_path_can_be_overridden(gravity, data_home, tmp_path):
    elsewhere = tmp_path / "elsewhere.db"
    result = chat(gravity, "-m", MODEL, "hi", data_home=data_home, HYPOTEZ_LOGS_PATH=str(elsewhere))
    assert result.returncode == 0, result.stderr
    assert elsewhere.exists()
    assert not (data_home / "hypotez" / "logs.db").exists()


def test_logs_json_shows_the_last_calls_and_never_a_key(data_home):
    key = "sk-env-key-should-never-be-logged-42"
    with FakeOpenAI(api_key=key, models=("keyed-1",), reply=f"echo {key}") as fake:
        settings = data_home.parent / "keyed.toml"
        settings.write_text(ENDPOINT.format(url=fake.url))
        environ = {"HYPOTEZ_CONFIG": str(settings), "HYPOTEZ_KEYED_API_KEY": key}
        for prompt in ("one", "two", "three", f"four {key}"):
            result = run("chat", "-m", "keyed-1", prompt, data_home=data_home, **environ)
            assert result.returncode == 0, result.stderr
        shown = run("logs", "--json", data_home=data_home, **environ)
        assert shown.returncode == 0, shown.stderr
        calls = json.loads(shown.stdout)
        assert [call["prompt"].split()[0] for call in calls] == ["two", "three", "four"]
        assert calls[-1]["provider"] == "keyed"
        assert key not in shown.stdout
        assert key not in (data_home / "hypotez" / "logs.db").read_bytes().decode("latin-1")
        one = run("logs", "-n", "1", data_home=data_home, **environ)
        assert "four" in one.stdout and "two" not in one.stdout
        assert key not in one.stdout


@pytest.mark.parametrize(
    ("arguments", "environ"),
    [(["--no-log"], {}), ([], {"settings": "[logs]\nenabled = false\n"})],
    ids=["no-log", "settings"],
)
def test_logging_can_be_turned_off(gravity, data_home, tmp_path, arguments, environ):
    extra = {}
    if "settings" in environ:
        settings = tmp_path / "off.toml"
        settings.write_text(environ["settings"])
        extra["HYPOTEZ_CONFIG"] = str(settings)
    result = chat(gravity, "-m", MODEL, *arguments, "hi", data_home=data_home, **extra)
    assert result.returncode == 0, result.stderr
    assert not (data_home / "hypotez" / "logs.db").exists()


def test_continue_sends_the_previous_turns_messages(gravity, data_home):
    first = chat(gravity, "-m", MODEL, "-s", "Be brief.", "First?", data_home=data_home)
    assert first.returncode == 0, first.stderr
    second = chat(gravity, "-m", MODEL, "-c", "Second?", data_home=data_home)
    assert second.returncode == 0, second.stderr
    assert gravity.requests[1].json["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "First?"},
        {"role": "assistant", "content": "The fake answers."},
        {"role": "user", "content": "Second?"},
    ]
    calls = json.loads(run("logs", "--json", data_home=data_home).stdout)
    assert calls[0]["conversation_id"] == calls[1]["conversation_id"]


def test_cid_picks_the_conversation_to_continue(gravity, data_home):
    assert chat(gravity, "-m", MODEL, "About rivers", data_home=data_home).returncode == 0
    assert chat(gravity, "-m", MODEL, "About mountains", data_home=data_home).returncode == 0
    rivers = json.loads(run("logs", "--json", data_home=data_home).stdout)[0]
    result = chat(
        gravity, "-m", MODEL, "--cid", rivers["conversation_id"], "More", data_home=data_home
    )
    assert result.returncode == 0, result.stderr
    sent = gravity.requests[2].json["messages"]
    assert [m["content"] for m in sent] == ["About rivers", "The fake answers.", "More"]


def test_continue_with_an_empty_log_is_a_usage_error(gravity, data_home):
    result = chat(gravity, "-m", MODEL, "-c", "More", data_home=data_home)
    assert result.returncode == 2
    assert gravity.requests == []


def test_keys_set_stores_a_private_file_whose_key_a_provider_uses(data_home, tmp_path):
    with FakeOpenAI(api_key=STORED_KEY, models=("keyed-1",), reply="Keyed answer.") as fake:
        settings = tmp_path / "keyed.toml"
        settings.write_text(ENDPOINT.format(url=fake.url))
        environ = {"HYPOTEZ_CONFIG": str(settings)}
        refused = run("chat", "-m", "keyed-1", "hi", data_home=data_home, **environ)
        assert refused.returncode == 1
        stored = run("keys", "set", "keyed", stdin=STORED_KEY + "\n", data_home=data_home)
        assert stored.returncode == 0, stored.stderr
        assert STORED_KEY not in stored.stdout + stored.stderr
        path = tmp_path / "config-home" / "hypotez" / "keys.json"
        assert run("keys", "path", data_home=data_home).stdout.strip() == str(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert json.loads(path.read_text()) == {"keyed": STORED_KEY}
        answered = run("chat", "-m", "keyed-1", "hi", data_home=data_home, **environ)
        assert answered.returncode == 0, answered.stderr
        assert answered.stdout == "Keyed answer.\n"
        headers = {name.lower(): value for name, value in fake.requests[-1].headers.items()}
        assert headers["authorization"] == f"Bearer {STORED_KEY}"
        listed = run("keys", "list", data_home=data_home)
        assert listed.stdout == "keyed\n"
        assert STORED_KEY not in listed.stdout + listed.stderr
        shown = run("config", "--json", data_home=data_home, **environ)
        assert STORED_KEY not in shown.stdout + shown.stderr


def test_the_environment_beats_a_stored_key(data_home, tmp_path):
    with FakeOpenAI(api_key="sk-from-the-environment-1234", models=("keyed-1",)) as fake:
        settings = tmp_path / "keyed.toml"
        settings.write_text(ENDPOINT.format(url=fake.url))
        assert run("keys", "set", "keyed", stdin=STORED_KEY, data_home=data_home).returncode == 0
        result = run(
            "chat",
            "-m",
            "keyed-1",
            "hi",
            data_home=data_home,
            HYPOTEZ_CONFIG=str(settings),
            HYPOTEZ_KEYED_API_KEY="sk-from-the-environment-1234",
        )
        assert result.returncode == 0, result.stderr


def test_keys_set_refuses_an_empty_key(data_home, tmp_path):
    result = run("keys", "set", "keyed", stdin="\n", data_home=data_home)
    assert result.returncode == 2
    assert not (tmp_path / "config-home" / "hypotez" / "keys.json").exists()


def test_a_failed_call_is_logged_as_failed_without_a_key_and_not_continued(data_home):
    key = "sk-env-key-should-never-be-logged-503"
    with FakeOpenAI(api_key=key, models=("keyed-1",), reply="Fine.") as fake:
        settings = data_home.parent / "keyed.toml"
        settings.write_text(ENDPOINT.format(url=fake.url))
        environ = {"HYPOTEZ_CONFIG": str(settings), "HYPOTEZ_KEYED_API_KEY": key}
        answered = run("chat", "-m", "keyed-1", "first", data_home=data_home, **environ)
        assert answered.returncode == 0, answered.stderr
        fake.faults.extend(Fault(status=503) for _ in range(10))
        result = run("chat", "-m", "keyed-1", f"second {key}", data_home=data_home, **environ)
        assert result.returncode == 1
        fake.faults.clear()
        shown = run("logs", "--json", data_home=data_home, **environ)
        assert shown.returncode == 0, shown.stderr
        assert key not in shown.stdout
        assert key not in (data_home / "hypotez" / "logs.db").read_bytes().decode("latin-1")
        failed = json.loads(shown.stdout)[-1]
        assert failed["outcome"] == "failed"
        assert failed["prompt"].startswith("second")
        assert failed["model"] == "keyed-1"
        assert failed["error_kind"] == "AllProvidersFailed"
        assert "503" in failed["error_message"]
        assert failed["attempts"] and all(a["outcome"] != "ok" for a in failed["attempts"])
        assert failed["latency"] > 0
        listed = run("logs", data_home=data_home, **environ)
        assert "FAILED" in listed.stdout and "failed: AllProvidersFailed" in listed.stdout
        carried = run("chat", "-m", "keyed-1", "-c", "third", data_home=data_home, **environ)
        assert carried.returncode == 0, carried.stderr
        sent = fake.requests[-1].json["messages"]
        assert [m["content"] for m in sent] == ["first", "Fine.", "third"]


@pytest.mark.parametrize("ending", [b"exit\n", b"quit\n", b"\x04"], ids=["exit", "quit", "eof"])
def test_no_prompt_on_a_terminal_is_an_interactive_chat_of_one_conversation(
    gravity, data_home, ending
):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    environ.update(XDG_DATA_HOME=str(data_home), HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    environ.setdefault("XDG_CONFIG_HOME", "/nonexistent")
    leader, follower = pty.openpty()  # stdin a real terminal, so isatty() is true
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypotez_providers", "chat", "-m", MODEL],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        os.close(follower)
        os.write(leader, b"First question\nSecond question\n" + ending)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        os.close(leader)
    assert process.returncode == 0, stderr
    assert stdout == "The fake answers.\nThe fake answers.\n"
    assert stderr.count("> ") == 3
    first, second = (request.json["messages"] for request in gravity.requests)
    assert first == [{"role": "user", "content": "First question"}]
    assert second == [
        {"role": "user", "content": "First question"},
        {"role": "assistant", "content": "The fake answers."},
        {"role": "user", "content": "Second question"},
    ]
    with sqlite3.connect(data_home / "hypotez" / "logs.db") as connection:
        rows = connection.execute("SELECT conversation_id, prompt FROM calls").fetchall()
    assert [prompt for _, prompt in rows] == ["First question", "Second question"]
    assert len({conversation for conversation, _ in rows}) == 1


def test_ctrl_c_ends_the_interactive_chat_with_exit_0(gravity, data_home):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    environ.update(XDG_DATA_HOME=str(data_home), HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url)
    environ.setdefault("XDG_CONFIG_HOME", "/nonexistent")
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypotez_providers", "chat", "-m", MODEL],
            stdin=follower,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environ,
        )
        os.close(follower)
        os.write(leader, b"First question\n")
        assert process.stdout is not None
        assert process.stdout.readline() == "The fake answers.\n"  # now waiting for a line
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        os.close(leader)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert len(gravity.requests) == 1
