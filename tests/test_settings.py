from pathlib import Path

import pytest

from hypotez_providers import ConfigError, load_settings
from hypotez_providers.settings import default_config_path, parse_settings


def test_no_file_at_the_default_place_means_defaults(tmp_path):
    settings = load_settings(environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert settings.providers == {}
    assert settings.for_provider("gravityengine", environ={}).timeout == 60.0


def test_the_default_file_lives_in_the_user_config_directory(tmp_path):
    path = default_config_path({"XDG_CONFIG_HOME": str(tmp_path)})
    assert path == tmp_path / "hypotez" / "config.toml"


def test_hypotez_config_names_the_file_and_it_must_exist(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_settings(environ={"HYPOTEZ_CONFIG": str(missing)})
    assert caught.value.path == str(missing)


def test_file_settings_are_read(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[providers.gravityengine]\nbase_url = "http://127.0.0.1:9"\ntimeout = 5\n')
    settings = load_settings(environ={"HYPOTEZ_CONFIG": str(path)})
    effective = settings.for_provider("gravityengine", environ={})
    assert effective.base_url == "http://127.0.0.1:9"
    assert effective.timeout == 5


def test_environment_beats_file_and_hypotez_key_beats_vendor_key():
    settings = parse_settings(
        '[providers.acme-ai]\nbase_url = "http://file"\napi_key = "file-key-123456"\n'
    )
    environ = {
        "HYPOTEZ_ACME_AI_BASE_URL": "http://env",
        "ACME_API_KEY": "vendor-key-123456",
    }
    effective = settings.for_provider("acme-ai", api_key_env="ACME_API_KEY", environ=environ)
    assert effective.base_url == "http://env"
    assert effective.api_key_value == "vendor-key-123456"
    environ["HYPOTEZ_ACME_AI_API_KEY"] = "hypotez-key-123456"
    effective = settings.for_provider("acme-ai", api_key_env="ACME_API_KEY", environ=environ)
    assert effective.api_key_value == "hypotez-key-123456"


def test_keys_never_show_in_reprs_or_dumps():
    settings = parse_settings('[providers.x]\napi_key = "sk-very-secret-key-0000"\n')
    effective = settings.for_provider("x", environ={})
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in repr(effective)
    assert "sk-very-secret" not in str(effective.model_dump())


def test_a_toml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[providers.x]\nbase_url = "ok"\ntimeout = = 3\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert caught.value.line == 3
    assert str(path) in str(caught.value)


def test_a_bad_value_names_file_line_and_key(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '# settings\n[providers.a]\ntimeout = 3\n\n[providers.b]\nenabled = true\ntimeout = "slow"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    error = caught.value
    assert (error.line, error.key) == (7, "providers.b.timeout")
    assert f"{path}, line 7: providers.b.timeout" in str(error)


def test_an_unknown_top_level_table_is_an_error_with_the_closest_name(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean 'providers'\?") as caught:
        parse_settings("[provider.x]\ntimeout = 3\n", path=Path("c.toml"))
    assert caught.value.line == 1


def test_a_misspelt_key_is_reported_before_the_required_key_it_hides():
    with pytest.raises(ConfigError, match=r"unknown key 'modles' \(did you mean 'models'\?\)"):
        parse_settings('[endpoints.e]\nbase_url = "http://h/v1"\nmodles = ["m"]\n')


def test_a_missing_key_points_at_its_table():
    with pytest.raises(
        ConfigError, match=r"line 2: endpoints\.e\.models: Field required"
    ) as caught:
        parse_settings('# local\n[endpoints.e]\nbase_url = "http://h/v1"\n', path=Path("c.toml"))
    assert caught.value.line == 2


def test_a_key_set_by_a_dotted_name_is_found_on_its_line():
    with pytest.raises(ConfigError) as caught:
        parse_settings('[providers]\nx.timeout = 1\ny.timeout = "slow"\n')
    assert (caught.value.line, caught.value.key) == (3, "providers.y.timeout")
