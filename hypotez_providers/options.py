"""Generation options (temperature, max_tokens, ...), validated before any request is sent."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import InvalidInput
from .tools import NamedToolChoice, ResponseFormat, Tool, ToolChoice
from .validation import FieldProblem, invalid_input_from, json_problem

#: Request fields the library sets from the call itself; ``extra`` may not name them.
LIBRARY_FIELDS = ("model", "messages", "stream", "stream_options")


class CompletionOptions(BaseModel):
    """The sampling options a caller may pass; every field is optional.

    A field left unset is not sent, so the provider's own default (or the plugin's) applies.
    Options particular to one vendor go in ``extra`` and are merged into the request as given.
    ``extra`` must be strict JSON (finite numbers, string keys) and may not name a field the
    library sets from the call itself (:data:`LIBRARY_FIELDS`: model, messages, streaming). It
    may name an option above on purpose, to send a value outside its usual range to a vendor
    that takes it; it then wins over the named option.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    tools: tuple[Tool, ...] | None = Field(
        None, description="Functions the model may call (OpenAI's shape)."
    )
    tool_choice: ToolChoice | None = Field(
        None, description="'auto', 'none', 'required', or one named function."
    )
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = Field(
        None, description="Ask for JSON: {'type': 'json_object'} or a json_schema."
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tool_choice_fits_the_tools(self) -> CompletionOptions:
        names = [tool.function.name for tool in self.tools or ()]
        if len(set(names)) != len(names):
            raise FieldProblem("tools", "tools: two tools have the same name; names must differ")
        choice = self.tool_choice
        if choice is None or choice == "none":
            return self
        if not names:
            raise FieldProblem("tool_choice", "tool_choice: there are no tools to choose from")
        if isinstance(choice, NamedToolChoice) and choice.function.name not in names:
            raise FieldProblem(
                "tool_choice",
                f"tool_choice: names {choice.function.name!r}, which is not one of the tools "
                f"({', '.join(names)})",
            )
        return self

    @property
    def wants_tools(self) -> bool:
        """Whether the request offers tools (and does not forbid their use)."""
        return bool(self.tools) and self.tool_choice != "none"

    @property
    def wants_structure(self) -> bool:
        """Whether the request asks for a JSON answer."""
        return self.response_format is not None and self.response_format.structured

    @field_validator("extra", mode="before")
    @classmethod
    def _strict_extra(cls, extra: Any) -> Any:
        if not isinstance(extra, Mapping):
            return extra  # pydantic's own message: "Input should be a valid dictionary"
        for name in extra:
            field = f"extra.{name}"
            if name in LIBRARY_FIELDS:
                raise FieldProblem(
                    field,
                    f"{field}: {name!r} is set by the library from the call itself; extra "
                    f"cannot override {', '.join(LIBRARY_FIELDS)}",
                )
        problem = json_problem(dict(extra), "extra")
        if problem is not None:
            raise problem
        return extra

    def wire(self) -> dict[str, Any]:
        """The options that were set, as request fields (OpenAI's shapes), ``extra`` last."""
        fields: dict[str, Any] = {}
        for name, value in self:
            if value is None or name == "extra":
                continue
            if name == "tools":
                value = [tool.model_dump(exclude_none=True) for tool in value]
            elif isinstance(value, BaseModel):
                value = value.model_dump(exclude_none=True, by_alias=True)
            fields[name] = value
        fields.update(self.extra)
        return fields


_KNOWN = tuple(name for name in CompletionOptions.model_fields if name != "extra")


def validate_options(options: dict[str, Any]) -> CompletionOptions:
    """Build :class:`CompletionOptions` from keyword arguments, or raise :class:`InvalidInput`.

    An unknown name is reported with the known ones and the way to pass a vendor-specific option.
    """
    unknown = sorted(set(options) - set(CompletionOptions.model_fields))
    if unknown:
        name = unknown[0]
        raise InvalidInput(
            f"unknown option {name!r}: known options are {', '.join(_KNOWN)}; pass a "
            f"provider-specific option as extra={{{name!r}: ...}}",
            field=name,
        )
    try:
        return CompletionOptions(**options)
    except ValidationError as error:
        raise invalid_input_from(error, "") from None
