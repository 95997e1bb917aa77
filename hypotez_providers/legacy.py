"""The adapter that lets a gpt4free-style provider module register as a plugin, unedited.

Such a module has module-level ``url``, ``model`` (a list of names), ``supports_stream``,
``needs_auth``, ``params`` and a function ``_create_completion(model, messages, stream,
**kwargs)`` that yields text. Point an entry point at the module, or pass it to
:meth:`Registry.register`; the registry wraps it in :class:`LegacyProvider`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import ModuleType
from typing import Any, TypeGuard

from .hookspecs import PROJECT_NAME, hookimpl
from .options import CompletionOptions
from .provider_info import ProviderInfo, describe_params


def is_legacy_module(plugin: object) -> TypeGuard[ModuleType]:
    """Whether ``plugin`` is a gpt4free-style module rather than a hook plugin."""
    if not isinstance(plugin, ModuleType) or not callable(
        getattr(plugin, "_create_completion", None)
    ):
        return False
    marker = PROJECT_NAME + "_impl"
    has_hooks = any(hasattr(getattr(plugin, name, None), marker) for name in dir(plugin))
    return not has_hooks and hasattr(plugin, "model") and hasattr(plugin, "url")


class LegacyProvider:
    """A gpt4free-style module seen through the hook interface.

    The provider's name is the module's own name, lower-cased (``Gravityengine`` gives
    ``gravityengine``), unless ``name`` is given. ``params`` is derived from the signature of the
    module's ``_create_completion``, as the module itself did.
    """

    def __init__(self, module: ModuleType, name: str | None = None) -> None:
        self.module = module
        self.__name__ = name or _slug(module.__name__.rsplit(".", 1)[-1])

    @hookimpl
    def provider_info(self) -> ProviderInfo:
        """The module's ``url``, ``model``, ``supports_stream`` and ``needs_auth``."""
        models = self.module.model
        return ProviderInfo(
            name=self.__name__,
            url=self.module.url,
            models=tuple([models] if isinstance(models, str) else models),
            supports_stream=bool(getattr(self.module, "supports_stream", False)),
            needs_auth=bool(getattr(self.module, "needs_auth", False)),
            params=describe_params(self.module._create_completion),
        )

    @hookimpl
    def create_completion(
        self, model: str, messages: list[dict[str, Any]], stream: bool, options: CompletionOptions
    ) -> Iterable[Any]:
        """Call the module's ``_create_completion``, passing the options as keyword arguments."""
        result: Iterable[Any] = self.module._create_completion(
            model, messages, stream, **options.wire()
        )
        return result


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")
    return slug if slug[:1].isalpha() else f"p-{slug}"
