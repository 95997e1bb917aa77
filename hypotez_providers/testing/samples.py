"""Sample tools and tool calls, the same in every vendor's tests (and a plugin author's).

Two tools in OpenAI's shape (``WEATHER_TOOL`` with a required argument, ``CLOCK_TOOL``), and
two calls a fake can be told to make (``PARIS_CALL``, ``ROME_CALL``: ``tool_calls=[...]``).
"""

from __future__ import annotations

from typing import Any

#: A tool with a described, required argument.
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
            "required": ["city"],
        },
    },
}
#: A second tool, without description or required arguments.
CLOCK_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
#: Both tools, as ``tools=`` takes them.
SAMPLE_TOOLS = [WEATHER_TOOL, CLOCK_TOOL]
#: Calls of ``get_weather`` a fake makes when given ``tool_calls=[PARIS_CALL, ...]``.
PARIS_CALL = {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "celsius"}'}
ROME_CALL = {"name": "get_weather", "arguments": '{"city": "Rome", "unit": "celsius"}'}
