"""Strict settings: every mistake is a ConfigError naming file, line and the closest name.

Pure parsing first, then what only the installed plugins can tell (through ``Registry``),
then the ``hypotez`` command as a subprocess with ``HYPOTEZ_CONFIG`` pointing at a bad file.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hypotez_providers import (
    LOAD_PLUGINS_ENV,
    ConfigError,
    ProviderInfo,
    ProviderSettings,
    Registry,
    Router,
    Settings,
    hookimpl,
    join_url,
    load_settings,
)
from hypotez_providers.settings import EndpointSettings, RetryPolicy, parse_settings
from hypotez_providers.testing import FakeOpenAI

KEY = "sk-strict-canary-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "hi"}]


def problem(text: str, name: str = "c.toml") -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_settings(text, path=Path(name))
    return caught.value


def registry_problem(text: str, **environ: str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        Registry(settings=parse_settings(text, path=Path("c.toml")), environ=environ)
    return caught.value


# -- unknown keys and tables, while parsing ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "suggestion"),
    [
        ("[provider.x]\ntimeout = 3\n", 1, "provider", "providers"),
        ("# c\n[retry]\nattempt = 3\n", 3, "retry.attempt", "attempts"),
        ("[health]\ncooldwn = 3\n", 2, "health.cooldwn", "cooldown"),
        (
            '[endpoints.g]\nbase_url = "http://h/v1"\nmodles = ["m"]\n',
            3,
            "endpoints.g.modles",
            "models",
        ),
        ("[providers.x.retry]\n\njiter = 0\n", 3, "providers.x.retry.jiter", "jitter"),
        ('alises = { fast = ["m"] }\n', 1, "alises", "aliases"),
    ],
)
def test_an_unknown_key_names_file_line_and_the_closest_known_one(text, line, key, suggestion):
    error = problem(text)
    assert (error.path, error.line, error.key) == ("c.toml", line, key)
    assert f"c.toml, line {line}: {key}: unknown key" in str(error)
    assert f"(did you mean '{suggestion}'?)" in str(error)


def test_an_unknown_key_close_to_nothing_has_no_suggestion():
    error = problem("[retry]\nzzzzzz = 1\n")
    assert "did you mean" not in str(error) and error.line == 2


def test_path_is_not_a_key_of_the_file():
    assert problem('path = "/etc/passwd"\n').key == "path"


@pytest.mark.parametrize("table", ["aliases", "routes"])
def test_an_alias_or_route_that_lists_nothing_is_an_error(table):
    error = problem(f"[{table}]\nfast = []\n")
    assert (error.line, error.key) == (2, f"{table}.fast")
    assert "lists nothing" in str(error)


# -- base URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://files.example/v1", "scheme is 'ftp'"),
        ("localhost:8080", "not http or https"),
        ("api.example.com/v1", "scheme is none"),
        ("http:///v1", "no host"),
        ("https://h/v1#frag", "fragment"),
        ("https://h:99999/v1", "cannot be parsed"),
        ("https://h/v1 ", "whitespace"),
    ],
)
@pytest.mark.parametrize("table", ["providers.x", "endpoints.x"])
def test_a_base_url_must_be_http_or_https_with_a_host_and_no_fragment(url, words, table):
    models = 'models = ["m"]\n' if table.startswith("endpoints") else ""
    error = problem(f'[{table}]\n{models}base_url = "{url}"\n')
    assert (error.key, error.line) == (f"{table}.base_url", 3 if models else 2)
    assert words in str(error)


def test_a_password_in_a_refused_url_is_not_repeated():
    error = problem('[providers.x]\nbase_url = "ftp://user:pa55word-canary@h/v1"\n')
    assert "pa55word-canary" not in str(error)


def test_a_base_url_from_the_environment_is_checked_and_named():
    settings = Settings()
    with pytest.raises(ConfigError, match="HYPOTEZ_X_BASE_URL: the URL's scheme") as caught:
        settings.for_provider("x", environ={"HYPOTEZ_X_BASE_URL": "ftp://h"})
    assert caught.value.key == "HYPOTEZ_X_BASE_URL"


def test_a_query_in_the_base_url_is_kept_after_the_request_path():
    base = "https://h/openai/deployments/x?api-version=2024-02-01"
    settings = parse_settings(f'[providers.x]\nbase_url = "{base}"\n')
    assert settings.providers["x"].base_url == base
    assert join_url(base, "/chat/completions") == (
        "https://h/openai/deployments/x/chat/completions?api-version=2024-02-01"
    )


@pytest.mark.parametrize(
    ("base", "path", "joined"),
    [
        ("http://h", "/v1/messages", "http://h/v1/messages"),
        ("http://h/", "/v1/messages", "http://h/v1/messages"),
        ("http://h/v1/", "chat/completions", "http://h/v1/chat/completions"),
        ("http://h/v1?a=1", "/x?b=2", "http://h/v1/x?a=1&b=2"),
        ("http://u:p@h:8/v1", "/x", "http://u:p@h:8/v1/x"),
        ("http://h/v1", "//not-a-host/x", "http://h/v1/not-a-host/x"),
        ("http://h/v1beta", "/models/m:generate", "http://h/v1beta/models/m:generate"),
        ("http://h/v1", "", "http://h/v1"),
    ],
)
def test_join_url_appends_the_path_with_one_slash_and_keeps_the_query(base, path, joined):
    assert join_url(base, path) == joined


SEGMENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.~", min_size=1, max_size=8)


@given(
    base_path=st.lists(SEGMENT, max_size=3),
    query=st.lists(st.tuples(SEGMENT, SEGMENT), max_size=2),
    path=st.lists(SEGMENT, min_size=1, max_size=3),
    slashes=st.tuples(st.booleans(), st.booleans()),
)
def test_join_url_keeps_host_segments_and_query_in_order(base_path, query, path, slashes):
    trailing, leading = slashes
    query_text = "&".join(f"{k}={v}" for k, v in query)
    base = "https://h.example/" + "/".join(base_path) + ("/" if trailing and base_path else "")
    base += f"?{query_text}" if query_text else ""
    joined = urlsplit(join_url(base, ("/" if leading else "") + "/".join(path)))
    assert joined.netloc == "h.example"
    assert joined.path == "/" + "/".join([*base_path, *path])
    assert joined.query == query_text
    assert joined.fragment == ""


# -- seconds -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "+inf", "1e300"])
@pytest.mark.parametrize(
    "where",
    [
        "[providers.x]\ntimeout",
        "[providers.x]\nconnect_timeout",
        '[endpoints.x]\nbase_url = "http://h"\nmodels = ["m"]\ntimeout',
        '[endpoints.x]\nbase_url = "http://h"\nmodels = ["m"]\nconnect_timeout',
        "[retry]\nmax_backoff",
        "[retry]\nslow_failure",
        "[providers.x.retry]\ninitial_backoff",
    ],
)
def test_a_non_finite_or_absurd_number_of_seconds_is_refused_at_load(where, value):
    error = problem(f"{where} = {value}\n")
    assert error.line == where.count("\n") + 1
    assert error.key.endswith(where.rsplit("\n", 1)[-1])


@pytest.mark.parametrize("value", ["inf", "nan"])
@pytest.mark.parametrize("key", ["cooldown", "max_cooldown", "window", "probe_lease"])
def test_non_finite_health_seconds_are_refused_at_load(key, value):
    assert problem(f"[health]\n{key} = {value}\n").key == f"health.{key}"


def test_non_finite_seconds_are_refused_when_settings_are_built_in_code_too():
    for build in (
        lambda: ProviderSettings(timeout=math.inf),
        lambda: ProviderSettings(connect_timeout=math.nan),
        lambda: EndpointSettings(base_url="http://h", models=("m",), timeout=math.inf),
        lambda: RetryPolicy(max_backoff=math.inf),
    ):
        with pytest.raises(ValidationError):
            build()


# -- every parse failure is a ConfigError --------------------------------------------------------


def test_a_file_that_is_not_utf8_is_a_config_error_with_its_line(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b'[providers.x]\ntimeout = 3\nbase_url = "http://h\xff/v1"\n')
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        load_settings(path)
    assert (caught.value.path, caught.value.line) == (str(path), 3)


def test_a_utf8_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes("\ufeff[providers.x]\ntimeout = 3\n".encode())
    assert load_settings(path).providers["x"].timeout == 3


def test_a_settings_path_that_is_a_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read") as caught:
        load_settings(tmp_path)
    assert caught.value.path == str(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "aliases = { x = " + "[" * 50_000 + "]" * 50_000 + " }\n",
        "x = " + "{ a = " * 50_000 + "1" + " }" * 50_000 + "\n",
    ],
    ids=["arrays", "inline-tables"],
)
def test_values_nested_50000_deep_are_a_config_error(text):
    assert "nested too deeply" in str(problem(text))


def test_a_value_of_the_wrong_shape_is_a_config_error_not_a_traceback():
    for text in ("aliases = 3\n", "aliases = { x = [[[1]]] }\n", "[providers]\nx = 3\n"):
        assert isinstance(problem(text), ConfigError)


# -- keys with whitespace or control characters -------------------------------------------------


@pytest.mark.parametrize("suffix", ["\\n", " ", "\\t", "\\r\\n"])
def test_a_key_in_the_file_with_whitespace_around_it_is_refused_without_showing_it(suffix):
    error = problem(f'[providers.openai]\napi_key = "{KEY}{suffix}"\n')
    assert (error.key, error.line) == ("providers.openai.api_key", 2)
    assert "whitespace" in str(error) and KEY not in str(error)


def test_a_key_with_a_control_character_inside_is_refused():
    error = problem(
        f'[endpoints.e]\nbase_url = "http://h"\nmodels = ["m"]\napi_key = "a\\u0000{KEY}"\n'
    )
    assert error.key == "endpoints.e.api_key" and "control character" in str(error)
    assert KEY not in str(error)


def test_an_endpoint_header_value_with_a_newline_is_refused_without_showing_it():
    error = problem(
        f'[endpoints.azure]\nbase_url = "https://h/v1"\nmodels = ["m"]\n'
        f'headers = {{ api-key = "{KEY}\\n" }}\n'
    )
    assert error.key == "endpoints.azure.headers" and "'api-key'" in str(error)
    assert KEY not in str(error)


def test_a_bad_key_built_in_code_is_refused_and_hidden_from_the_validation_error():
    with pytest.raises(ValidationError) as caught:
        ProviderSettings(api_key=KEY + "\n")
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value.errors(include_input=False))


@pytest.mark.parametrize("variable", ["HYPOTEZ_OPENAI_API_KEY", "OPENAI_API_KEY"])
def test_a_key_from_the_environment_with_a_trailing_newline_names_the_variable(variable):
    with pytest.raises(ConfigError) as caught:
        Settings().for_provider(
            "openai", api_key_env="OPENAI_API_KEY", environ={variable: KEY + "\n"}
        )
    assert caught.value.key == variable
    assert str(caught.value).startswith(f"{variable}: the key has whitespace")
    assert KEY not in str(caught.value)


# -- what only the installed plugins can tell (through Registry) -------------------------------


def test_a_table_for_a_provider_that_is_not_installed_suggests_the_installed_one():
    error = registry_problem('# mine\n\n[providers.opneai]\napi_key = "x"\n')
    assert (error.path, error.line, error.key) == ("c.toml", 3, "providers.opneai")
    assert "[providers.opneai] is for a provider that is not installed" in str(error)
    assert "(did you mean 'openai'?)" in str(error)


def test_a_table_far_from_every_name_lists_the_installed_providers():
    error = registry_problem("[providers.zzzzzz]\ntimeout = 3\n")
    assert "installed: " in str(error) and "gravityengine" in str(error)


def test_an_unknown_key_in_a_provider_table_suggests_the_known_key_and_hides_the_value():
    error = registry_problem(f'[providers.openai]\ntimeout = 5\napi_kye = "{KEY}"\n')
    assert (error.line, error.key) == (3, "providers.openai.api_kye")
    assert "unknown key 'api_kye' in [providers.openai] (did you mean 'api_key'?)" in str(error)
    assert KEY not in str(error)


def test_a_key_a_plugin_declares_is_accepted_and_undeclared_elsewhere():
    registry = Registry(
        settings=parse_settings('[providers.openai]\norganization = "org-1"\nproject = "p"\n'),
        environ={},
    )
    assert registry.provider("openai").settings.model_extra == {
        "organization": "org-1",
        "project": "p",
    }
    error = registry_problem('[providers.gravityengine]\norganisation = "org-1"\n')
    assert "unknown key 'organisation' in [providers.gravityengine]" in str(error)


def test_a_typo_of_a_declared_key_suggests_it():
    error = registry_problem('[providers.openai]\norganisation = "org-1"\n')
    assert "(did you mean 'organization'?)" in str(error)


def test_a_misspelt_subtable_of_a_provider_is_an_unknown_key():
    error = registry_problem("[providers.openai.retyr]\nattempts = 3\n")
    assert (error.line, error.key) == (1, "providers.openai.retyr")
    assert "(did you mean 'retry'?)" in str(error)


def test_an_alias_naming_an_unknown_provider_suggests_the_installed_one():
    error = registry_problem('[aliases]\nfast = ["openai:gpt-4o", "gravityengin:m"]\n')
    assert (error.line, error.key) == (2, "aliases.fast")
    assert "provider 'gravityengin'" in str(error)
    assert "(did you mean 'gravityengine'?)" in str(error)


def test_an_alias_to_a_model_with_a_colon_says_how_to_write_it():
    error = registry_problem('[aliases]\nlocal = ["llama3:8b"]\n')
    assert "'provider:model'" in str(error)


def test_a_route_naming_an_unknown_provider_suggests_the_installed_one():
    error = registry_problem('[routes]\n"gpt-4o" = ["openai", "anthropc"]\n')
    assert (error.line, error.key) == (2, "routes.gpt-4o")
    assert "(did you mean 'anthropic'?)" in str(error)


def test_names_of_endpoints_and_of_plugins_filtered_out_are_valid_everywhere():
    settings = parse_settings(
        '[endpoints.local]\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["m"]\n'
        "[providers.local]\npriority = 3\n"
        '[providers.openai]\norganization = "org-1"\n'
        '[aliases]\nfast = ["local:m", "openai:gpt-4o", "gpt-4o"]\n'
        '[routes]\nm = ["local", "anthropic"]\n'
    )
    registry = Registry(settings=settings, environ={LOAD_PLUGINS_ENV: "gravityengine"})
    assert sorted(registry.by_name) == ["gravityengine", "local"]


def test_a_table_for_a_broken_plugin_is_not_called_unknown(plugin_distribution):
    plugin_distribution(
        "hypotez-broken", "hypotez_broken", "import nope_not_here\n", entry_name="broken"
    )
    registry = Registry(settings=parse_settings("[providers.broken]\ntimeout = 3\n"), environ={})
    assert [record.name for record in registry.broken()] == ["broken"]


@pytest.mark.parametrize(
    ("value", "suggestion"), [("opnai", "openai"), ("gravityengine,anthropc", "anthropic")]
)
def test_load_plugins_naming_no_installed_plugin_suggests_one(value, suggestion):
    error = registry_problem("", **{LOAD_PLUGINS_ENV: value})
    assert error.key == LOAD_PLUGINS_ENV
    assert str(error).startswith(f"{LOAD_PLUGINS_ENV}: no installed plugin is called")
    assert f"(did you mean '{suggestion}'?)" in str(error)


def test_load_plugins_accepts_distribution_and_endpoint_names():
    settings = parse_settings(
        '[endpoints.local]\nbase_url = "http://127.0.0.1:9"\nmodels = ["m"]\n'
    )
    registry = Registry(settings=settings, environ={LOAD_PLUGINS_ENV: "hypotez_openai, local"})
    assert sorted(registry.by_name) == ["local", "openai"]


def test_a_key_with_a_newline_in_the_environment_stops_the_registry_naming_the_variable():
    error = registry_problem("", OPENAI_API_KEY=KEY + "\n")
    assert error.key == "OPENAI_API_KEY" and KEY not in str(error)


class Plain:
    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name="plain",
            url="https://plain.invalid",
            models=["m"],
            supports_stream=False,
            needs_auth=False,
            settings_keys=("flavour",),
        )

    @hookimpl
    def create_completion(self, model, messages, stream):
        return iter(["ok"])


def test_a_registry_assembled_by_hand_checks_names_when_asked():
    settings = parse_settings("[providers.plian]\ntimeout = 3\n", path=Path("c.toml"))
    registry = Registry(settings=settings, load_entry_points=False)
    registry.register(Plain())
    with pytest.raises(ConfigError, match=r"c.toml, line 1: .*did you mean 'plain'"):
        registry.check_settings()


def test_registering_a_plugin_whose_table_has_an_unknown_key_keeps_nothing():
    settings = parse_settings('[providers.plain]\nflavor = "x"\n')
    registry = Registry(settings=settings, load_entry_points=False)
    plugin = Plain()
    with pytest.raises(ConfigError, match="did you mean 'flavour'"):
        registry.register(plugin)
    assert registry.by_name == {} and not registry.plugin_manager.is_registered(plugin)


def test_an_endpoint_with_an_azure_style_query_is_asked_at_the_right_path():
    deployment = "/openai/deployments/x/chat/completions?api-version=2024-02-01"
    with FakeOpenAI(path=deployment, models=None, reply="hello from azure") as fake:
        settings = parse_settings(
            f'[endpoints.azure]\nbase_url = "{fake.url}/openai/deployments/x?api-version=2024-02-01"\n'
            'models = ["gpt-4o"]\n'
        )
        registry = Registry(settings=settings, load_entry_points=False, environ={})
        try:
            answer = Router(registry).complete("gpt-4o", MESSAGES)
        finally:
            registry.close()
    assert answer.text == "hello from azure"
    assert fake.requests[0].path == deployment


# -- through the hypotez command -----------------------------------------------------------------


def hypotez(*arguments: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HYPOTEZ_") and not k.endswith("_API_KEY")
    }
    env.update(environ, XDG_CONFIG_HOME="/nonexistent")
    return subprocess.run(
        [sys.executable, "-m", "hypotez_providers", *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    for word in words:
        assert word in result.stderr


def test_the_command_names_file_line_and_suggestion_for_a_misspelt_provider_table(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[providers.opneai]\napi_key = "x"\n')
    result = hypotez("providers", HYPOTEZ_CONFIG=str(config))
    assert_clean_failure(result, f"{config}, line 1:", "(did you mean 'openai'?)")


def test_the_command_reports_an_unknown_plugin_in_load_plugins_and_exits_2(tmp_path):
    result = hypotez("plugins", HYPOTEZ_LOAD_PLUGINS="opnai")
    assert_clean_failure(result, "HYPOTEZ_LOAD_PLUGINS", "(did you mean 'openai'?)")
    located = hypotez("config", "path", HYPOTEZ_LOAD_PLUGINS="opnai")
    assert located.returncode == 0 and located.stdout.strip().endswith("config.toml")


@pytest.mark.parametrize(
    "content",
    [
        b"[providers.gravityengine]\ntimeout = \xff\n",
        b"[providers.gravityengine]\ntimeout = inf\n",
        b'[providers.gravityengine]\nbase_url = "ftp://h"\n',
        b"x = " + b"[" * 50_000 + b"]" * 50_000 + b"\n",
    ],
    ids=["not-utf8", "inf", "ftp", "deep"],
)
def test_the_command_reports_a_bad_settings_file_without_a_traceback(tmp_path, content):
    config = tmp_path / "config.toml"
    config.write_bytes(content)
    assert_clean_failure(hypotez("models", HYPOTEZ_CONFIG=str(config)), str(config))


def test_the_command_refuses_a_key_with_a_newline_and_never_prints_it():
    result = hypotez("chat", "-m", "gpt-4o", "hi", OPENAI_API_KEY=KEY + "\n")
    assert_clean_failure(result, "OPENAI_API_KEY")
    assert KEY not in result.stderr


# -- the documented settings pass the strict checks ---------------------------------------------


@pytest.mark.parametrize("page", ["docs/providers.md", "docs/plugins.md", "docs/routing.md"])
def test_the_settings_blocks_of_a_docs_page_pass_the_strict_checks(page):
    import re

    text = (Path(__file__).resolve().parent.parent / page).read_text(encoding="utf-8")
    blocks = [
        block for block in re.findall(r"```toml\n(.*?)```", text, re.S) if "[project" not in block
    ]
    assert blocks
    # One page is one settings file: an alias may name an endpoint a later block declares.
    settings = parse_settings("\n".join(blocks), path=Path(page))
    Registry(settings=settings, environ={}).close()
