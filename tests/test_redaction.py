"""The redactor: planted canary keys never show in an error, repr, pickle, log record or attempt.

The CLI's own outputs are searched in test_cli.py; the upstream that echoes every credential
back, and the search for any 8-character piece of a canary, are in _secrets.py.
"""

from __future__ import annotations

import importlib
import logging
import pickle
import pkgutil
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hypotez_providers
from hypotez_providers import (
    AllProvidersFailed,
    AuthenticationFailed,
    HttpTransport,
    InvalidInput,
    MalformedResponse,
    PluginFailed,
    ProviderError,
    ProviderInfo,
    Registry,
    Router,
    ServerError,
    Settings,
    StreamInterrupted,
    hookimpl,
    redact,
    redact_then_cut,
    register_secret,
    skip_malformed,
)
from hypotez_providers._settings_secrets import (
    hide_userinfo,
    looks_like_secret,
    settings_secrets,
    shown_settings,
    url_secrets,
)
from hypotez_providers.context import ProviderContext
from hypotez_providers.redaction import (
    REDACTOR,
    RedactingFilter,
    Redactor,
    mask_secret,
    scrub,
    secret_forms,
)
from hypotez_providers.results import Attempt
from hypotez_providers.settings import EndpointSettings, ProviderSettings, parse_settings

from ._secrets import (
    BASIC,
    ENV_KEY,
    HEADER_KEY,
    MISSPELLED_KEY,
    URL_PASSWORD,
    URL_USER,
    X_API_KEY,
    EchoingUpstream,
    leaks,
    straddling,
)

MESSAGES = [{"role": "user", "content": "hello"}]
MODEL = "m-echo"


# -- the redactor itself -------------------------------------------------------------------------


def test_redact_hides_a_secret_in_every_form_it_may_take_in_text():
    key = "sk-forms-0123456789abcdef/+=&é"
    texts = [
        f"Authorization: Bearer {key}",
        f"x-api-key: {key}",
        f"url: https://h/?key={key.replace('/', '%2F').replace('+', '%2B').replace('=', '%3D').replace('&', '%26').replace('é', '%C3%A9')}",
        f'json: {{"key": "{key.replace("/", "/")}"}}'.replace("é", "\\u00e9"),
        f"repr: {key!r}",
    ]
    for text in texts:
        assert key[:12] not in redact(text, [key]), text
        assert "***" in redact(text, [key])


def test_a_key_with_a_trailing_newline_is_hidden_raw_and_stripped():
    key = "sk-newline-0123456789abcdef0123\n"
    stripped = key.strip()
    assert {key, stripped, repr(stripped)[1:-1]} <= secret_forms(key)
    # requests quotes the header value with its escape: 'Bearer sk-...\\n'.
    message = f"Invalid return character in header value: {('Bearer ' + key)!r}; {stripped}"
    shown = redact(message, [key])
    assert stripped[:10] not in shown and shown.count("***") == 2


def test_short_strings_are_never_treated_as_secrets():
    assert redact("a bc def", ["bc", "def", None, ""]) == "a bc def"


def test_the_longest_secret_is_hidden_whole():
    userinfo = f"{URL_USER}:{URL_PASSWORD}"
    assert redact(f"at {userinfo}@host", [URL_PASSWORD, userinfo]) == "at ***@host"


@given(
    before=st.text(max_size=400),
    after=st.text(max_size=400),
    limit=st.integers(min_value=0, max_value=900),
)
def test_redacting_before_cutting_never_leaves_a_piece_of_a_key_at_the_cut(before, after, limit):
    key = "sk-cut-0123456789abcdef0123456789abcdef"
    shown = redact_then_cut(before + key + after, limit, [key])
    assert len(shown) <= limit
    assert not leaks(shown, (key,)) or leaks(before + after, (key,))


def test_registered_secrets_are_hidden_everywhere_and_registering_is_thread_safe():
    redactor = Redactor()
    secrets = [f"sk-thread-{n:04d}-0123456789abcdef" for n in range(200)]
    threads = [
        threading.Thread(target=lambda part=part: [redactor.add(s) for s in part])
        for part in (secrets[0::4], secrets[1::4], secrets[2::4], secrets[3::4])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    text = " ".join(secrets)
    assert set(redactor.redact(text).split()) == {"***"}


def test_a_url_password_is_a_secret_with_its_userinfo_and_basic_credentials():
    url = f"http://{URL_USER}:{URL_PASSWORD}@127.0.0.1:9/v1"
    found = url_secrets(url)
    assert {URL_PASSWORD, f"{URL_USER}:{URL_PASSWORD}", BASIC} <= set(found)
    assert url_secrets("http://sk-in-the-user-name@host/v1") == ["sk-in-the-user-name"] * 2
    assert url_secrets("http://host/v1") == []
    assert hide_userinfo(url) == "http://***@127.0.0.1:9/v1"
    assert hide_userinfo("http://host/v1") == "http://host/v1"


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("api_kye", "anything-at-all", True),  # misspelled: one swap away from "key"
        ("apikey", "short", True),
        ("x_tokne", "value", True),
        ("organization", "org-AbCdEf0123456789ab", True),  # generated-looking value
        ("project", "sk-proj-123", True),  # a known key prefix
        ("project", "my project", False),
        ("default_model", "llama-3.3-70b-versatile", False),
        ("note", "ab", False),
        ("enabled", True, False),
    ],
)
def test_unknown_settings_look_like_secrets_by_name_or_value(name, value, secret):
    assert looks_like_secret(name, value) is secret


def test_mask_secret_shows_at_most_the_last_four_characters():
    assert mask_secret(ENV_KEY) == "***cdef"
    assert mask_secret(ENV_KEY + "\n") == "***cdef"
    assert mask_secret("short") == "***"
    assert mask_secret(None) == "(not set)"


# -- settings and reprs --------------------------------------------------------------------------


def canary_provider_settings():
    return ProviderSettings(
        base_url=f"http://{URL_USER}:{URL_PASSWORD}@127.0.0.1:9/v1",
        api_key=ENV_KEY,
        api_kye=MISSPELLED_KEY,
        headers={"api-key": HEADER_KEY},
    )


def canary_endpoint_settings():
    return EndpointSettings(
        base_url=f"http://{URL_USER}:{URL_PASSWORD}@127.0.0.1:9/v1",
        models=(MODEL,),
        api_key=ENV_KEY,
        headers={"api-key": HEADER_KEY, "X-Team": "blue"},
    )


def test_settings_know_every_secret_they_hold():
    found = set(settings_secrets(canary_provider_settings()))
    assert {ENV_KEY, MISSPELLED_KEY, HEADER_KEY, URL_PASSWORD, BASIC} <= found
    assert {ENV_KEY, HEADER_KEY, "blue", URL_PASSWORD} <= set(
        settings_secrets(canary_endpoint_settings())
    )


def test_settings_reprs_never_show_a_key_a_header_value_or_a_url_password():
    provider, endpoint = canary_provider_settings(), canary_endpoint_settings()
    settings = Settings(endpoints={"azure": endpoint})
    for text in (repr(provider), str(provider), repr(endpoint), str(endpoint), repr(settings)):
        assert not leaks(text), text
    assert "127.0.0.1:9" in repr(provider)


def test_shown_settings_mask_keys_headers_url_passwords_and_secret_looking_extras():
    shown = shown_settings(canary_provider_settings())
    assert shown["api_key"] == "***cdef"
    assert shown["api_kye"] == mask_secret(MISSPELLED_KEY)
    assert shown["headers"] == {"api-key": "***3210"}
    assert shown["base_url"] == "http://***@127.0.0.1:9/v1"
    assert shown["timeout"] == 60.0
    endpoint = shown_settings(canary_endpoint_settings())
    assert endpoint["headers"] == {"api-key": "***3210", "X-Team": "***"}
    assert not leaks(repr(shown) + repr(endpoint))


def test_context_and_transport_reprs_never_show_secrets():
    info = ProviderInfo(
        name="reprs",
        url="https://example.invalid",
        models=(MODEL,),
        supports_stream=True,
        needs_auth=True,
    )
    context = ProviderContext(info, canary_provider_settings())
    assert {ENV_KEY, MISSPELLED_KEY, HEADER_KEY, URL_PASSWORD} <= set(context.secrets)
    transport = HttpTransport("reprs", secrets=context.secrets)
    for text in (repr(context), str(context), repr(transport)):
        assert not leaks(text), text
    assert repr(context) == "ProviderContext(name='reprs', base_url='http://***@127.0.0.1:9/v1')"


# -- errors ----------------------------------------------------------------------------------------


def every_text_of(error: BaseException) -> list[str]:
    """Everything an error can show: str, repr, args, pickle, info, and its whole chain."""
    texts = [str(error), repr(error), repr(error.args)]
    texts.append(pickle.dumps(error).decode("latin-1"))
    copy = pickle.loads(pickle.dumps(error))
    texts += [str(copy), repr(copy), repr(copy.args)]
    if isinstance(error, ProviderError):
        texts += [error.upstream_message, error.info().model_dump_json(), repr(error.__reduce__())]
    for attempt in getattr(error, "attempts", ()):
        texts += [attempt.describe(), repr(attempt)]
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts += every_text_of(linked)
    return texts


def assert_no_leak(error: BaseException) -> None:
    for text in every_text_of(error):
        assert not leaks(text), text


def test_our_errors_never_show_a_registered_secret_in_any_form():
    register_secret(ENV_KEY)
    errors = [
        ServerError("acme", f"echo: Bearer {ENV_KEY}", status=500),
        InvalidInput(f"bad key {ENV_KEY}", field="api_key"),
        PluginFailed("acme", f"RuntimeError: {ENV_KEY!r}"),
    ]
    for error in errors:
        assert_no_leak(error)
    assert errors[0].upstream_message == "echo: Bearer ***"
    assert pickle.loads(pickle.dumps(errors[1])).field == "api_key"


def test_a_secret_registered_after_the_error_was_made_is_hidden_when_shown_and_by_scrub():
    late = "sk-late-0123456789abcdef0123456789"
    error = AuthenticationFailed("acme", f"bad key {late}", status=401)
    register_secret(late)
    shown = [str(error), repr(error), error.info().model_dump_json(), repr(error.__reduce__())]
    assert not leaks("".join(shown), (late,))
    assert_no_leak(scrub(error))
    assert error.upstream_message == "bad key ***"


def test_all_providers_failed_and_stream_interrupted_survive_pickling_without_secrets():
    register_secret(ENV_KEY)
    attempt = Attempt(
        provider="acme", model=MODEL, outcome="failed", error="ServerError", message=ENV_KEY
    )
    failed = AllProvidersFailed(MODEL, [attempt])
    copy = pickle.loads(pickle.dumps(failed))
    assert (copy.model, copy.attempts) == (MODEL, failed.attempts)
    assert failed.attempts == (attempt.model_copy(update={"message": "***"}),)
    assert_no_leak(failed)
    cause = ServerError("acme", f"mid-stream: {ENV_KEY}")
    broken = StreamInterrupted("acme", "partial", cause)
    copy = pickle.loads(pickle.dumps(broken))
    assert (copy.provider, copy.text, copy.cause.upstream_message) == (
        "acme",
        "partial",
        "mid-stream: ***",
    )
    assert_no_leak(broken)


def test_scrub_drops_a_suppressed_or_secret_holding_chained_exception():
    key = "sk-scrub-0123456789abcdef01234567"
    try:
        try:
            raise RuntimeError(f"holds {key}")
        except RuntimeError as inner:
            raise ServerError("acme", "outer") from inner
    except ServerError as error:
        caught = error
    assert scrub(caught, [key]).__cause__ is None and caught.__context__ is None
    try:
        try:
            raise ValueError("harmless")
        except ValueError as inner:
            raise ServerError("acme", "outer") from inner
    except ServerError as error:
        kept = scrub(error, [key])
    assert isinstance(kept.__cause__, ValueError)


class Raising:
    """A provider plugin that raises ``make()``'s exception when asked for an answer."""

    def __init__(self, name, make):
        self.name, self.make = name, make

    @hookimpl
    def provider_info(self):
        return ProviderInfo(
            name=self.name,
            url="https://example.invalid",
            models=(MODEL,),
            supports_stream=True,
            needs_auth=True,
        )

    @hookimpl
    def create_completion(self, model, messages, stream, context):
        raise self.make(context.api_key)


def raising_provider(name, make, key):
    registry = Registry(
        settings=Settings(),
        load_entry_points=False,
        environ={f"HYPOTEZ_{name.upper()}_API_KEY": key},
    )
    registry.register(Raising(name, make))
    return registry.provider(name)


def test_a_plugins_exception_holding_the_key_becomes_plugin_failed_with_nothing_attached():
    key = "sk-plugin-crash-0123456789abcdef0123"

    def make(api_key):
        return RuntimeError(f"could not use key {api_key}")

    provider = raising_provider("crashing", make, key)
    with pytest.raises(PluginFailed) as caught:
        provider.complete(MODEL, MESSAGES)
    error = caught.value
    assert error.__cause__ is None and error.__context__ is None
    assert "RuntimeError: could not use key ***" in str(error)
    for text in every_text_of(error):
        assert not leaks(text, (key,)), text


def test_a_plugins_own_invalid_input_is_reraised_with_the_key_hidden():
    key = "sk-plugin-invalid-0123456789abcdef01"

    def make(api_key):
        return InvalidInput(f"this key cannot send images: {api_key}", field="messages")

    provider = raising_provider("refusing", make, key)
    with pytest.raises(InvalidInput, match=r"cannot send images: \*\*\*") as caught:
        provider.complete(MODEL, MESSAGES)
    assert caught.value.field == "messages"
    for text in every_text_of(caught.value):
        assert not leaks(text, (key,)), text


def test_a_plugins_provider_error_loses_a_chained_exception_holding_the_key():
    key = "sk-plugin-chained-0123456789abcdef01"

    def make(api_key):
        try:
            raise KeyError(f"session for {api_key}")
        except KeyError as error:
            failure = ServerError("chaining", "the upstream failed")
            failure.__cause__ = error
            return failure

    provider = raising_provider("chaining", make, key)
    with pytest.raises(ServerError) as caught:
        provider.complete(MODEL, MESSAGES)
    assert caught.value.__cause__ is None
    for text in every_text_of(caught.value):
        assert not leaks(text, (key,)), text


# -- errors from an upstream that echoes every credential back ------------------------------------


@pytest.fixture
def echo():
    with EchoingUpstream() as upstream:
        yield upstream


@pytest.fixture
def echo_registry(echo):
    host = echo.url.removeprefix("http://")
    settings = parse_settings(
        f"""
[endpoints.azure]
base_url = "http://{URL_USER}:{URL_PASSWORD}@{host}/v1"
models = ["{MODEL}"]
headers = {{ "api-key" = "{HEADER_KEY}" }}

[endpoints.keyed]
base_url = "{echo.url}/v1"
models = ["{MODEL}"]
api_key_env = "KEYED_API_KEY"

[providers.anthropic]
models = ["{MODEL}"]

[routes]
{MODEL} = ["azure", "keyed", "anthropic"]

[retry]
attempts = 1
"""
    )
    environ = {
        "KEYED_API_KEY": ENV_KEY,
        "ANTHROPIC_API_KEY": X_API_KEY,
        "HYPOTEZ_ANTHROPIC_BASE_URL": echo.url,
        "HYPOTEZ_LOAD_PLUGINS": "anthropic",
    }
    registry = Registry(settings=settings, environ=environ)
    yield registry
    registry.close()


def test_the_echoing_upstream_really_receives_every_canary(echo, echo_registry):
    for name in ("azure", "keyed", "anthropic"):
        with pytest.raises(ProviderError):
            echo_registry.provider(name).complete(MODEL, MESSAGES)
    received = " ".join(str(request.headers) for request in echo.requests)
    for canary in (ENV_KEY, X_API_KEY, HEADER_KEY, BASIC):
        assert canary in received


@pytest.mark.parametrize(
    "shape",
    # "object" and "text" bodies are cut to 300 and 200 characters: redacted first.
    ["message", "object", "text"],
)
@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("name", ["azure", "keyed", "anthropic"])
def test_an_error_echoing_credentials_shows_none_of_them_even_where_the_body_is_cut(
    echo, echo_registry, name, status, shape
):
    echo.status, echo.shape = status, shape
    with pytest.raises(ProviderError) as caught:
        echo_registry.provider(name).complete(MODEL, MESSAGES)
    assert_no_leak(caught.value)
    if shape == "message":
        assert "***" in caught.value.upstream_message


@pytest.mark.parametrize("stream", [False, True])
def test_routed_failures_show_no_credential_in_attempts_or_all_providers_failed(
    echo, echo_registry, stream
):
    router = Router(echo_registry, sleep=lambda seconds: None)
    with pytest.raises(AllProvidersFailed) as caught:
        if stream:
            list(router.stream(MODEL, MESSAGES))
        else:
            router.complete(MODEL, MESSAGES)
    failed = caught.value
    assert [attempt.provider for attempt in failed.attempts] == ["azure", "keyed", "anthropic"]
    assert_no_leak(failed)


class RaisingObserver:
    """An observer whose hook raises an exception that quotes the key."""

    @hookimpl
    def on_attempt_end(self, provider, model, attempt, outcome, duration, error):
        raise RuntimeError(f"observer saw {ENV_KEY} and {HEADER_KEY}")


def test_log_records_at_debug_show_no_credential(echo, echo_registry, caplog):
    echo_registry.register(RaisingObserver(), name="raising-observer")
    router = Router(echo_registry, sleep=lambda seconds: None)
    with caplog.at_level(logging.DEBUG, logger="hypotez_providers"):
        with pytest.raises(AllProvidersFailed):
            router.complete(MODEL, MESSAGES)
        logging.getLogger("hypotez_providers.router").debug("direct: %s", URL_PASSWORD)
    assert "falling back from azure to keyed" in caplog.text
    assert "observer hook on_attempt_end raised" in caplog.text
    assert "RuntimeError: observer saw ***" in caplog.text  # the traceback, redacted
    assert "direct: ***" in caplog.text
    assert not leaks(caplog.text)
    for record in caplog.records:
        assert not leaks(record.getMessage() + (record.exc_text or ""))


def test_an_undecodable_event_is_redacted_before_it_is_cut(caplog):
    register_secret(ENV_KEY)
    event = straddling([ENV_KEY], (200,))  # the cut at 200 falls inside the key
    with caplog.at_level(logging.DEBUG, logger="hypotez_providers"):
        skip_malformed("acme", None, 0, event)
    with pytest.raises(MalformedResponse) as caught:
        skip_malformed("acme", None, 3, event)
    assert_no_leak(caught.value)
    assert "skipped an undecodable stream event" in caplog.text and not leaks(caplog.text)


def test_every_logger_of_the_package_redacts():
    for module in pkgutil.walk_packages(hypotez_providers.__path__, "hypotez_providers."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    loggers = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.split(".")[0] == "hypotez_providers" and isinstance(logger, logging.Logger)
    ]
    assert loggers
    for logger in loggers:
        assert any(isinstance(f, RedactingFilter) for f in logger.filters), logger.name


def test_the_process_wide_redactor_starts_empty_and_is_public():
    assert hypotez_providers.register_secret is register_secret
    assert hypotez_providers.redact_then_cut is redact_then_cut
    assert len(Redactor()) == 0 and isinstance(REDACTOR, Redactor)


def test_the_readme_security_example_prints_what_the_readme_says(tmp_path):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Security", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    [shown] = re.findall(r"```text\n(.*?)```", section, re.S)
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == shown
