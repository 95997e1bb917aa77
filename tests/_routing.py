"""Helpers shared by the routing tests: an OpenAI-compatible plugin, injected time, a builder."""

from __future__ import annotations

from hypotez_providers import ProviderInfo, Registry, Router, hookimpl, openai_chat
from hypotez_providers.settings import parse_settings

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hello"}]


class Compatible:
    """An OpenAI-compatible provider plugin; its base URL comes from the environment."""

    def __init__(self, name, models=(MODEL,), *, stream=True, needs_auth=False):
        self.name, self.models, self.stream, self.needs_auth = name, models, stream, needs_auth

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name=self.name,
            url="https://unused.invalid",
            models=self.models,
            supports_stream=self.stream,
            needs_auth=self.needs_auth,
        )

    @hookimpl
    def create_completion(self, model, messages, stream, options, context):
        return openai_chat.chat_completion(context, model, messages, stream, options)


class Clock:
    """Injected time: ``sleep`` advances it instead of waiting."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def build(urls, settings="", plugins=None, clock=None, environ=None):
    """A Router over Compatible providers named like ``urls``' keys, pointing at their values."""
    environ = dict(environ or {})
    for name, url in urls.items():
        environ[f"HYPOTEZ_{name.upper()}_BASE_URL"] = url
    registry = Registry(settings=parse_settings(settings), load_entry_points=False, environ=environ)
    for plugin in plugins or [Compatible(name) for name in urls]:
        registry.register(plugin)
    clock = clock or Clock()
    return Router(registry, sleep=clock.sleep, clock=clock), clock


def outcomes(attempts):
    return [(a.provider, a.outcome, a.error) for a in attempts]
