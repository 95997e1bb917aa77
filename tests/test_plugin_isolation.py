"""A plugin cannot take the host down: whatever it raises, short of Ctrl-C, stays its own problem.

``sys.exit`` and other ``BaseException`` subclasses raised at import, in ``provider_info``, in
``create_completion`` (when called or while its answer is read), in an observer hook or in
``register_commands`` are caught, recorded and reported; the other providers, the Router and
every ``hypotez`` command go on. Plugins are real distributions on ``sys.path``; completions
fail over to fake upstreams on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from hypotez_providers import (
    AllProvidersFailed,
    PluginFailed,
    ProviderInfo,
    Registry,
    Settings,
    UnknownProvider,
    hookimpl,
)

from ._routing import MESSAGES, MODEL, Compatible, build, outcomes

ECHO = """
from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="echo", url="https://echo.example", models=["echo-1"],
                        supports_stream=True, needs_auth=False)

@hookimpl
def create_completion(model, messages, stream):
    yield messages[-1]["content"]
"""
ECHO_COMMAND = """
from hypotez_providers import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def echo():
        '''Say something from a plugin.'''
        print("echo from a plugin command")
"""


def run(*arguments, site, **environ):
    """``hypotez ARGUMENTS`` in a subprocess that sees the distributions written to ``site``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env.update(environ)
    env.setdefault("XDG_CONFIG_HOME", os.environ.get("XDG_CONFIG_HOME", "/nonexistent"))
    env["PYTHONPATH"] = os.pathsep.join([str(site), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def load(**environ):
    return Registry(settings=Settings(), environ=environ)


def provider_names(registry):
    return [info.name for info in registry.providers()]


# -- at import ------------------------------------------------------------------------------


class Boom(BaseException):
    pass


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import sys\nsys.exit(4)\n", "import failed: SystemExit: 4"),
        ("raise SystemExit('bye')\n", "import failed: SystemExit: bye"),
        ("raise SystemExit\n", "import failed: SystemExit"),
        ("raise GeneratorExit\n", "import failed: GeneratorExit"),
        ("class Boom(BaseException):\n    pass\nraise Boom('custom')\n", "Boom: custom"),
    ],
)
def test_a_base_exception_at_import_marks_that_plugin_broken_and_nothing_else(
    plugin_distribution, source, reason
):
    plugin_distribution("hypotez-exiting", "hypotez_exiting", source, entry_name="exiting")
    plugin_distribution("hypotez-echo", "hypotez_echo_beside", ECHO, entry_name="echo")
    registry = load()
    [broken] = registry.broken()
    assert (broken.name, broken.distribution) == ("exiting", "hypotez-exiting")
    assert reason in (broken.error or "")
    assert {"echo", "gravityengine", "openai"} <= set(provider_names(registry))


def test_ctrl_c_during_an_import_still_interrupts(plugin_distribution):
    plugin_distribution("hypotez-interrupt", "hypotez_interrupt", "raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        load()


# -- provider_info ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        ("SystemExit(3)", "provider_info raised SystemExit: 3"),
        ("GeneratorExit()", "provider_info raised GeneratorExit"),
        ("BaseException('odd')", "provider_info raised BaseException: odd"),
    ],
)
def test_a_base_exception_in_provider_info_marks_the_plugin_broken(
    plugin_distribution, raised, reason
):
    source = ECHO.replace("return ProviderInfo(", f"raise {raised}; ProviderInfo(")
    plugin_distribution("hypotez-echo", "hypotez_echo_info", source, entry_name="echo")
    registry = load()
    [broken] = registry.broken()
    assert broken.name == "echo" and reason in (broken.error or "")
    assert "gravityengine" in provider_names(registry)
    with pytest.raises(UnknownProvider):
        registry.provider("echo")


# -- create_completion ------------------------------------------------------------------------

KEY = "sk-plugin-canary-0123456789abcdef"


class Misbehaving:
    """A provider whose completion raises ``error``: when called, or after ``after`` pieces."""

    def __init__(self, error, *, when="iterating", after=1):
        self.error, self.when, self.after = error, when, after
        self.closed = False

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="misbehaving", url="https://x.example", models=[MODEL], supports_stream=True,
            needs_auth=False,
        )  # fmt: skip

    @hookimpl
    def create_completion(self, model, messages, stream):
        if self.when == "called":
            raise self.error
        return self._pieces()

    def _pieces(self):
        try:
            for _ in range(self.after):
                yield "partial "
            raise self.error
        finally:
            self.closed = True


def with_fallback(plugin, fakes, settings=""):
    """A Router trying ``plugin`` first, then a healthy upstream called ``backup``."""
    backup = fakes("backup")
    router, _ = build(
        {"backup": backup.url},
        settings="[providers.misbehaving]\npriority = 10\n" + settings,
        plugins=[plugin, Compatible("backup")],
        environ={"HYPOTEZ_MISBEHAVING_API_KEY": KEY},
    )
    return router, backup


RAISED = [
    SystemExit(4),
    SystemExit(f"exiting with key {KEY}"),
    GeneratorExit(),
    Boom(f"custom, key {KEY}"),
    RuntimeError(f"ordinary, key {KEY}"),
]


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("when", ["called", "iterating"])
def test_complete_moves_on_after_a_plugin_raises_anything(fakes, error, when):
    router, backup = with_fallback(Misbehaving(error, when=when, after=0), fakes)
    answer = router.complete(MODEL, MESSAGES)
    assert (answer.text, answer.provider) == ("answer from backup", "backup")
    assert outcomes(answer.attempts) == [
        ("misbehaving", "failed", "PluginFailed"),
        ("backup", "ok", None),
    ]
    assert type(error).__name__ in answer.attempts[0].message
    assert KEY not in answer.attempts[0].message
    assert len(backup.requests) == 1


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
def test_a_stream_that_raises_anything_before_its_first_chunk_fails_over_unseen(fakes, error):
    router, _ = with_fallback(Misbehaving(error, when="called"), fakes)
    stream = router.stream(MODEL, MESSAGES)
    assert "".join(chunk.text for chunk in stream) == "answer from backup"
    assert outcomes(stream.attempts)[0] == ("misbehaving", "failed", "PluginFailed")


@pytest.mark.parametrize("error", RAISED, ids=lambda e: type(e).__name__)
def test_plugin_failed_keeps_neither_the_plugins_exception_nor_its_key(error):
    registry = Registry(
        settings=Settings(), load_entry_points=False, environ={"HYPOTEZ_MISBEHAVING_API_KEY": KEY}
    )
    provider = registry.register(Misbehaving(error))
    with pytest.raises(PluginFailed) as caught:
        list(provider.stream(MODEL, MESSAGES))
    failure = caught.value
    assert failure.__cause__ is None and failure.__context__ is None
    assert KEY not in str(failure) and KEY not in repr(failure.args)
    assert type(error).__name__ in failure.upstream_message


def test_every_provider_raising_system_exit_is_all_providers_failed_not_an_exit():
    router, _ = build({}, plugins=[Misbehaving(SystemExit(1), when="called")])
    with pytest.raises(AllProvidersFailed, match="PluginFailed"):
        router.complete(MODEL, MESSAGES)


def test_closing_a_stream_early_closes_the_plugins_generator_without_an_error(fakes):
    plugin = Misbehaving(SystemExit(1), after=5)
    router, _ = with_fallback(plugin, fakes)
    stream = router.stream(MODEL, MESSAGES)
    assert next(stream).text == "partial "
    stream.close()
    assert plugin.closed


class CleanupExits(Misbehaving):
    """A generator that calls sys.exit in its clean-up when it is closed."""

    def _pieces(self):
        try:
            while True:
                yield "more "
        finally:
            self.closed = True
            raise SystemExit("from finally")


def test_a_plugin_exiting_in_its_clean_up_does_not_replace_the_close(fakes):
    plugin = CleanupExits(None)
    router, _ = with_fallback(plugin, fakes)
    stream = router.stream(MODEL, MESSAGES)
    assert next(stream).text == "more "
    stream.close()  # no SystemExit escapes
    assert plugin.closed


def test_ctrl_c_inside_a_completion_still_interrupts(fakes):
    router, backup = with_fallback(Misbehaving(KeyboardInterrupt(), when="called"), fakes)
    with pytest.raises(KeyboardInterrupt):
        router.complete(MODEL, MESSAGES)
    assert backup.requests == []


class ExitingObserver:
    """An observer plugin that calls sys.exit on every hook."""

    @hookimpl
    def on_attempt_start(self, provider, model, attempt):
        raise SystemExit("observer")

    @hookimpl
    def on_attempt_end(self, provider, model, attempt, outcome, duration, error):
        raise SystemExit("observer")


def test_an_observer_calling_sys_exit_does_not_end_the_call(fakes):
    backup = fakes("backup")
    router, _ = build({"backup": backup.url}, plugins=[Compatible("backup"), ExitingObserver()])
    assert router.complete(MODEL, MESSAGES).text == "answer from backup"


# -- the hypotez command ----------------------------------------------------------------------


def test_sys_exit_at_import_ends_no_hypotez_command(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-exiting", "hypotez_exiting_cli", "import sys\nsys.exit(4)\n")
    site = tmp_path / "site-packages"
    listed = run("providers", "--json", site=site)
    assert listed.returncode == 0, listed.stderr
    assert "gravityengine" in listed.stdout and "openai" in listed.stdout
    plugins = run("plugins", site=site)
    assert plugins.returncode == 0, plugins.stderr
    lines = {line.split()[0]: line for line in plugins.stdout.splitlines()[1:]}
    row = lines["hypotez_exiting_cli"]
    assert "broken" in row and "SystemExit: 4" in row and "hypotez-exiting" in row


COMMAND_THAT_RAISES = """
from hypotez_providers import hookimpl

@hookimpl
def register_commands(cli):
    @cli.command()
    def half():
        '''Added before the hook fails: it must not stay.'''
        print("half")
    raise {raised}
"""
COMMAND_THAT_REPLACES = """
from hypotez_providers import hookimpl
import click

@hookimpl
def register_commands(cli):
    @cli.command(name="providers")
    def impostor():
        print("not the real providers command")
"""


@pytest.mark.parametrize("raised", ["RuntimeError('no commands today')", "SystemExit(5)"])
def test_a_register_commands_that_raises_loses_its_commands_only(
    tmp_path, plugin_distribution, raised
):
    plugin_distribution(
        "hypotez-half", "hypotez_half_cli", COMMAND_THAT_RAISES.format(raised=raised)
    )
    plugin_distribution("hypotez-echo-cmd", "hypotez_echo_cmd", ECHO_COMMAND)
    site = tmp_path / "site-packages"
    echoed = run("echo", site=site)
    assert (echoed.returncode, echoed.stdout) == (0, "echo from a plugin command\n")
    assert "warning: plugin 'hypotez_half_cli' failed to add its commands" in echoed.stderr
    assert raised.split("(")[0] in echoed.stderr
    half = run("half", site=site)
    assert half.returncode == 2 and "No such command 'half'" in half.stderr
    assert run("providers", site=site).returncode == 0


def test_a_plugin_cannot_replace_a_built_in_command(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-replacer", "hypotez_replacer_cli", COMMAND_THAT_REPLACES)
    result = run("providers", site=tmp_path / "site-packages")
    assert result.returncode == 0
    assert "not the real" not in result.stdout
    assert result.stdout.split()[0] == "NAME"
    assert "may not replace the command(s) providers" in result.stderr


IMPOSTOR = """
from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="openai", url="https://evil.example", models=["gpt-4o-mini"],
                        supports_stream=True, needs_auth=True, api_key_env="OPENAI_API_KEY")

@hookimpl
def create_completion(model, messages, stream, context):
    yield "stolen: " + str(context.api_key)
"""


def test_hypotez_plugins_shows_an_impostor_of_a_first_party_name(tmp_path, plugin_distribution):
    plugin_distribution("hypotez-aaa", "hypotez_aaa_cli", IMPOSTOR, entry_name="aaa_x")
    site = tmp_path / "site-packages"
    result = run("plugins", site=site, OPENAI_API_KEY="sk-canary-0123456789abcdef")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "broken" in lines["aaa_x"] and "hypotez-aaa" in lines["aaa_x"]
    assert "'openai' belongs to the first-party distribution hypotez-openai" in lines["aaa_x"]
    assert " ok " in lines["openai"] and "hypotez-openai" in lines["openai"]
    listed = run("providers", "--json", site=site)
    [openai] = [p for p in json.loads(listed.stdout) if p["name"] == "openai"]
    assert openai["url"] == "https://api.openai.com/v1"
