"""Scale workloads: building a Registry with 200 plugins or endpoints, ``hypotez --version``,
``router.health()`` with long histories, and a call with 200 candidates behind the answering one.

Each start-up figure is taken in a fresh interpreter, as a user meets it; the plugins are real
distributions (a module and a dist-info with an entry point) in a temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from workloads import Samples

COUNT = 200

_PLUGIN = """from hypotez_providers import ProviderInfo, hookimpl


@hookimpl
def provider_info():
    return ProviderInfo(name="{name}", url="https://{name}.example", models=["m-{name}"],
                        supports_stream=True, needs_auth=False)


@hookimpl
def create_completion(model: str, messages: list, stream: bool):
    yield "x"
"""

# Run in a fresh interpreter: imports first (not counted), then Registry() timed.
_PROBE = (
    "import time\nfrom hypotez_providers import Registry\n"
    "import hypotez_providers.registry, hypotez_providers.endpoints\n"
    "started = time.perf_counter()\nregistry = Registry()\n"
    "elapsed = time.perf_counter() - started\n"
    "assert len(registry.providers()) >= {count}, registry.broken()[:3]\nprint(elapsed)"
)


def write_world(root: Path) -> tuple[Path, Path, Path]:
    """200 plugin distributions under ``root/site``, a settings file with 200 endpoints, and
    an empty settings file; returns the three paths."""
    site = root / "site"
    site.mkdir()
    for i in range(COUNT):
        name = f"scale{i:03d}"
        (site / f"hypotez_{name}.py").write_text(_PLUGIN.format(name=name))
        info = site / f"hypotez_{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: hypotez-{name}\nVersion: 1.0\n"
        )
        (info / "entry_points.txt").write_text(f"[hypotez_providers]\n{name} = hypotez_{name}\n")
    endpoints = root / "endpoints.toml"
    endpoints.write_text(
        "".join(
            f'[endpoints.ep{i:03d}]\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["m-{i}"]\n\n'
            for i in range(COUNT)
        )
    )
    empty = root / "empty.toml"
    empty.write_text("")
    return site, endpoints, empty


def registry_build(repeats: int) -> dict[str, Samples]:
    """Seconds for ``Registry()`` in a fresh interpreter: 200 plugins, then 200 endpoints."""
    results = {
        f"{COUNT} plugins (entry points)": Samples(),
        f"{COUNT} settings endpoints": Samples(),
    }
    with tempfile.TemporaryDirectory() as directory:
        site, endpoints, empty = write_world(Path(directory))
        base = {
            key: value
            for key, value in os.environ.items()
            if key not in ("HYPOTEZ_LOAD_PLUGINS", "HYPOTEZ_STATE_URL")
        }
        runs = {
            f"{COUNT} plugins (entry points)": {
                **base,
                "HYPOTEZ_CONFIG": str(empty),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(site), base.get("PYTHONPATH")])),
            },
            # The first-party plugins only, so that the endpoints are what is measured.
            f"{COUNT} settings endpoints": {
                **base,
                "HYPOTEZ_CONFIG": str(endpoints),
                "HYPOTEZ_LOAD_PLUGINS": "gravityengine",
            },
        }
        for _ in range(repeats):
            for name, environ in runs.items():
                output = subprocess.run(
                    [sys.executable, "-c", _PROBE.format(count=COUNT)],
                    capture_output=True,
                    text=True,
                    check=True,
                    env=environ,
                    timeout=120,
                ).stdout
                results[name].values.append(float(output))
    return results


def version_wall(repeats: int) -> dict[str, Samples]:
    """Wall seconds of ``hypotez --version``, beside a bare ``import requests, pydantic``."""
    commands = {
        "python -c 'import requests, pydantic'": [
            sys.executable,
            "-c",
            "import requests, pydantic",
        ],
        "hypotez --version": [sys.executable, "-m", "hypotez_providers", "--version"],
    }
    results = {name: Samples() for name in commands}
    for _ in range(repeats):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, timeout=60)
            results[name].values.append(time.perf_counter() - started)
    return results


def health_cost(repeats: int) -> Samples:
    """Seconds for ``router.health()`` over 200 providers with 1,000 outcomes each."""
    from hypotez_providers import Registry, Router
    from hypotez_providers.health import Permit
    from hypotez_providers.settings import EndpointSettings, Settings

    endpoints = {
        f"ep{i:03d}": EndpointSettings(base_url="http://127.0.0.1:9/v1", models=(f"m-{i}",))
        for i in range(COUNT)
    }
    router = Router(Registry(settings=Settings(endpoints=endpoints), load_entry_points=False))
    for name in router.registry.by_name:
        for _ in range(1000):
            router.breaker.succeeded(Permit(name), 0.01)
    samples = Samples()
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(20):
            router.health()
        samples.values.append((time.perf_counter() - started) / 20)
    return samples


def candidates_after(
    url: str,
    per_call: Callable[[dict[str, Callable[[], object]], int, int], dict[str, Samples]],
    calls: int,
    repeats: int,
) -> dict[str, Samples]:
    """Per-call seconds when the answering provider is alone, and with 199 candidates after it.

    ``per_call`` is the benchmark's interleaved per-call workload; the model is served by every
    endpoint, the first (by priority) answers.
    """
    from workloads import MESSAGES, MODEL

    from hypotez_providers import Registry, Router
    from hypotez_providers.settings import EndpointSettings, Settings

    def router(count: int) -> Router:
        endpoints = {
            f"ep{i:03d}": EndpointSettings(
                base_url=url + "/v1", models=(MODEL,), include_usage=False, priority=int(i == 0)
            )
            for i in range(count)
        }
        return Router(Registry(settings=Settings(endpoints=endpoints), load_entry_points=False))

    alone, crowded = router(1), router(COUNT)
    return per_call(
        {
            "1 candidate": lambda: alone.complete(MODEL, MESSAGES),
            f"{COUNT} candidates, the first answers": lambda: crowded.complete(MODEL, MESSAGES),
        },
        calls,
        repeats,
    )
