"""Configuration: defaults < TOML file < INTAKE_* environment < explicit overrides."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from intake.server.config import Config, ConfigError, env_name, load_config, parse_size

MiB, GiB = 1024**2, 1024**3


def write_toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "intake.toml"
    path.write_text(text)
    return path


def test_defaults():
    config = load_config({})
    assert config == Config()
    assert config.data_dir == Path("data")
    assert config.keys_dir == Path("keys")
    assert config.database_url == ""
    assert config.max_upload == 2 * GiB
    assert config.codename_words >= 7
    assert config.csrf_time_limit == 24 * 3600


def test_sqlite_by_default_inside_the_data_folder(tmp_path):
    config = load_config({"INTAKE_DATA_DIR": str(tmp_path / "d")})
    url = config.effective_database_url
    assert url.startswith("sqlite:///")
    db_file = Path(url.removeprefix("sqlite:///"))
    assert db_file.is_absolute() and db_file.parent == (tmp_path / "d").resolve()
    assert config.store_dir.parent == config.data_dir == tmp_path / "d"


def test_database_url_overrides_sqlite():
    url = "postgresql+psycopg://intake@127.0.0.1:5432/intake"
    config = load_config({"INTAKE_DATABASE_URL": url})
    assert config.effective_database_url == url


def test_environment_sets_every_field():
    env = {"INTAKE_DATA_DIR": "/srv/intake", "INTAKE_KEYS_DIR": "/etc/intake/keys",
           "INTAKE_MAX_UPLOAD": "500M", "INTAKE_MAX_FILES": "9",
           "INTAKE_CODENAME_WORDS": "8", "INTAKE_CSRF_TIME_LIMIT": "7200"}
    config = load_config(env)
    assert config.data_dir == Path("/srv/intake")
    assert config.keys_dir == Path("/etc/intake/keys")
    assert config.max_upload == 500 * MiB
    assert (config.max_files, config.codename_words, config.csrf_time_limit) == (9, 8, 7200)


def test_every_field_has_an_intake_variable():
    for field in dataclasses.fields(Config):
        assert env_name(field.name) == "INTAKE_" + field.name.upper()
        default = getattr(Config(), field.name)
        config = load_config({env_name(field.name): str(default)})
        assert getattr(config, field.name) == default, field.name


def test_toml_file_named_by_intake_config(tmp_path):
    path = write_toml(tmp_path, 'data_dir = "/var/lib/intake"\nmax_upload = "1G"\n'
                                "max_files = 12\n")
    config = load_config({"INTAKE_CONFIG": str(path)})
    assert config.data_dir == Path("/var/lib/intake")
    assert config.max_upload == GiB
    assert config.max_files == 12
    assert config.keys_dir == Path("keys")  # not in the file: the default


def test_environment_overrides_the_file(tmp_path):
    path = write_toml(tmp_path, 'keys_dir = "/from/file"\nmax_upload = 1048576\n')
    config = load_config({"INTAKE_CONFIG": str(path), "INTAKE_KEYS_DIR": "/from/env"})
    assert config.keys_dir == Path("/from/env")
    assert config.max_upload == MiB  # only what the environment names is overridden


def test_explicit_overrides_win(tmp_path):
    config = load_config({"INTAKE_MAX_FILES": "3"}, max_files=4, data_dir=tmp_path)
    assert config.max_files == 4 and config.data_dir == tmp_path


@pytest.mark.parametrize(("text", "size"), [
    ("2G", 2 * GiB), ("500M", 500 * MiB), ("500MiB", 500 * MiB), ("64K", 64 * 1024),
    ("1T", 1024 * GiB), ("1048576", MiB), ("2g", 2 * GiB), (" 3 G ", 3 * GiB), ("10GB", 10 * GiB),
])
def test_max_upload_with_units(text, size):
    assert parse_size(text) == size
    assert load_config({"INTAKE_MAX_UPLOAD": text}).max_upload == size


@pytest.mark.parametrize(("env", "names"), [
    ({"INTAKE_MAX_UPLOAD": "lots"}, ("max_upload", "INTAKE_MAX_UPLOAD")),
    ({"INTAKE_MAX_UPLOAD": "2X"}, ("max_upload", "INTAKE_MAX_UPLOAD")),
    ({"INTAKE_MAX_UPLOAD": "-5M"}, ("max_upload", "INTAKE_MAX_UPLOAD")),
    ({"INTAKE_MAX_UPLOAD": "0"}, ("max_upload", "INTAKE_MAX_UPLOAD")),
    ({"INTAKE_MAX_FILES": "many"}, ("max_files", "INTAKE_MAX_FILES")),
    ({"INTAKE_CSRF_TIME_LIMIT": "1.5h"}, ("csrf_time_limit", "INTAKE_CSRF_TIME_LIMIT")),
    ({"INTAKE_CODENAME_WORDS": "6"}, ("codename_words",)),
])
def test_bad_values_name_the_setting(env, names):
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    for name in names:
        assert name in str(caught.value)


def test_unknown_key_in_the_file_is_refused(tmp_path):
    path = write_toml(tmp_path, 'data_dir = "/srv"\nmax_uplaod = "1G"\n')
    with pytest.raises(ConfigError, match="max_uplaod"):
        load_config({"INTAKE_CONFIG": str(path)})


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="colour"):
        load_config({}, colour="blue")


def test_broken_or_missing_file_is_a_config_error(tmp_path):
    broken = write_toml(tmp_path, "data_dir = [unterminated\n")
    with pytest.raises(ConfigError, match="intake.toml"):
        load_config({"INTAKE_CONFIG": str(broken)})
    with pytest.raises(ConfigError, match="nowhere.toml"):
        load_config({"INTAKE_CONFIG": str(tmp_path / "nowhere.toml")})


def test_bad_value_in_the_file_names_the_setting(tmp_path):
    path = write_toml(tmp_path, 'max_files = "a dozen"\n')
    with pytest.raises(ConfigError, match="max_files"):
        load_config({"INTAKE_CONFIG": str(path)})


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_config({}).max_upload = 1  # type: ignore[misc]


def test_app_uses_the_config(tmp_path, team_key):
    from support import make_config

    from intake.server.witness import create_app

    config = make_config(tmp_path, team_key.keys_dir, max_upload="3M", csrf_time_limit=5000)
    app = create_app(config)
    try:
        assert app.config["MAX_CONTENT_LENGTH"] == 3 * MiB
        assert app.config["WTF_CSRF_TIME_LIMIT"] == 5000
        assert app.extensions["intake"].db.url == config.effective_database_url
        assert (tmp_path / "data" / "intake.db").exists()
    finally:
        app.extensions["intake"].close()
