"""Tools, tool calls, tool results and structured output mapped to the Messages API. No I/O.

The caller speaks OpenAI's chat shapes (``hypotez_providers.tools``); this module writes them
as Anthropic's: ``tools`` with ``input_schema``, ``tool_choice`` objects, ``tool_use`` blocks
in the assistant's turn and ``tool_result`` blocks in the user's.

Structured output:

- ``response_format`` ``json_schema`` uses the Messages API's native structured outputs,
  ``output_config: {"format": {"type": "json_schema", "schema": ...}}``: the answer is text
  that follows the schema, as OpenAI's is (models that have it: see the plugin's
  ``model_capabilities``).
- ``json_object`` (any JSON object, no schema) has no native form: Anthropic's constrained
  decoding wants every object closed (``additionalProperties: false``). It is asked for the way
  Anthropic documents for JSON before structured outputs: a tool named :data:`ANSWER_TOOL`
  whose input is any object, which the model must call; its input comes back to the caller as
  the answer's text (and its call is not reported as a tool call).
"""

from __future__ import annotations

import json
from typing import Any

from hypotez_providers import CompletionOptions, InvalidInput, NamedToolChoice

#: The tool a ``json_object`` request is answered through; its input is the answer's text.
ANSWER_TOOL = "json_answer"
_ANSWER_TOOL_SPEC = {
    "name": ANSWER_TOOL,
    "description": "Give your whole answer as a JSON object: the input is the answer.",
    "input_schema": {"type": "object"},
}


def answer_tool(options: CompletionOptions) -> str | None:
    """The name of the tool whose input is the answer's text, when the request needs one."""
    fmt = options.response_format
    return ANSWER_TOOL if fmt is not None and fmt.type == "json_object" else None


def tool_fields(options: CompletionOptions) -> dict[str, Any]:
    """The request fields for the options' tools, tool choice and response format.

    ``tool_choice``: ``auto`` → ``{"type": "auto"}``, ``required`` → ``{"type": "any"}``, a
    named function → ``{"type": "tool", "name": ...}``, ``none`` → ``{"type": "none"}``;
    ``parallel_tool_calls: false`` adds ``disable_parallel_tool_use: true`` to it (an ``auto``
    choice when none was given). A tool choice is only sent with tools, as the API requires.
    """
    fields: dict[str, Any] = {}
    tools = [_tool(tool.function) for tool in options.tools or ()]
    choice = _choice(options)
    if answer_tool(options):
        tools.append(_ANSWER_TOOL_SPEC)
        if not isinstance(options.tool_choice, NamedToolChoice):
            # The model answers through a tool of the caller's or through the answer tool.
            choice = {"type": "any"} if options.wants_tools else _named(ANSWER_TOOL)
    if tools:
        fields["tools"] = tools
        if choice is not None:
            if options.parallel_tool_calls is False and choice["type"] != "none":
                choice["disable_parallel_tool_use"] = True
            fields["tool_choice"] = choice
    fmt = options.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.json_schema is not None:
        fields["output_config"] = {
            "format": {"type": "json_schema", "schema": fmt.json_schema.json_schema}
        }
    return fields


def _tool(function: Any) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": function.name}
    if function.description is not None:
        tool["description"] = function.description
    tool["input_schema"] = function.parameters
    if function.strict is not None:
        tool["strict"] = function.strict
    return tool


def _choice(options: CompletionOptions) -> dict[str, Any] | None:
    choice = options.tool_choice
    if isinstance(choice, NamedToolChoice):
        return _named(choice.function.name)
    if choice == "required":
        return {"type": "any"}
    if choice is not None:
        return {"type": choice}  # "auto" and "none" have the same names
    if options.parallel_tool_calls is False:
        return {"type": "auto"}
    return None


def _named(name: str) -> dict[str, Any]:
    return {"type": "tool", "name": name}


def assistant_blocks(index: int, content: Any, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An assistant message that calls tools: its text (if any), then a ``tool_use`` per call.

    A call's arguments (a JSON string) become the block's ``input`` object; arguments that are
    not a JSON object are :class:`InvalidInput` (``messages[i].tool_calls[j]...``), as the API
    takes only an object there.
    """
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif content:
        blocks.extend(content)
    for position, call in enumerate(calls):
        function = call["function"]
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise InvalidInput(
                f"messages[{index}].tool_calls[{position}].function.arguments must be a JSON "
                "object for Anthropic's tool_use input, got "
                f"{str(function.get('arguments'))[:80]!r}",
                field=f"messages[{index}].tool_calls[{position}].function.arguments",
            )
        blocks.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return blocks


def tool_result_block(message: dict[str, Any], content: Any) -> dict[str, Any]:
    """A ``tool`` message as a ``tool_result`` block (its text or blocks; empty: no content)."""
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message["tool_call_id"]}
    if content:
        block["content"] = content
    return block


def results_first(content: Any) -> Any:
    """A user turn's blocks with its ``tool_result`` blocks first, as the API requires."""
    if not isinstance(content, list):
        return content
    results = [block for block in content if block.get("type") == "tool_result"]
    if not results:
        return content
    return results + [block for block in content if block.get("type") != "tool_result"]
