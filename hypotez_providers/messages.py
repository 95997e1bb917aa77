"""Chat messages: the validated input every provider receives.

Providers get messages as plain dictionaries in the OpenAI chat shape (``{"role": ..., "content":
...}``), after validation here, so a provider written in the seed's style can index them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import InvalidInput
from .tools import TOOL_NAME_PATTERN
from .validation import invalid_input_from

Role = Literal["system", "user", "assistant", "tool", "developer"]


class TextPart(BaseModel):
    """A piece of text inside a multi-part message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["text"] = "text"
    text: str


class ImageURL(BaseModel):
    """Where an image is: an ``https:`` URL or a ``data:`` URL, and the detail level wanted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _https_or_data(cls, url: str) -> str:
        if url.startswith("data:"):
            header = url[5:].partition(",")[0]
            if "," not in url or not header.split(";")[0].startswith("image/"):
                raise ValueError(
                    "a data: URL must name an image media type and carry its data, e.g. "
                    "'data:image/png;base64,iVBOR...'"
                )
            return url
        if not url.startswith(("https://", "http://")):
            raise ValueError("an image URL must be https://... or a data:image/...;base64,... URL")
        return url


class ImagePart(BaseModel):
    """An image inside a multi-part message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class ToolCallFunction(BaseModel):
    """The function part of an assistant message's tool call: its name and JSON arguments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=TOOL_NAME_PATTERN)
    arguments: str = "{}"


class MessageToolCall(BaseModel):
    """A tool call in an assistant message, as the model made it (OpenAI's shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    type: Literal["function"] = "function"
    function: ToolCallFunction


class Message(BaseModel):
    """One chat message: a role and its content (text, or a list of text and image parts).

    An assistant message may carry ``tool_calls`` (then its content may be empty or absent);
    a ``tool`` message answers one of them and names it in ``tool_call_id``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    tool_calls: list[MessageToolCall] | None = None
    content: str | list[ContentPart] | None = Field(None, validate_default=True)
    name: str | None = None
    tool_call_id: str | None = None

    @field_validator("tool_calls")
    @classmethod
    def _only_the_assistant_calls(
        cls, calls: list[MessageToolCall] | None, info: ValidationInfo
    ) -> list[MessageToolCall] | None:
        if calls is not None and info.data.get("role") != "assistant":
            raise ValueError("only an assistant message carries tool_calls")
        return calls

    @field_validator("content")
    @classmethod
    def _content_unless_a_tool_call(
        cls, content: str | list[Any] | None, info: ValidationInfo
    ) -> str | list[Any] | None:
        if content is None and not info.data.get("tool_calls"):
            raise ValueError(
                "Field required (only an assistant message with tool_calls may omit content)"
            )
        return content

    @model_validator(mode="after")
    def _a_tool_message_names_its_call(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError(
                "a tool message answers a tool call: set tool_call_id to the call's id"
            )
        return self


_MESSAGES = TypeAdapter(list[Message])


def validate_messages(messages: Sequence[Message | dict[str, Any]]) -> list[dict[str, Any]]:
    """Check ``messages`` and return them as plain dictionaries ready for a provider.

    Raises :class:`InvalidInput` naming the bad field (``messages[1].role``) and the fix.
    """
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise InvalidInput(
            "messages must be a list of {'role': ..., 'content': ...} dictionaries, "
            f"not {type(messages).__name__}",
            field="messages",
        )
    if not messages:
        raise InvalidInput(
            "messages is empty: pass at least one message, "
            "e.g. [{'role': 'user', 'content': 'Hi'}]",
            field="messages",
        )
    try:
        parsed = _MESSAGES.validate_python(messages)
    except ValidationError as error:
        raise invalid_input_from(error, "messages") from None
    return [message.model_dump(exclude_none=True, exclude_defaults=False) for message in parsed]


def needs_images(messages: Sequence[dict[str, Any]]) -> bool:
    """Whether any validated message carries an image part."""
    return any(
        isinstance(message.get("content"), list)
        and any(part.get("type") == "image_url" for part in message["content"])
        for message in messages
    )
