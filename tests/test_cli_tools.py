"""``hypotez chat`` with tools, a JSON schema and images, run as a subprocess against fakes.

Tool calls come back as one JSON document on stdout, the finish reason with ``-v`` on stderr;
``--schema`` asks for JSON to a schema; ``-a`` sends images; bad options are usage errors
(exit 2) naming the option, and nothing is sent.
"""

from __future__ import annotations

import base64
import json

import pytest

from hypotez_providers.testing import FakeOpenAI

from .test_cli import GRAVITY_PATH, MODEL, run

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
PARIS = {"name": "get_weather", "arguments": '{"city": "Paris"}'}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
# The smallest PNG: one transparent pixel.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
VISION = """
[endpoints.vision]
base_url = "{url}/v1"
models = ["vision-1"]
images = true
"""


@pytest.fixture
def gravity():
    with FakeOpenAI(
        path=GRAVITY_PATH, models=None, tool_calls=[PARIS], json_reply={"city": "Paris"}
    ) as fake:
        yield fake


def chat(fake, *arguments, **environ):
    return run("chat", "-m", MODEL, *arguments, HYPOTEZ_GRAVITYENGINE_BASE_URL=fake.url, **environ)


@pytest.mark.parametrize("stream", [[], ["--no-stream"]], ids=["streamed", "whole"])
def test_tool_calls_are_printed_as_one_json_document_and_v_shows_the_finish_reason(
    tmp_path, gravity, stream
):
    tool_file = tmp_path / "weather.json"
    tool_file.write_text(json.dumps(WEATHER))
    result = chat(
        gravity, "--tool", str(tool_file), "--tool", json.dumps([CLOCK]), "-v", *stream, "Paris?"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {"id": "call_fake1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert "finish reason: tool_calls" in result.stderr
    assert "answered by gravityengine" in result.stderr
    assert gravity.requests[0].json["tools"] == [WEATHER, CLOCK]


def test_tool_call_arguments_that_are_not_json_are_printed_as_the_raw_string():
    cut = {"name": "get_weather", "arguments": '{"city": "Par'}
    with FakeOpenAI(path=GRAVITY_PATH, models=None, tool_calls=[cut]) as fake:
        result = chat(fake, "--tool", json.dumps(WEATHER), "Paris?")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["arguments"] == '{"city": "Par'


def test_a_plain_answer_is_unchanged_when_tools_are_offered_but_not_called():
    with FakeOpenAI(path=GRAVITY_PATH, models=None, reply="No call.") as fake:
        result = chat(fake, "--tool", json.dumps(WEATHER), "-v", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "No call.\n"
    assert "finish reason" not in result.stderr


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "file"])
def test_schema_is_sent_as_a_strict_json_schema_named_answer_and_the_json_is_printed(
    tmp_path, gravity, inline
):
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA))
    result = chat(gravity, "--schema", json.dumps(SCHEMA) if inline else str(schema_file), "x")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"city": "Paris"}
    assert gravity.requests[0].json["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
    }


def test_attach_sends_a_png_file_as_a_data_url_and_an_https_url_as_is(tmp_path):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    config = tmp_path / "config.toml"
    with FakeOpenAI(models=["vision-1"], reply="A dot.") as fake:
        config.write_text(VISION.format(url=fake.url))
        result = run(
            "chat",
            "-m",
            "vision-1",
            "-a",
            str(image),
            "--attach",
            "https://example.com/cat.jpg",
            "What is this?",
            HYPOTEZ_CONFIG=str(config),
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "A dot.\n"
    [message] = fake.requests[0].json["messages"]
    assert message["content"] == [
        {"type": "text", "text": "What is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
        },
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]


def test_an_image_for_a_text_only_provider_is_not_sent_and_the_skip_says_why(tmp_path, gravity):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = chat(gravity, "-a", str(image), "What is this?")
    assert result.returncode == 1
    assert "gravityengine (gpt-3.5-turbo-16k): skipped: cannot serve this request: no images" in (
        result.stderr
    )
    assert gravity.requests == []


@pytest.mark.parametrize(
    ("arguments", "named", "says"),
    [
        (["--tool", "{not json"], "'--tool'", "not valid JSON"),
        (["--tool", "missing.json"], "'--tool'", "no such file"),
        (["--tool", '{"type": "function"}'], "'--tool'", "function"),
        (["--tool", json.dumps(WEATHER), "-o", "tools=[]"], "--tool", "not both"),
        (["--schema", "[1, 2]"], "'--schema'", "a JSON Schema is an object"),
        (["--schema", "missing.json"], "'--schema'", "no such file"),
        (["-a", "notes.txt"], "'--attach'", "is not an image"),
        (["-a", "missing.png"], "'--attach'", "no such file"),
    ],
    ids=[
        "tool-bad-json",
        "tool-no-file",
        "tool-bad-shape",
        "tool-twice",
        "schema-not-object",
        "schema-no-file",
        "attach-not-image",
        "attach-no-file",
    ],
)
def test_bad_options_are_usage_errors_naming_the_option_and_nothing_is_sent(
    tmp_path, gravity, arguments, named, says
):
    (tmp_path / "notes.txt").write_text("not an image")
    result = run(
        "chat",
        "-m",
        MODEL,
        *[str(tmp_path / a) if a in ("notes.txt", "missing.png") else a for a in arguments],
        "x",
        HYPOTEZ_GRAVITYENGINE_BASE_URL=gravity.url,
    )
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and says in result.stderr
    assert gravity.requests == []
