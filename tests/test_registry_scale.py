"""Many plugins and endpoints: the registry's shortcuts give the answers the long way gave.

No timing is asserted (issue 15's figures are in ``bench/run.py``): these pin what the
shortcuts must keep, metadata read from headers only, a description naming another
distribution ignored, the hooks of one class described once, and a routed call that reads
the health of the candidates it reaches only.
"""

from __future__ import annotations

from hypotez_providers import (
    MemoryCircuitBreaker,
    Permit,
    ProviderHealth,
    Registry,
    Router,
    Settings,
    Standing,
    describe_params,
)
from hypotez_providers.endpoints import EndpointProvider
from hypotez_providers.settings import EndpointSettings
from hypotez_providers.testing import FakeOpenAI

PLUGIN = """
from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="{name}", url="https://{name}.example", models=["{name}-1"],
                        supports_stream=False, needs_auth=False)

@hookimpl
def create_completion(model: str, messages: list, stream: bool):
    return ["from {name}"]
"""


def test_many_distributions_load_with_their_names_and_versions(plugin_distribution):
    for i in range(30):
        plugin_distribution(
            f"hypotez-many{i}", f"hypotez_many{i}", PLUGIN.format(name=f"many{i}"), version=f"2.{i}"
        )
    registry = Registry(settings=Settings(), environ={})
    records = {r.name: r for r in registry.plugins() if r.name.startswith("hypotez_many")}
    assert len(records) == 30 and not registry.broken()
    assert (records["hypotez_many7"].distribution, records["hypotez_many7"].version) == (
        "hypotez-many7",
        "2.7",
    )
    assert registry.provider("many29").complete("many29-1", [{"role": "user", "content": "x"}])


def test_the_distribution_is_named_by_its_metadata_headers_not_its_description(
    plugin_distribution, tmp_path
):
    plugin_distribution("hypotez-headed", "hypotez_headed", PLUGIN.format(name="headed"))
    metadata = next((tmp_path / "site-packages").glob("hypotez_headed-*.dist-info")) / "METADATA"
    metadata.write_text(
        "Metadata-Version: 2.1\nName: hypotez-headed\nSummary: one: two\nVersion: 3.1\n"
        "Description-Content-Type: text/markdown\n\n"
        "Name: not-this\nVersion: 9.9\n" + "A long description.\n" * 2000
    )
    registry = Registry(settings=Settings(), environ={})
    record = next(r for r in registry.plugins() if r.provider == "headed")
    assert (record.distribution, record.version) == ("hypotez-headed", "3.1")


def test_a_plugin_excluded_by_the_environment_still_counts_as_installed(plugin_distribution):
    plugin_distribution(
        "hypotez-skipped", "hypotez_skipped", PLUGIN.format(name="skipped"), entry_name="skipped"
    )
    settings = Settings.model_validate({"providers": {"skipped": {"timeout": 5}}})
    registry = Registry(settings=settings, environ={"HYPOTEZ_LOAD_PLUGINS": "gravityengine"})
    assert "skipped" not in registry.by_name


def test_the_hooks_of_one_class_are_described_once_and_alike():
    first = EndpointProvider("a", EndpointSettings(base_url="http://127.0.0.1:9/v1", models=("m",)))
    second = EndpointProvider(
        "b", EndpointSettings(base_url="http://127.0.0.1:9/v1", models=("m",))
    )
    described = describe_params(first.create_completion)
    assert described is describe_params(second.create_completion)
    assert described[:3] == ("model: str", "messages: list[dict[str, Any]]", "stream: bool")

    def other(model: int) -> None:
        """Another function, another answer."""

    assert describe_params(other) == ("model: int",)


def test_two_hundred_endpoints_each_become_a_provider():
    endpoints = {
        f"ep{i:03d}": EndpointSettings(base_url="http://127.0.0.1:9/v1", models=(f"m-{i}",))
        for i in range(200)
    }
    registry = Registry(settings=Settings(endpoints=endpoints), load_entry_points=False)
    assert len(registry.by_name) == 200 and not registry.broken()
    assert registry.provider("ep199").info.params == registry.provider("ep000").info.params
    assert all(set(r.hooks) == {"create_completion", "provider_info"} for r in registry.plugins())


class CountingBreaker:
    """A memory breaker that counts the standings read (a breaker is injected, not mocked)."""

    def __init__(self) -> None:
        self.inner = MemoryCircuitBreaker()
        self.standings: list[str] = []

    def admit(self, provider: str) -> Permit | None:
        """As the memory breaker."""
        return self.inner.admit(provider)

    def succeeded(self, permit: Permit, latency: float) -> None:
        """As the memory breaker."""
        self.inner.succeeded(permit, latency)

    def failed(
        self, permit: Permit, *, retry_after: float | None = None, open_now: bool = False
    ) -> None:
        """As the memory breaker."""
        self.inner.failed(permit, retry_after=retry_after, open_now=open_now)

    def release(self, permit: Permit) -> None:
        """As the memory breaker."""
        self.inner.release(permit)

    def standing(self, provider: str) -> Standing:
        """As the memory breaker, counted."""
        self.standings.append(provider)
        return self.inner.standing(provider)

    def health(self, provider: str) -> ProviderHealth:
        """As the memory breaker."""
        return self.inner.health(provider)


def test_a_call_answered_by_the_first_candidate_reads_no_other_candidates_health():
    with FakeOpenAI(models=None) as fake:
        endpoints = {
            f"ep{i:03d}": EndpointSettings(
                base_url=fake.url + "/v1", models=("m",), include_usage=False, priority=int(i == 0)
            )
            for i in range(50)
        }
        breaker = CountingBreaker()
        registry = Registry(settings=Settings(endpoints=endpoints), load_entry_points=False)
        router = Router(registry, breaker=breaker)
        answer = router.complete("m", [{"role": "user", "content": "hi"}])
        assert answer.provider == "ep000"
        assert breaker.standings == ["ep000"]
