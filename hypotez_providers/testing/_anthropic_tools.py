"""FakeAnthropic's tool use and JSON answers: the request checks and the wire shapes.

What the real Messages API checks in a request that offers tools, carries ``tool_use`` and
``tool_result`` blocks, or asks for structured output (``output_config.format``); and what it
answers: whole ``tool_use`` blocks, or streamed ``content_block_start`` / ``input_json_delta``
/ ``content_block_stop`` events.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_CHOICES = ("auto", "any", "tool", "none")
Problem = tuple[int, str]


def tools_problem(payload: dict[str, Any]) -> Problem | None:
    """What the API says about ``tools`` and ``tool_choice`` (status and message), or None."""
    tools = payload.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            return 400, "tools: Input should be a valid list"
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                return 400, f"tools.{index}: Input should be a valid dictionary"
            name = tool.get("name")
            if not isinstance(name, str):
                return 400, f"tools.{index}.custom.name: Field required"
            if not _NAME.match(name):
                return 400, (
                    f"tools.{index}.custom.name: String should match pattern "
                    "'^[a-zA-Z0-9_-]{1,64}$'"
                )
            schema = tool.get("input_schema")
            if not isinstance(schema, dict):
                return 400, f"tools.{index}.custom.input_schema: Field required"
            if schema.get("type") != "object":
                return 400, f"tools.{index}.custom.input_schema.type: Input should be 'object'"
            if name in names:
                return 400, "tools: Tool names must be unique."
            names.append(name)
    choice = payload.get("tool_choice")
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in _CHOICES:
        return 400, (
            "tool_choice: Input tag '" + str(kind) + "' found using 'type' does not match any "
            "of the expected tags: 'auto', 'any', 'tool', 'none'"
        )
    if not names:
        return 400, "tool_choice: tool_choice may only be specified while providing tools."
    if kind == "tool" and choice.get("name") not in names:
        return 400, f"tool_choice: Tool '{choice.get('name')}' not found in provided tools"
    return None


def _blocks(message: Any, kind: str) -> list[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == kind]


def conversation_problem(messages: list[Any]) -> Problem | None:
    """What the API says about ``tool_use`` and ``tool_result`` blocks that do not pair up.

    The ``tool_use`` ids of an assistant message must each have a ``tool_result`` in the very
    next (user) message, whose ``tool_result`` blocks come before anything else; a
    ``tool_result`` must answer a ``tool_use`` of the message right before it.
    """
    for index, message in enumerate(messages):
        results = _blocks(message, "tool_result")
        if results:
            earlier = messages[index - 1] if index else None
            asked = {block.get("id") for block in _blocks(earlier, "tool_use")}
            for block in results:
                if block.get("tool_use_id") not in asked:
                    return 400, (
                        f"messages.{index}.content: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous "
                        "message."
                    )
            content = message["content"]
            if any(block.get("type") != "tool_result" for block in content[: len(results)]):
                return 400, (
                    f"messages.{index}.content: `tool_result` blocks must come first in the "
                    "user message, before any other content."
                )
        uses = _blocks(message, "tool_use")
        if uses and message.get("role") == "assistant":
            later = messages[index + 1] if index + 1 < len(messages) else None
            answered = {block.get("tool_use_id") for block in _blocks(later, "tool_result")}
            missing = [str(block.get("id")) for block in uses if block.get("id") not in answered]
            if missing and later is not None:
                return 400, (
                    f"messages.{index + 1}: `tool_use` ids were found without `tool_result` "
                    f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
    return None


def format_problem(payload: dict[str, Any]) -> Problem | None:
    """What the API says about ``output_config.format``, or None."""
    config = payload.get("output_config")
    if config is None:
        return None
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return 400, "output_config.format.type: Input should be 'json_schema'"
    if not isinstance(fmt.get("schema"), dict):
        return 400, "output_config.format.schema: Field required"
    return None


def wants_json(payload: dict[str, Any]) -> bool:
    """Whether the request asks for a JSON answer (structured outputs)."""
    config = payload.get("output_config")
    return isinstance(config, dict) and isinstance(config.get("format"), dict)


def calls_to_make(
    payload: dict[str, Any], configured: Sequence[Mapping[str, str]], json_reply: Any
) -> list[dict[str, str]]:
    """The calls the fake answers with: none unless tools are offered and may be used.

    A last user message of tool results gets text. A ``tool`` choice keeps the calls of that
    tool (else one whose input is ``json_reply``, or ``{}``); ``any`` needs a call (the first
    tool's, if none is configured); ``disable_parallel_tool_use`` keeps the first.
    """
    tools = payload.get("tools") or []
    choice = payload.get("tool_choice") or {"type": "auto"}
    if not tools or choice.get("type") == "none":
        return []
    if _blocks(payload["messages"][-1], "tool_result"):
        return []  # the tool results came back: the model answers in text
    calls = [{"name": c["name"], "arguments": c.get("arguments", "{}")} for c in configured]
    if choice.get("type") == "tool":
        name = choice["name"]
        fallback = json.dumps(json_reply) if json_reply is not None else "{}"
        calls = [call for call in calls if call["name"] == name] or [
            {"name": name, "arguments": fallback}
        ]
    elif choice.get("type") == "any" and not calls:
        calls = [{"name": tools[0]["name"], "arguments": "{}"}]
    if choice.get("disable_parallel_tool_use"):
        calls = calls[:1]
    return calls


def tool_use_blocks(ids: list[str], calls: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The ``tool_use`` content blocks of a whole answer."""
    return [
        {
            "type": "tool_use",
            "id": ident,
            "name": call["name"],
            "input": json.loads(call["arguments"]),
        }
        for ident, call in zip(ids, calls, strict=True)
    ]


def streamed_blocks(
    ids: list[str], calls: list[dict[str, str]], size: int
) -> list[tuple[str, dict[str, Any]]]:
    """The events (name, data) that stream the calls, one block after another.

    Each call is a ``content_block_start`` (its id and name, input ``{}``), its arguments
    ``size`` characters at a time as ``input_json_delta`` pieces (cutting tokens), and a
    ``content_block_stop``.
    """
    events: list[tuple[str, dict[str, Any]]] = []
    for index, (ident, call) in enumerate(zip(ids, calls, strict=True)):
        block = {"type": "tool_use", "id": ident, "name": call["name"], "input": {}}
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        text = call["arguments"]
        for start in range(0, len(text), size):
            delta = {"type": "input_json_delta", "partial_json": text[start : start + size]}
            events.append(
                (
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events
