"""Settings: declared defaults, overrides from an environment mapping, refused values."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.config import SETTINGS, Settings, load_settings
from keel.errors import ConfigurationError, KeelError


def test_defaults_resolve_home_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    home = (tmp_path / ".keel").resolve()
    assert settings.home == home
    assert settings.home.is_absolute()
    assert settings.store_uri == f"sqlite:///{home / 'keel.db'}"
    assert settings.artifact_uri == (home / "artifacts").as_uri()
    assert settings.tracking_uri == ""
    assert settings.experiment == "Default"
    assert settings.flush_interval == 0.5
    assert settings.buffer_points == 100_000
    assert settings.capture_environment is True
    assert settings.db_timeout == 30.0
    assert settings.sqlite_synchronous == "NORMAL"


def test_loading_does_not_create_the_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    load_settings({})
    assert not (tmp_path / ".keel").exists()


def test_every_setting_is_declared_once_with_a_doc_and_a_readable_default() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names))
    for setting in SETTINGS:
        assert setting.name.startswith("KEEL_")
        assert setting.doc.strip()
        assert setting.read({}) == setting.default
        assert setting.read({setting.name: ""}) == setting.default
    assert set(load_settings({}).raw) == set(names)


def test_settings_has_a_field_for_every_declared_variable() -> None:
    fields = set(Settings.__dataclass_fields__) - {"raw", "home", "store_uri", "artifact_uri"}
    derived = {"KEEL_HOME", "KEEL_STORE_URI", "KEEL_ARTIFACT_URI"}
    assert len(fields) == len(SETTINGS) - len(derived)


def test_overrides_come_from_the_mapping_passed_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_EXPERIMENT", "from-process-env")
    environ = {
        "KEEL_HOME": str(tmp_path / "home"),
        "KEEL_EXPERIMENT": "credit",
        "KEEL_FLUSH_INTERVAL": "0.25",
        "KEEL_BUFFER_POINTS": "5000",
        "KEEL_CAPTURE_ENVIRONMENT": "off",
        "KEEL_DB_TIMEOUT": "2.5",
        "KEEL_SQLITE_SYNCHRONOUS": "full",
        "KEEL_TRACKING_URI": "http://127.0.0.1:5000",
    }
    settings = load_settings(environ)
    assert settings.home == tmp_path / "home"
    assert settings.store_uri == f"sqlite:///{tmp_path / 'home' / 'keel.db'}"
    assert settings.artifact_uri == (tmp_path / "home" / "artifacts").as_uri()
    assert settings.experiment == "credit"
    assert settings.flush_interval == 0.25
    assert settings.buffer_points == 5000
    assert settings.capture_environment is False
    assert settings.db_timeout == 2.5
    assert settings.sqlite_synchronous == "FULL"
    assert settings.tracking_uri == "http://127.0.0.1:5000"


def test_without_a_mapping_the_process_environment_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEEL_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("KEEL_EXPERIMENT", "from-env")
    settings = load_settings()
    assert settings.home == tmp_path / "h"
    assert settings.experiment == "from-env"


def test_explicit_store_and_artifact_uris_are_kept(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "KEEL_HOME": str(tmp_path),
            "KEEL_STORE_URI": "postgresql+psycopg://keel@db:5432/keel",
            "KEEL_ARTIFACT_URI": "s3://bucket/prefix",
        }
    )
    assert settings.store_uri == "postgresql+psycopg://keel@db:5432/keel"
    assert settings.artifact_uri == "s3://bucket/prefix"


def test_relative_home_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({"KEEL_HOME": "sub/dir"}).home == (tmp_path / "sub" / "dir").resolve()


def test_home_expands_the_user_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert load_settings({"KEEL_HOME": "~/keel"}).home == (tmp_path / "keel").resolve()


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " True "])
def test_true_spellings(raw: str) -> None:
    assert load_settings({"KEEL_CAPTURE_ENVIRONMENT": raw}).capture_environment is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "off"])
def test_false_spellings(raw: str) -> None:
    assert load_settings({"KEEL_CAPTURE_ENVIRONMENT": raw}).capture_environment is False


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("KEEL_FLUSH_INTERVAL", "-1"),
        ("KEEL_FLUSH_INTERVAL", "0"),
        ("KEEL_FLUSH_INTERVAL", "soon"),
        ("KEEL_FLUSH_INTERVAL", "nan"),
        ("KEEL_DB_TIMEOUT", "-0.5"),
        ("KEEL_DB_TIMEOUT", "30s"),
        ("KEEL_BUFFER_POINTS", "0"),
        ("KEEL_BUFFER_POINTS", "-10"),
        ("KEEL_BUFFER_POINTS", "1.5"),
        ("KEEL_BUFFER_POINTS", "1e3"),
        ("KEEL_CAPTURE_ENVIRONMENT", "maybe"),
        ("KEEL_CAPTURE_ENVIRONMENT", "2"),
        ("KEEL_SQLITE_SYNCHRONOUS", "fast"),
    ],
)
def test_invalid_values_raise_configuration_error_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({name: raw})
    error = caught.value
    assert isinstance(error, KeelError)
    assert error.code == "CONFIGURATION"
    assert name in error.message
    assert repr(raw) in error.message
    assert "unset it or fix it" in error.message


@pytest.mark.parametrize("name", ["KEEL_FLUSH_INTERVAL", "KEEL_DB_TIMEOUT"])
@pytest.mark.parametrize("raw", ["inf", "1e400"])
def test_infinite_durations_are_refused(name: str, raw: str) -> None:
    # An infinite flush interval kills the background writer thread (Event.wait overflows)
    # and an infinite timeout breaks opening SQLite (int(inf * 1000)): refuse them here.
    with pytest.raises(ConfigurationError, match=name):
        load_settings({name: raw})


def test_an_invalid_variable_is_reported_even_when_others_are_valid(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="KEEL_CAPTURE_ENVIRONMENT"):
        load_settings({"KEEL_HOME": str(tmp_path), "KEEL_CAPTURE_ENVIRONMENT": "maybe"})
