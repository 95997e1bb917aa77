"""Chat messages: the validated input every provider receives.

Providers get messages as plain dictionaries in the OpenAI chat shape (``{"role": ..., "content":
...}``), after validation here, so a provider written in the seed's style can index them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .errors import InvalidInput
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


class ImagePart(BaseModel):
    """An image inside a multi-part message."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(BaseModel):
    """One chat message: a role and its content (text, or a list of text and image parts)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str | list[ContentPart]
    name: str | None = None
    tool_call_id: str | None = None


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
