"""What a provider declares about itself, and how its ``params`` are derived from its hook."""

from __future__ import annotations

import contextlib
import inspect
import re
import typing
import weakref
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


class Capabilities(BaseModel):
    """What a provider (or one of its models) can do beyond plain text in, text out.

    The router sends a request only to candidates that can serve it: ``tools`` for a request
    offering tools, ``structured_output`` for a ``response_format`` asking for JSON, ``images``
    for a message with an image part. ``prefill``: it continues an answer from a final
    assistant message, so it may finish a stream another provider broke off
    (``rescue="continue"``). All default to false: a plugin declares what it supports.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tools: bool = Field(False, description="Takes tools and answers with tool calls.")
    structured_output: bool = Field(False, description="Answers JSON, to a schema if asked.")
    images: bool = Field(False, description="Takes image parts in messages.")
    prefill: bool = Field(False, description="Continues from a final assistant message.")

    def missing(self, needs: frozenset[str]) -> list[str]:
        """Which of ``needs`` (capability names) these capabilities lack."""
        return [need for need in sorted(needs) if not getattr(self, need)]


class ProviderInfo(BaseModel):
    """A provider's metadata, returned by its ``provider_info`` hook.

    ``params`` is not written by the plugin: the registry fills it in from the signature of the
    plugin's ``create_completion`` hook, so it always says what the hook really accepts.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="Unique lower-case slug: letters, digits, '-' and '_'.")
    url: str = Field(description="The provider's home or API address (http or https).")
    models: tuple[str, ...] = Field(min_length=1, description="Model names it serves.")
    supports_stream: bool = Field(description="Whether it can stream an answer piece by piece.")
    needs_auth: bool = Field(description="Whether it needs an API key.")
    api_key_env: str | None = Field(
        None,
        description="The vendor's usual environment variable for the key, e.g. OPENAI_API_KEY.",
    )
    capabilities: Capabilities = Field(
        default_factory=Capabilities, description="What it supports beyond plain text."
    )
    model_capabilities: dict[str, Capabilities] = Field(
        default_factory=dict, description="Per model, where a model differs from the provider."
    )
    params: tuple[str, ...] = Field(
        (), description="Arguments its completion hook accepts, as 'name: type' (derived)."
    )
    settings_keys: tuple[str, ...] = Field(
        (),
        description="Keys of its own it reads from its [providers.NAME] table, besides the "
        "common ones (e.g. ('organization', 'project')); any other key there is an error.",
    )

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, name: str) -> str:
        if not _SLUG.match(name):
            raise ValueError(
                f"{name!r} is not a provider name: use lower-case letters, digits, '-' or '_', "
                "starting with a letter (e.g. 'gravityengine')"
            )
        return name

    @field_validator("url")
    @classmethod
    def _url_is_http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url.rstrip("/")

    @field_validator("models")
    @classmethod
    def _models_are_named(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        if any(not model.strip() for model in models):
            raise ValueError("model names must not be empty")
        return models

    def capabilities_for(self, model: str) -> Capabilities:
        """The capabilities of ``model``: its own entry if declared, else the provider's."""
        return self.model_capabilities.get(model, self.capabilities)

    @property
    def params_text(self) -> str:
        """``params`` in the seed's form: ``(model: str, messages: list, stream: bool)``."""
        return f"({', '.join(self.params)})"


_STARS: dict[Any, str] = {
    inspect.Parameter.VAR_POSITIONAL: "*",
    inspect.Parameter.VAR_KEYWORD: "**",
}


def describe_params(function: Callable[..., Any]) -> tuple[str, ...]:
    """List the parameters ``function`` accepts as ``'name: type'`` strings, by introspection.

    Worked out once per function: the hooks of many instances of one plugin class (200
    ``[endpoints.NAME]`` tables) share the answer instead of evaluating the same annotations.
    """
    # A bound method's underlying function is the same for every instance of its class.
    underlying = getattr(function, "__func__", function)
    try:
        return _DESCRIBED[underlying]
    except (KeyError, TypeError):  # TypeError: not weakly referenceable, so not cached
        pass
    described = _describe(function)
    with contextlib.suppress(TypeError):
        _DESCRIBED[underlying] = described
    return described


_DESCRIBED: weakref.WeakKeyDictionary[Any, tuple[str, ...]] = weakref.WeakKeyDictionary()


def _describe(function: Callable[..., Any]) -> tuple[str, ...]:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - an unresolvable annotation still has its source text
        hints = {}
    described: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name == "self":
            continue
        prefix = _STARS.get(parameter.kind, "")
        annotation = hints.get(parameter.name, parameter.annotation)
        if annotation is inspect.Parameter.empty:
            described.append(f"{prefix}{parameter.name}")
        else:
            described.append(f"{prefix}{parameter.name}: {_type_name(annotation)}")
    return tuple(described)


def _type_name(annotation: object) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    if isinstance(annotation, str):
        return annotation
    return str(annotation).replace("typing.", "").replace("collections.abc.", "")
