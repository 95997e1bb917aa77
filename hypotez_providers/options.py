"""Generation options (temperature, max_tokens, ...), validated before any request is sent."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import InvalidInput
from .validation import invalid_input_from


class CompletionOptions(BaseModel):
    """The sampling options a caller may pass; every field is optional.

    A field left unset is not sent, so the provider's own default (or the plugin's) applies.
    Options particular to one vendor go in ``extra`` and are merged into the request as given.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def wire(self) -> dict[str, Any]:
        """The options that were set, as request fields, with ``extra`` merged in last."""
        fields = {name: value for name, value in self if value is not None and name != "extra"}
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
