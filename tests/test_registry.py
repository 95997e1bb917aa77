"""Plugins arrive as real distributions found through the hypotez_providers entry-point group."""

import pytest

from hypotez_providers import (
    LOAD_PLUGINS_ENV,
    PluginError,
    ProviderInfo,
    Registry,
    Settings,
    UnknownProvider,
    hookimpl,
)
from hypotez_providers.settings import parse_settings

ECHO = """
from hypotez_providers import ProviderInfo, hookimpl

@hookimpl
def provider_info():
    return ProviderInfo(name="{name}", url="https://echo.example", models=["echo-1"],
                        supports_stream=True, needs_auth=False)

@hookimpl
def create_completion(model, messages, stream):
    yield from messages[-1]["content"].split(" ") if stream else [messages[-1]["content"]]
"""


def echo_source(name="echo"):
    return ECHO.replace("{name}", name)


def load(**environ):
    return Registry(settings=Settings(), environ=environ)


def test_first_party_gravityengine_is_found_through_its_entry_point(registry):
    names = [info.name for info in registry.providers()]
    assert "gravityengine" in names
    record = next(r for r in registry.plugins() if r.provider == "gravityengine")
    assert record.distribution == "hypotez-gravityengine"
    assert set(record.hooks) == {"provider_info", "create_completion"}


def test_a_third_party_distribution_appears_and_answers(plugin_distribution):
    plugin_distribution("hypotez-echo", "hypotez_echo_plugin", echo_source())
    registry = load()
    provider = registry.provider("echo")
    assert provider.info.models == ("echo-1",)
    record = next(r for r in registry.plugins() if r.provider == "echo")
    assert (record.distribution, record.version) == ("hypotez-echo", "1.0")
    answer = provider.complete("echo-1", [{"role": "user", "content": "hello there"}])
    assert (answer.text, answer.provider) == ("hello there", "echo")
    pieces = [
        chunk.text for chunk in provider.stream("echo-1", [{"role": "user", "content": "a b"}])
    ]
    assert pieces == ["a", "b"]


def test_params_are_derived_from_the_hook_signature(plugin_distribution):
    plugin_distribution("hypotez-echo", "hypotez_echo_params", echo_source())
    info = load().provider("echo").info
    assert info.params == ("model", "messages", "stream")
    assert info.params_text == "(model, messages, stream)"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import no_such_module_anywhere\n", "import failed: ModuleNotFoundError"),
        ("raise RuntimeError('boom at import')\n", "boom at import"),
        (echo_source("Bad Name"), "invalid provider_info: name"),
        (echo_source().replace('models=["echo-1"]', "models=[]"), "invalid provider_info: models"),
        (
            echo_source().replace("(model, messages, stream)", "(model, msgs, stream)"),
            "wrong signature",
        ),
        (
            echo_source().replace("def create_completion", "def create_completions"),
            "unknown hook 'create_completions'",
        ),
        (
            "from hypotez_providers import hookimpl\n@hookimpl\ndef provider_info():\n    return None\n",
            "missing hook implementation: create_completion",
        ),
        (
            echo_source().replace(
                "return ProviderInfo(", "raise ValueError('no info'); ProviderInfo("
            ),
            "provider_info raised ValueError: no info",
        ),
    ],
)
def test_a_broken_plugin_is_recorded_with_its_reason_and_others_keep_working(
    plugin_distribution, source, reason
):
    plugin_distribution("hypotez-broken", "hypotez_broken_plugin", source, entry_name="broken")
    registry = load()
    [broken] = registry.broken()
    assert broken.name == "broken"
    assert broken.distribution == "hypotez-broken"
    assert reason in (broken.error or "")
    assert "gravityengine" in [info.name for info in registry.providers()]
    with pytest.raises(UnknownProvider):
        registry.provider("broken")


def test_a_duplicate_provider_name_breaks_the_second_plugin_only(plugin_distribution):
    plugin_distribution("hypotez-echo-a", "hypotez_echo_a", echo_source(), entry_name="a-echo")
    plugin_distribution("hypotez-echo-b", "hypotez_echo_b", echo_source(), entry_name="b-echo")
    registry = load()
    [broken] = registry.broken()
    assert broken.name == "b-echo"
    assert "already used by plugin 'a-echo' from hypotez-echo-a" in (broken.error or "")
    assert (
        registry.provider("echo").complete("echo-1", [{"role": "user", "content": "x"}]).text == "x"
    )


def test_the_environment_variable_limits_which_plugins_load(plugin_distribution):
    plugin_distribution("hypotez-echo", "hypotez_echo_filter", echo_source(), entry_name="echo")
    only_echo = load(**{LOAD_PLUGINS_ENV: "echo"})
    assert [info.name for info in only_echo.providers()] == ["echo"]
    by_distribution = load(**{LOAD_PLUGINS_ENV: "hypotez_gravityengine"})
    assert [info.name for info in by_distribution.providers()] == ["gravityengine"]
    assert load(**{LOAD_PLUGINS_ENV: ""}).providers() == []


def test_an_unknown_provider_lists_the_known_ones(registry):
    with pytest.raises(UnknownProvider, match=r"known: .*gravityengine") as caught:
        registry.provider("gravity")
    assert caught.value.field == "provider"


class Counting:
    """An in-process plugin that counts how often its completion hook is called."""

    def __init__(self, name):
        self.name = name
        self.calls = 0

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name=self.name,
            url="https://x.example",
            models=["m"],
            supports_stream=False,
            needs_auth=False,
        )

    @hookimpl
    def create_completion(self, model, messages, stream, options, context):
        self.calls += 1
        return f"{self.name} (stream={stream}, temperature={options.temperature}, {context.name})"


def test_dispatch_calls_only_the_chosen_providers_hook():
    registry = Registry(settings=Settings(), load_entry_points=False)
    first, second = Counting("first"), Counting("second")
    registry.register(first)
    registry.register(second)
    answer = registry.provider("second").complete(
        "m", [{"role": "user", "content": "x"}], temperature=1
    )
    assert answer.text == "second (stream=False, temperature=1.0, second)"
    assert (first.calls, second.calls) == (0, 1)


def test_a_provider_that_cannot_stream_is_never_asked_to():
    registry = Registry(settings=Settings(), load_entry_points=False)
    registry.register(Counting("plain"))
    chunks = list(registry.provider("plain").stream("m", [{"role": "user", "content": "x"}]))
    assert [chunk.text for chunk in chunks] == ["plain (stream=False, temperature=None, plain)"]


def test_register_refuses_a_bad_plugin_with_the_reason_and_keeps_nothing():
    registry = Registry(settings=Settings(), load_entry_points=False)
    registry.register(Counting("same"))
    with pytest.raises(PluginError, match="already used"):
        registry.register(Counting("same"), name="again")
    assert [info.name for info in registry.providers()] == ["same"]


def test_settings_can_replace_a_providers_model_list():
    settings = parse_settings('[providers.plain]\nmodels = ["m", "m-large"]\n')
    registry = Registry(settings=settings, load_entry_points=False)
    provider = registry.register(Counting("plain"))
    assert provider.info.models == ("m", "m-large")


class Raising:
    """Raises what it is given from inside its completion hook."""

    def __init__(self, error):
        self.error = error

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="raising",
            url="https://x.example",
            models=["m"],
            supports_stream=True,
            needs_auth=True,
        )

    @hookimpl
    def create_completion(self, model, messages, stream):
        yield "partial"
        raise self.error


def test_a_key_in_an_error_raised_by_a_plugin_itself_is_scrubbed():
    from hypotez_providers import ServerError

    key = "sk-plugin-secret-0123456789"
    registry = Registry(
        settings=Settings(), load_entry_points=False, environ={"HYPOTEZ_RAISING_API_KEY": key}
    )
    registry.register(Raising(ServerError("raising", f"error event: bad key {key}")))
    with pytest.raises(ServerError) as caught:
        list(registry.provider("raising").stream("m", [{"role": "user", "content": "x"}]))
    assert key not in str(caught.value) and "***" in caught.value.upstream_message


def test_a_plugin_may_refuse_the_callers_input_as_invalid_input():
    from hypotez_providers import InvalidInput

    registry = Registry(
        settings=Settings(), load_entry_points=False, environ={"HYPOTEZ_RAISING_API_KEY": "k" * 20}
    )
    registry.register(
        Raising(InvalidInput("images are not supported here", field="messages[0].content"))
    )
    with pytest.raises(InvalidInput, match="images are not supported"):
        list(registry.provider("raising").stream("m", [{"role": "user", "content": "x"}]))


# -- first-party names ----------------------------------------------------------------------

CANARY = "sk-canary-first-party-0123456789"
IMPOSTOR = """
from hypotez_providers import ProviderInfo, hookimpl

SEEN = []

@hookimpl
def provider_info():
    return ProviderInfo(name="{name}", url="https://evil.example", models=["gpt-4o-mini"],
                        supports_stream=True, needs_auth=True, api_key_env={key_env!r})

@hookimpl
def create_completion(model, messages, stream, context):
    SEEN.append(context.api_key)
    yield "stolen"
"""


def impostor_source(name="openai", key_env="OPENAI_API_KEY"):
    return IMPOSTOR.replace("{name}", name).replace("{key_env!r}", repr(key_env))


@pytest.mark.parametrize("entry_name", ["aaa_x", "openai", "zzz_x"])
def test_a_third_party_plugin_cannot_take_a_first_party_name_in_any_load_order(
    plugin_distribution, entry_name
):
    plugin_distribution(
        "hypotez-impostor", "hypotez_impostor", impostor_source(), entry_name=entry_name
    )
    registry = load(OPENAI_API_KEY=CANARY)
    [broken] = registry.broken()
    assert (broken.name, broken.distribution) == (entry_name, "hypotez-impostor")
    assert "provider name 'openai' belongs to the first-party distribution hypotez-openai" in (
        broken.error or ""
    )
    real = next(r for r in registry.plugins() if r.provider == "openai")
    assert (real.name, real.distribution, real.broken) == ("openai", "hypotez-openai", False)
    openai = registry.provider("openai")
    assert openai.info.url == "https://api.openai.com/v1"
    assert openai.context.api_key == CANARY


def test_a_first_party_name_stays_refused_when_its_distribution_is_not_loaded(
    plugin_distribution,
):
    plugin_distribution("hypotez-impostor", "hypotez_impostor_only", impostor_source())
    registry = load(OPENAI_API_KEY=CANARY, **{LOAD_PLUGINS_ENV: "hypotez-impostor"})
    assert registry.providers() == []
    [broken] = registry.broken()
    assert "belongs to the first-party distribution hypotez-openai" in (broken.error or "")


@pytest.mark.parametrize(
    "key_env", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "HYPOTEZ_OPENAI_API_KEY"]
)
def test_a_third_party_plugin_cannot_read_a_first_party_providers_key(plugin_distribution, key_env):
    plugin_distribution("hypotez-stealer", "hypotez_stealer", impostor_source("stealer", key_env))
    registry = load(**{key_env: CANARY})
    [broken] = registry.broken()
    assert broken.distribution == "hypotez-stealer"
    assert f"api_key_env {key_env!r} is the key of the first-party provider" in broken.error
    with pytest.raises(UnknownProvider):
        registry.provider("stealer")


def test_a_third_party_plugin_with_a_name_and_key_of_its_own_loads(plugin_distribution):
    plugin_distribution("hypotez-acme", "hypotez_acme", impostor_source("acme", "ACME_API_KEY"))
    registry = load(ACME_API_KEY=CANARY)
    assert registry.broken() == []
    assert registry.provider("acme").context.api_key == CANARY


def test_the_applications_own_plugin_may_use_a_first_party_name():
    registry = Registry(settings=Settings(), load_entry_points=False)
    provider = registry.register(Counting("openai"))
    assert provider.name == "openai"


def test_a_distribution_found_twice_on_the_path_loads_once(plugin_distribution, tmp_path):
    import shutil
    import sys

    plugin_distribution("hypotez-echo", "hypotez_echo_twice", echo_source(), entry_name="echo")
    again = tmp_path / "again"
    shutil.copytree(tmp_path / "site-packages", again)
    sys.path.append(str(again))
    try:
        registry = load()
    finally:
        sys.path.remove(str(again))
    assert registry.broken() == []
    assert [r.name for r in registry.plugins()].count("echo") == 1
