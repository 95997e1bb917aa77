"""The code in README.md and docs/ runs, against local fake upstreams, and does what it says."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from hypotez_providers import Registry, RetryPolicy, Settings
from hypotez_providers.settings import tomllib
from hypotez_providers.testing import FakeOpenAI, Fault

from ._routing import MESSAGES, MODEL, Compatible

ROOT = Path(__file__).resolve().parent.parent


def code_blocks(page: str, language: str) -> list[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def run_python(code: str, tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {key: value for key, value in os.environ.items() if not key.startswith("HYPOTEZ_")}
    env.update(environ, XDG_CONFIG_HOME=str(tmp_path / "config-home"))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )


def test_readme_call_examples_stream_and_complete_against_a_gravityengine_upstream(tmp_path):
    first, second, routed = code_blocks("README.md", "python")[:3]
    with FakeOpenAI(
        path="/api/openai/v1/chat/completions", models=None, reply="A hook is a spec."
    ) as fake:
        code = first + second + routed
        result = run_python(code, tmp_path, HYPOTEZ_GRAVITYENGINE_BASE_URL=fake.url)
    assert result.returncode == 0, result.stderr
    streamed, completed, routed_line = result.stdout.splitlines()
    assert routed_line.startswith("gravityengine ['gravityengine (gpt-3.5-turbo-16k): ok, ")
    assert streamed == "A hook is a spec."
    assert completed.startswith("A hook is a spec. stop prompt_tokens=")
    assert fake.requests[0].json["stream"] is True
    assert fake.requests[0].json["temperature"] == 0.7


def test_readme_rescue_example_restarts_a_cut_stream_and_prints_the_whole_answer(tmp_path):
    first, second, routed, rescued = code_blocks("README.md", "python")[:4]
    with FakeOpenAI(
        path="/api/openai/v1/chat/completions", models=None, reply="A hook is a spec."
    ) as fake:
        # The fourth request (the rescue example's stream) breaks after two pieces.
        fake.faults.extend([None, None, None, Fault(drop_after=2)])
        code = first + second + routed + rescued
        result = run_python(code, tmp_path, HYPOTEZ_GRAVITYENGINE_BASE_URL=fake.url)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "A hook is a spec."
    assert len(fake.requests) == 5, "the cut stream was asked again"


def test_readme_plugin_example_is_a_working_third_party_distribution(plugin_distribution):
    toml_block = code_blocks("README.md", "toml")[0]
    python_block = code_blocks("README.md", "python")[4]
    project = tomllib.loads(toml_block)["project"]
    [(entry_name, module)] = project["entry-points"]["hypotez_providers"].items()
    plugin_distribution(project["name"], module, python_block, entry_name=entry_name)
    with FakeOpenAI(models=["example-1"], reply="Hi from example") as fake:
        registry = Registry(settings=Settings(), environ={"HYPOTEZ_EXAMPLE_BASE_URL": fake.url})
        provider = registry.provider("example")
        answer = provider.complete("example-1", [{"role": "user", "content": "hello"}])
        pieces = [c.text for c in provider.stream("example-1", [{"role": "user", "content": "x"}])]
    record = next(r for r in registry.plugins() if r.provider == "example")
    assert record.distribution == "hypotez-example"
    assert answer.text == "Hi from example"
    assert "".join(pieces) == "Hi from example" and len(pieces) > 1


def test_plugins_page_smallest_provider_registers_and_answers(capsys):
    plugin_code, register_code = code_blocks("docs/plugins.md", "python")[:2]
    module = types.ModuleType("shout_module")
    exec(compile(plugin_code, "docs/plugins.md", "exec"), module.__dict__)
    exec(compile(register_code, "docs/plugins.md", "exec"), {"shout_module": module})
    assert capsys.readouterr().out == "HI THERE\n"
    registry = Registry(settings=Settings(), load_entry_points=False)
    registry.register(module)
    stream = registry.provider("shout").stream("shout-1", [{"role": "user", "content": "a b c"}])
    assert [chunk.text for chunk in stream] == ["A", " B", " C"]


@pytest.mark.parametrize(
    "page",
    [
        "README.md",
        "docs/plugins.md",
        "docs/routing.md",
        "docs/cli.md",
        "docs/providers.md",
        "docs/tools.md",
    ],
)
def test_every_python_block_at_least_compiles(page):
    for block in code_blocks(page, "python"):
        compile(block, page, "exec")


def test_routing_page_quick_start_runs_against_a_gravityengine_upstream(tmp_path):
    quick_start = code_blocks("docs/routing.md", "python")[0]
    with FakeOpenAI(path="/api/openai/v1/chat/completions", models=None, reply="Hello.") as fake:
        result = run_python(quick_start, tmp_path, HYPOTEZ_GRAVITYENGINE_BASE_URL=fake.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Hello."
    assert lines[1].startswith("gravityengine stop prompt_tokens=2")
    assert lines[2].startswith("gravityengine (gpt-3.5-turbo-16k): ok")
    assert lines[3:] == ["Hello.", "answered by gravityengine"]


def test_routing_page_failover_example_prints_what_the_page_says(tmp_path):
    blocks = code_blocks("docs/routing.md", "python")
    example = next(block for block in blocks if "closed_port_url" in block)
    result = run_python(example, tmp_path)
    assert result.returncode == 0, result.stderr
    printed = next(
        block for block in code_blocks("docs/routing.md", "text") if "healthy one" in block
    )
    assert result.stdout == printed


def test_routing_page_settings_blocks_are_valid_settings():
    from hypotez_providers.settings import parse_settings

    blocks = code_blocks("docs/routing.md", "toml")
    assert len(blocks) == 6
    settings = parse_settings("\n".join(blocks))
    assert settings.aliases["fast"][0] == "gravityengine:gpt-3.5-turbo-16k"
    assert settings.balancing.strategy_for("fast", listed=True) == "weighted"
    assert settings.providers["openai"].weight == 3
    assert settings.hedging["gpt-4o-mini"].percentile == 95
    assert settings.providers["gravityengine"].retry.attempts == 3
    assert settings.health.cooldown == 10
    assert settings.endpoints["local-vllm"].prefill is True


def test_routing_page_retry_and_health_blocks_show_every_field_at_its_default():
    from hypotez_providers import HealthPolicy, RetryPolicy

    blocks = [tomllib.loads(block) for block in code_blocks("docs/routing.md", "toml")]
    retry = next(block["retry"] for block in blocks if "retry" in block)
    health = next(block["health"] for block in blocks if "health" in block)
    assert retry == RetryPolicy().model_dump()
    assert health == HealthPolicy().model_dump()


def test_routing_page_error_table_says_what_each_error_class_does():
    from hypotez_providers import errors

    words = {"retry here": "retry", "next provider": "next", "raise": "raise"}
    rows = re.findall(
        r"^\| `(\w+)` \| [^|]+ \| ([a-z ]+) \| (yes|no) \| (yes|no) \|$",
        (ROOT / "docs/routing.md").read_text(encoding="utf-8"),
        re.M,
    )
    table = {name: (words[routing], counts, opens) for name, routing, counts, opens in rows}
    classes = {
        name: cls
        for name, cls in vars(errors).items()
        if isinstance(cls, type)
        and issubclass(cls, errors.ProviderError)
        and cls not in (errors.ProviderError, errors.TransientError, errors.PermanentError)
    }
    assert set(table) == set(classes)
    for name, cls in classes.items():
        expected = (
            cls.routing.value,
            "yes" if cls.counts_against_health else "no",
            "yes" if cls.opens_circuit else "no",
        )
        assert table[name] == expected, name


def test_routing_page_rescue_example_prints_what_the_page_says(tmp_path):
    blocks = code_blocks("docs/routing.md", "python")
    example = next(block for block in blocks if "drop_after" in block)
    result = run_python(example, tmp_path)
    assert result.returncode == 0, result.stderr
    printed = next(
        block for block in code_blocks("docs/routing.md", "text") if "restarted by" in block
    )
    assert result.stdout == printed


def test_routing_page_breaker_plugs_into_a_router_and_sees_a_circuit_open():
    code = next(b for b in code_blocks("docs/routing.md", "python") if "breaker=" in b)
    with FakeOpenAI(reply="second") as healthy, FakeOpenAI() as failing:
        failing.fail_every_request = Fault(status=503)
        environ = {"HYPOTEZ_FIRST_BASE_URL": failing.url, "HYPOTEZ_SECOND_BASE_URL": healthy.url}
        route = Settings(routes={MODEL: ("first", "second")})
        registry = Registry(settings=route, load_entry_points=False, environ=environ)
        for name in ("first", "second"):
            registry.register(Compatible(name))
        namespace: dict = {"registry": registry}
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "docs/routing.md", "exec"), namespace)
            router = namespace["router"]
            answer = router.complete(
                MODEL, MESSAGES, retry=RetryPolicy(initial_backoff=0, jitter=0)
            )
            again = router.complete(MODEL, MESSAGES)
    assert answer.text == "second"
    assert printed.getvalue() == "circuit opened: first\n"
    assert [(a.provider, a.outcome) for a in again.attempts] == [
        ("first", "skipped"),
        ("second", "ok"),
    ]


def test_routing_page_observer_plugin_registers(capsys):
    from hypotez_providers import Router
    from hypotez_providers.testing import FakeOpenAI as Fake

    observer_code = next(
        b for b in code_blocks("docs/routing.md", "python") if "class Metrics" in b
    )
    namespace: dict = {}
    exec(compile(observer_code, "docs/routing.md", "exec"), namespace)
    with Fake(path="/api/openai/v1/chat/completions", models=None) as fake:
        registry = Registry(
            settings=Settings(), environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": fake.url}
        )
        assert registry.register(namespace["Metrics"]()) is None
        Router(registry).complete("gpt-3.5-turbo-16k", [{"role": "user", "content": "x"}])
    assert "gravityengine gpt-3.5-turbo-16k ok" in capsys.readouterr().out


def test_cli_page_session_matches_the_commands_current_output(tmp_path):
    session = next(
        b for b in code_blocks("docs/cli.md", "text") if b.startswith("$ hypotez providers")
    )
    listed = session.split("\n\n")[0].splitlines()[1:]
    result = subprocess.run(
        [sys.executable, "-m", "hypotez_providers", "providers"],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("HYPOTEZ_", "OPENAI_"))},
            "XDG_CONFIG_HOME": str(tmp_path),
        },
    )
    assert result.stdout.splitlines() == listed


def test_cli_page_plugin_command_is_the_one_the_cli_tests_install():
    [block] = code_blocks("docs/cli.md", "python")
    namespace: dict = {}
    exec(compile(block, "docs/cli.md", "exec"), namespace)
    assert callable(namespace["register_commands"])


# -- docs/tools.md ---------------------------------------------------------------------------------


def tools_page_examples() -> tuple[str, list[tuple[str, str]]]:
    """The page's setup block, and each later python block with the text block after it."""
    text = (ROOT / "docs/tools.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", text, re.S)
    setup = blocks[0][1]
    examples = [
        (code, blocks[index + 1][1])
        for index, (language, code) in enumerate(blocks[1:-1], start=1)
        if language == "python" and blocks[index + 1][0] == "text"
    ]
    return setup, examples


TOOLS_PAGE_EXAMPLES = [
    "tool-results",
    "streaming",
    "structured",
    "images-routing",
    "anthropic-tools-images-schema",
    "ollama-tools-choice-format",
]


@pytest.mark.parametrize("number", range(len(TOOLS_PAGE_EXAMPLES)), ids=TOOLS_PAGE_EXAMPLES)
def test_tools_page_example_prints_what_the_page_says(tmp_path, number):
    setup, examples = tools_page_examples()
    assert len(examples) == len(TOOLS_PAGE_EXAMPLES)
    code, printed = examples[number]
    result = run_python(setup + "\n" + code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == printed


def test_tools_page_cli_session_matches_the_commands_output(tmp_path):
    import base64
    import json
    import shlex

    setup, _ = tools_page_examples()
    namespace: dict = {}
    exec(compile(setup, "docs/tools.md", "exec"), namespace)
    (tmp_path / "weather.json").write_text(json.dumps(namespace["WEATHER"]))
    (tmp_path / "dot.png").write_bytes(
        base64.b64decode(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
        )
    )
    [session] = code_blocks("docs/tools.md", "console")
    commands = re.findall(r"^\$ (.*)\n((?:(?!\$ ).*\n)*)", session, re.M)
    assert len(commands) == 4
    env = {k: v for k, v in os.environ.items() if not k.startswith("HYPOTEZ_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config-home")
    duration = re.compile(r"\d+\.\d{3}s")
    with FakeOpenAI(
        path="/api/openai/v1/chat/completions",
        models=None,
        tool_calls=[namespace["PARIS"]],
        json_reply={"city": "Paris", "celsius": 21},
    ) as fake:
        env["HYPOTEZ_GRAVITYENGINE_BASE_URL"] = fake.url
        for command, shown in commands:
            program, *arguments = shlex.split(command)
            assert program == "hypotez"
            result = subprocess.run(
                [sys.executable, "-m", "hypotez_providers", *arguments],
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp_path,
                timeout=60,
            )
            output = duration.sub("0.000s", result.stdout + result.stderr)
            assert output == duration.sub("0.000s", shown), command
    assert len(fake.requests) == 2, "the image and the bad schema were not sent"
