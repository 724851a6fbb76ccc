"""IHC API configuration: environment, .env file, CLI overrides, and clear messages for bad values."""

from __future__ import annotations

import json

import pytest

from pipeline.errors import InputError
from pipeline.ihc_api import load_config, with_overrides
from pipeline.ihc_api.config import DEFAULT_API_URL


def test_defaults_when_nothing_is_set():
    config = load_config(environ={}, env_file=False)
    assert config.api_url == DEFAULT_API_URL
    assert (config.max_journeys, config.max_sessions) == (100, 3000)
    assert config.api_key is None and config.conv_type_id is None
    assert config.redistribution_parameter is None


def test_precedence_cli_over_environment_over_env_file(tmp_path):
    env_file = tmp_path / "settings.env"
    env_file.write_text(
        "IHC_API_KEY=from-file\nIHC_CONV_TYPE_ID=file-type\nIHC_MAX_SESSIONS_PER_REQUEST=200\n"
        "IHC_MAX_JOURNEYS_PER_REQUEST=50\n"
    )
    environ = {"IHC_CONV_TYPE_ID": "env-type", "IHC_MAX_SESSIONS_PER_REQUEST": "300"}
    config = load_config({"max_sessions": 250}, env_file=env_file, environ=environ)
    assert config.api_key == "from-file"  # only in the file
    assert config.conv_type_id == "env-type"  # environment beats the file
    assert config.max_sessions == 250  # the CLI beats both
    assert config.max_journeys == 50


def test_default_env_file_is_dot_env_in_working_directory(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("IHC_API_KEY=k1\nIHC_CONV_TYPE_ID=t1\n")
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert (config.api_key, config.conv_type_id) == ("k1", "t1")
    assert load_config(environ={}, env_file=False).api_key is None


def test_env_file_does_not_touch_process_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("IHC_API_KEY", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("IHC_API_KEY=secret-from-file\n")
    load_config(env_file=env_file)
    import os

    assert "IHC_API_KEY" not in os.environ


def test_missing_key_and_conv_type_are_clear_input_errors():
    with pytest.raises(InputError, match="IHC_API_KEY"):
        load_config(environ={}, env_file=False).require()
    with pytest.raises(InputError, match="IHC_CONV_TYPE_ID"):
        load_config({"api_key": "k"}, environ={}, env_file=False).require()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"max_journeys": "many"}, "IHC_MAX_JOURNEYS_PER_REQUEST must be a whole number"),
        ({"max_sessions": 0}, "IHC_MAX_SESSIONS_PER_REQUEST must be at least 1"),
        ({"read_timeout": "-1"}, "IHC_API_READ_TIMEOUT must be a positive number"),
        ({"api_url": "ftp://example.org/x"}, "must be an http"),
        ({"api_url": "https://api.example.org/v1/compute_ihc?conv_type_id=x"}, "query string"),
        ({"api_key": "two words"}, "whitespace"),
        ({"api_key": "clé-ü"}, "printable ASCII"),
    ],
)
def test_bad_values_are_input_errors(overrides, message):
    with pytest.raises(InputError, match=message):
        load_config(overrides, environ={}, env_file=False)


def test_missing_env_file_named_explicitly_is_an_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_config(env_file=tmp_path / "nope.env", environ={})


def test_redistribution_parameter_file_is_read_and_checked(tmp_path):
    rule = {
        "initializer": {
            "direction": "earlier_sessions_only",
            "receive_threshold": 0,
            "redistribution_channel_labels": ["Direct"],
        },
        "closer": {
            "direction": "later_sessions_only",
            "receive_threshold": 0.1,
            "redistribution_channel_labels": ["SEO - Brand"],
        },
    }
    path = tmp_path / "redistribution.json"
    path.write_text(json.dumps(rule))
    config = load_config({"redistribution_file": str(path)}, environ={}, env_file=False)
    assert config.redistribution_parameter == rule

    path.write_text("{not json")
    with pytest.raises(InputError, match="is not JSON"):
        load_config({"redistribution_file": str(path)}, environ={}, env_file=False)
    path.write_text(json.dumps({"opener": {}}))
    with pytest.raises(InputError, match="unknown phase"):
        load_config({"redistribution_file": str(path)}, environ={}, env_file=False)
    path.write_text(json.dumps({"holder": {"direction": "sideways"}}))
    with pytest.raises(InputError, match="direction"):
        load_config({"redistribution_file": str(path)}, environ={}, env_file=False)
    with pytest.raises(InputError, match="cannot be read"):
        load_config({"redistribution_file": str(tmp_path / "missing.json")}, environ={}, env_file=False)


def test_key_is_hidden_from_repr_and_describe():
    config = load_config({"api_key": "sk-very-secret", "conv_type_id": "t"}, environ={}, env_file=False)
    assert "sk-very-secret" not in repr(config)
    assert "sk-very-secret" not in json.dumps(config.describe())
    assert config.describe()["api_key"] == "***"


def test_with_overrides_keeps_key_and_rechecks():
    config = load_config({"api_key": "k", "conv_type_id": "t"}, environ={}, env_file=False)
    faster = with_overrides(config, backoff_base=0.001)
    assert faster.api_key == "k" and faster.backoff_base == 0.001 and faster.conv_type_id == "t"
    with pytest.raises(InputError):
        with_overrides(config, max_attempts=0)
