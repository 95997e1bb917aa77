"""The pytest plugin (entry point ``pytest11``: ``hypotez``): the conformance battery as a fixture.

In a plugin's own tests::

    def test_my_provider_conforms(provider_conformance):
        provider_conformance("my-provider", wire_format="openai", model="my-model-1")

The call fails the test with every property that did not hold, named with its reason.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conformance import CheckResult, run_conformance


@pytest.fixture
def provider_conformance() -> Callable[..., list[CheckResult]]:
    """Run the battery for a provider; fail the test listing the properties that failed."""

    def check(
        name: str, *, wire_format: str | None = None, model: str | None = None
    ) -> list[CheckResult]:
        results = run_conformance(name, wire_format=wire_format, model=model)
        failed = [f"{result.name}: {result.reason}" for result in results if not result.passed]
        if failed:
            pytest.fail(f"provider {name!r} failed conformance:\n" + "\n".join(failed))
        return results

    return check
