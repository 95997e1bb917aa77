"""Fixtures shared by tests/ and providers/*/tests: isolation, plugin distributions, fakes."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from hypotez_providers import Registry, Settings
from hypotez_providers.testing import FakeOpenAI

PluginFactory = Callable[..., str]


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own settings file, keys or plugin filter."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    for name in list(__import__("os").environ):
        if name.startswith("HYPOTEZ_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def plugin_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginFactory]:
    """Write a real distribution (module + dist-info with an entry point) onto ``sys.path``.

    ``plugin_distribution("hypotez-echo", "hypotez_echo", source, entry_name="echo")`` makes
    ``importlib.metadata`` see it exactly as if it were pip-installed.
    """
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    modules: list[str] = []

    def make(
        distribution: str,
        module: str,
        source: str,
        *,
        entry_name: str | None = None,
        entry_value: str | None = None,
        version: str = "1.0",
    ) -> str:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        name = entry_name or module
        (info / "entry_points.txt").write_text(
            f"[hypotez_providers]\n{name} = {entry_value or module}\n"
        )
        modules.append(module)
        importlib.invalidate_caches()
        return name

    yield make
    for module in modules:
        sys.modules.pop(module, None)


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A registry with the installed entry-point plugins and empty settings."""
    made = Registry(settings=Settings(), environ={})
    yield made
    made.close()


@pytest.fixture
def gravity_upstream() -> Iterator[FakeOpenAI]:
    """A fake upstream at Gravityengine's chat path, accepting any model."""
    with FakeOpenAI(path="/api/openai/v1/chat/completions", models=None) as fake:
        yield fake


@pytest.fixture
def gravity_registry(gravity_upstream: FakeOpenAI) -> Iterator[Registry]:
    """A registry whose gravityengine provider points at ``gravity_upstream``."""
    made = Registry(
        settings=Settings(), environ={"HYPOTEZ_GRAVITYENGINE_BASE_URL": gravity_upstream.url}
    )
    yield made
    made.close()


@pytest.fixture
def fakes() -> Iterator[Callable[..., FakeOpenAI]]:
    """Start named FakeOpenAI upstreams (``fakes("first")``), all stopped after the test."""
    with ExitStack() as stack:
        made = {}

        def make(name, **kwargs):
            kwargs.setdefault("reply", f"answer from {name}")
            made[name] = stack.enter_context(FakeOpenAI(**kwargs))
            return made[name]

        yield make
