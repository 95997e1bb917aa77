"""Tools, tool calls and structured output, in the OpenAI chat shape every provider maps from.

A caller passes ``tools=[...]`` (and maybe ``tool_choice``, ``parallel_tool_calls``,
``response_format``) as options; a model that calls a tool answers with
:class:`ToolCall` objects (``Completion.tool_calls``, finish reason ``"tool_calls"``). Streamed,
the calls arrive as :class:`ToolCallDelta` pieces that a :class:`ToolCallAssembler` puts back
together; the chunk that ends them carries the assembled calls.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: What a tool's name may be, as the vendors accept it (OpenAI's rule, the strictest).
TOOL_NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"


class FunctionDefinition(BaseModel):
    """A function the model may call: its name, what it does, and its JSON Schema parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN, description="Letters, digits, '_', '-'; ≤ 64.")
    description: str | None = None
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="A JSON Schema whose type is 'object'.",
    )
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _an_object_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if schema.get("type", "object") != "object":
            raise ValueError(
                "parameters must be a JSON Schema of type 'object' (e.g. {'type': 'object', "
                "'properties': {...}}), got type " + repr(schema.get("type"))
            )
        return schema


class Tool(BaseModel):
    """``{"type": "function", "function": {...}}``: one tool offered to the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(BaseModel):
    """The function a ``tool_choice`` names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)


class NamedToolChoice(BaseModel):
    """``{"type": "function", "function": {"name": ...}}``: the model must call this one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class JsonSchemaFormat(BaseModel):
    """The schema an answer must follow: a name, the JSON Schema, and whether strictly."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    json_schema: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """``{"type": "json_object"}``, or ``{"type": "json_schema", "json_schema": {...}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_when_asked(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("type 'json_schema' needs json_schema={'name': ..., 'schema': {...}}")
        return self

    @property
    def structured(self) -> bool:
        """Whether the answer must be JSON (an object, or one following a schema)."""
        return self.type != "text"

    def wire(self) -> dict[str, Any]:
        """The OpenAI request field, as sent."""
        return self.model_dump(exclude_none=True, by_alias=True)


class ToolCall(BaseModel):
    """A call the model made: its id, the function's name and the arguments as raw JSON.

    ``arguments`` is exactly what the model wrote (it may, rarely, not be valid JSON);
    :attr:`parsed` is it decoded, or ``None`` when it is not JSON.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    arguments: str = "{}"

    @property
    def parsed(self) -> Any:
        """The arguments decoded from JSON (``None`` if they are not valid JSON)."""
        try:
            return json.loads(self.arguments or "{}")
        except ValueError:
            return None

    def wire(self) -> dict[str, Any]:
        """The call as an assistant message's ``tool_calls`` entry (OpenAI's shape)."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


class ToolCallDelta(BaseModel):
    """A streamed piece of tool call number ``index``: its id and name first, then arguments."""

    model_config = ConfigDict(frozen=True)

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ToolCallAssembler:
    """Puts streamed :class:`ToolCallDelta` pieces back together into whole :class:`ToolCall`.

    Feed every delta with :meth:`add`, in order; :meth:`finish` returns the calls by index.
    Any split of a call's pieces (arguments cut mid-token included) gives the same calls.
    """

    __slots__ = ("_calls",)

    def __init__(self) -> None:
        self._calls: dict[int, list[Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, delta: ToolCallDelta) -> None:
        """Take one piece."""
        call = self._calls.get(delta.index)
        if call is None:
            call = self._calls[delta.index] = [None, None, []]
        if delta.id:
            call[0] = delta.id
        if delta.name and delta.name != call[1]:
            # OpenAI sends the name once; some compatible servers repeat it in every piece.
            call[1] = delta.name if call[1] is None else call[1] + delta.name
        if delta.arguments:
            call[2].append(delta.arguments)

    def finish(self) -> tuple[ToolCall, ...]:
        """The assembled calls, by index; a call never given an id gets ``call_<index>``."""
        calls = tuple(
            ToolCall(
                id=call[0] or f"call_{index}",
                name=call[1] or "",
                arguments="".join(call[2]) or "{}",
            )
            for index, call in sorted(self._calls.items())
        )
        self._calls = {}
        return calls
