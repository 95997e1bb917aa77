"""The options of an Anthropic Messages request as keyword options for the router.

``max_tokens``, ``temperature``, ``top_p``, ``stop_sequences`` (``stop``), ``top_k`` (in
``extra``), custom ``tools`` (OpenAI's function shape), ``tool_choice`` (``auto``, ``any`` →
``required``, ``tool`` → named, ``none``; ``disable_parallel_tool_use`` →
``parallel_tool_calls=False``) and ``output_config.format`` (``response_format``). Extended
``thinking`` (other than disabled), ``output_config.effort`` and server tools are refused.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InvalidInput
from ._anthropic_shapes import list_at, object_at, only_known, shown, tool_name


def request_options(request: dict[str, Any]) -> dict[str, Any]:
    """The router's keyword options for the Anthropic request ``request`` (a JSON object)."""
    max_tokens = request.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidInput(
            f"max_tokens: required, a whole number of at least 1, got {shown(max_tokens)}",
            field="max_tokens",
        )
    options: dict[str, Any] = {"max_tokens": max_tokens}
    for name in ("temperature", "top_p"):
        if request.get(name) is not None:
            options[name] = _number(request[name], name)
    top_k = request.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InvalidInput(
                f"top_k: must be a whole number of at least 1, got {shown(top_k)}", field="top_k"
            )
        options["extra"] = {"top_k": top_k}
    stop = request.get("stop_sequences")
    if stop is not None:
        sequences = list_at(stop, "stop_sequences", "a list of strings")
        for index, sequence in enumerate(sequences):
            if not isinstance(sequence, str) or not sequence:
                raise InvalidInput(
                    f"stop_sequences.{index}: must be a non-empty string",
                    field=f"stop_sequences.{index}",
                )
        if sequences:
            options["stop"] = list(sequences)
    _thinking(request.get("thinking"))
    options.update(_output_config(request.get("output_config")))
    names = []
    if request.get("tools") is not None:
        options["tools"] = [
            _tool(item, f"tools.{index}")
            for index, item in enumerate(list_at(request["tools"], "tools", "a list of tools"))
        ]
        names = [tool["function"]["name"] for tool in options["tools"]]
    if request.get("tool_choice") is not None:
        options.update(_tool_choice(request["tool_choice"], names))
    return options


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"{field}: must be a number, got {shown(value)}", field=field)
    return value


def _thinking(value: object) -> None:
    if value is None:
        return
    config = object_at(value, "thinking", "a thinking configuration")
    if config.get("type") != "disabled":
        raise InvalidInput(
            "thinking: extended thinking is not supported by this gateway; remove thinking "
            "or send {'type': 'disabled'}",
            field="thinking",
        )


def _output_config(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    config = object_at(value, "output_config", "an output configuration")
    only_known(config, "output_config", ("format", "effort"), "output_config has format")
    if config.get("effort") is not None:
        raise InvalidInput(
            "output_config.effort: not supported by this gateway; remove it",
            field="output_config.effort",
        )
    if config.get("format") is None:
        return {}
    form = object_at(config["format"], "output_config.format", "an output format")
    only_known(form, "output_config.format", ("type", "schema"), "a json_schema format")
    if form.get("type") != "json_schema":
        raise InvalidInput(
            "output_config.format.type: must be 'json_schema'", field="output_config.format.type"
        )
    schema = object_at(form.get("schema"), "output_config.format.schema", "a JSON Schema")
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema},
        }
    }


def _tool(item: object, field: str) -> dict[str, Any]:
    tool = object_at(item, field, "a tool")
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise InvalidInput(
            f"{field}.type: server tools ({shown(kind)}) are not supported by this gateway; "
            "define the tool with name, description and input_schema",
            field=f"{field}.type",
        )
    known = ("type", "name", "description", "input_schema", "strict", "cache_control",
             "eager_input_streaming")  # fmt: skip
    only_known(tool, field, known, "a tool has name, description and input_schema")
    function: dict[str, Any] = {"name": tool_name(tool.get("name"), f"{field}.name")}
    description = tool.get("description")
    if description is not None:
        if not isinstance(description, str):
            raise InvalidInput(
                f"{field}.description: must be a string", field=f"{field}.description"
            )
        function["description"] = description
    schema = object_at(tool.get("input_schema"), f"{field}.input_schema", "a JSON Schema")
    if schema.get("type") != "object":
        raise InvalidInput(
            f"{field}.input_schema.type: must be 'object', got {shown(schema.get('type'))}",
            field=f"{field}.input_schema.type",
        )
    function["parameters"] = schema
    strict = tool.get("strict")
    if strict is not None:
        if not isinstance(strict, bool):
            raise InvalidInput(f"{field}.strict: must be true or false", field=f"{field}.strict")
        function["strict"] = strict
    return {"type": "function", "function": function}


def _tool_choice(value: object, names: list[str]) -> dict[str, Any]:
    choice = object_at(value, "tool_choice", "a tool choice")
    kind = choice.get("type")
    keys = ("type", "disable_parallel_tool_use") + (("name",) if kind == "tool" else ())
    only_known(choice, "tool_choice", keys, f"a tool choice of type {shown(kind)}")
    options: dict[str, Any] = {}
    if kind == "none":
        return {"tool_choice": "none"}
    if kind not in ("auto", "any", "tool"):
        raise InvalidInput(
            f"tool_choice.type: must be 'auto', 'any', 'tool' or 'none', got {shown(kind)}",
            field="tool_choice.type",
        )
    if not names:
        raise InvalidInput(
            f"tool_choice: {shown(kind)} needs tools to choose from; add tools or remove "
            "tool_choice",
            field="tool_choice",
        )
    if kind == "tool":
        name = choice.get("name")
        if name not in names:
            raise InvalidInput(
                f"tool_choice.name: {shown(name)} is not one of the tools ({', '.join(names)})",
                field="tool_choice.name",
            )
        options["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        options["tool_choice"] = "auto" if kind == "auto" else "required"
    disable = choice.get("disable_parallel_tool_use", False)
    if not isinstance(disable, bool):
        raise InvalidInput(
            "tool_choice.disable_parallel_tool_use: must be true or false",
            field="tool_choice.disable_parallel_tool_use",
        )
    if disable:
        options["parallel_tool_calls"] = False
    return options
