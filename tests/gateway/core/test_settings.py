"""Settings from TRUNKLINE_* variables and the TOML file, and the production-secret guard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.core.settings import (
    KNOWN_WEAK_SECRETS,
    MIN_SECRET_LENGTH,
    InsecureSettingsError,
    Settings,
    get_settings,
)

STRONG = "Kq3-vT8_zP1xW6mB4nR9sY2c"  # MIN_SECRET_LENGTH characters, all different
assert len(STRONG) == MIN_SECRET_LENGTH


def test_environment_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRUNKLINE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TRUNKLINE_DATABASE_URL", "postgresql+psycopg://u@db/x")
    monkeypatch.setenv("TRUNKLINE_API_PORT", "9443")
    monkeypatch.setenv("TRUNKLINE_OPERATOR_TOKEN", STRONG)
    monkeypatch.setenv("DATABASE_URL", "sqlite:///ignored.db")  # no prefix: not ours
    settings = Settings()
    assert settings.data_dir == tmp_path.resolve()
    assert settings.database_url == "postgresql+psycopg://u@db/x"
    assert settings.effective_database_url == "postgresql+psycopg://u@db/x"
    assert settings.api_port == 9443
    assert settings.operator_token is not None
    assert settings.operator_token.get_secret_value() == STRONG
    assert STRONG not in repr(settings)


def test_defaults_derive_from_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'trunkline.db'}"
    assert settings.effective_token_keys_dir == tmp_path.resolve() / "keys"
    assert settings.tls_dir == tmp_path.resolve() / "tls"
    assert settings.turn_urls == []
    assert settings.effective_public_endpoint == "https://127.0.0.1:8443/"


def test_data_dir_defaults_to_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings().data_dir == (tmp_path / "trunkline").resolve()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("turn:a.example:3478", ["turn:a.example:3478"]),
        ("turn:a:3478, turns:b:5349 ,stun:c", ["turn:a:3478", "turns:b:5349", "stun:c"]),
        ("turn:a,,turn:b,", ["turn:a", "turn:b"]),
        ("", []),
    ],
)
def test_comma_lists(monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("TRUNKLINE_TURN_URLS", value)
    monkeypatch.setenv("TRUNKLINE_TURN_NEAREST_URLS", value)
    settings = Settings()
    assert settings.turn_urls == expected
    assert settings.turn_nearest_urls == expected


def test_config_file_with_environment_winning(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "trunkline.toml"
    config.write_text(
        'database_url = "postgresql+psycopg://file/db"\n'
        "api_port = 7443\n"
        'turn_urls = ["turn:file-a", "turn:file-b"]\n'
        'token_issuer = "from-file"\n'
    )
    monkeypatch.setenv("TRUNKLINE_CONFIG_FILE", str(config))
    monkeypatch.setenv("TRUNKLINE_API_PORT", "6443")
    settings = Settings()
    assert settings.database_url == "postgresql+psycopg://file/db"
    assert settings.turn_urls == ["turn:file-a", "turn:file-b"]
    assert settings.token_issuer == "from-file"
    assert settings.api_port == 6443
    monkeypatch.setenv("TRUNKLINE_TURN_URLS", "turn:env")
    assert Settings().turn_urls == ["turn:env"]


def test_missing_config_file_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRUNKLINE_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(FileNotFoundError, match=r"absent\.toml"):
        Settings()


@pytest.mark.parametrize("port", ["0", "65536", "https"])
def test_invalid_values_are_refused(monkeypatch: pytest.MonkeyPatch, port: str) -> None:
    monkeypatch.setenv("TRUNKLINE_API_PORT", port)
    with pytest.raises(ValidationError, match="api_port"):
        Settings()


def test_turn_ttl_is_capped_by_the_spec_maximum() -> None:
    with pytest.raises(ValidationError, match="turn_max_ttl_seconds"):
        Settings(turn_max_ttl_seconds=172801)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"api_host": "0.0.0.0", "api_port": 8443}, "https://127.0.0.1:8443/"),
        ({"api_host": "::", "api_port": 1}, "https://127.0.0.1:1/"),
        ({"api_host": "::1", "api_port": 8443}, "https://[::1]:8443/"),
        ({"api_host": "gw.example", "api_port": 443}, "https://gw.example:443/"),
        ({"public_endpoint": "https://sms.example.com"}, "https://sms.example.com/"),
        ({"public_endpoint": "https://sms.example.com///"}, "https://sms.example.com/"),
    ],
)
def test_public_endpoint(settings: dict[str, Any], expected: str) -> None:
    resolved = Settings(**settings)
    assert resolved.effective_public_endpoint == expected
    assert resolved.public_host == expected.removeprefix("https://").rstrip("/")


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUNKLINE_TOKEN_ISSUER", "first")
    assert get_settings() is get_settings()
    monkeypatch.setenv("TRUNKLINE_TOKEN_ISSUER", "second")
    assert get_settings().token_issuer == "first"
    get_settings.cache_clear()
    assert get_settings().token_issuer == "second"


# require_production_secrets -----------------------------------------------------------------


def test_strong_secrets_pass() -> None:
    Settings(operator_token=STRONG).require_production_secrets()
    Settings(
        operator_token=STRONG, turn_urls=["turn:a"], turn_secret=STRONG[::-1] + "-turn"
    ).require_production_secrets()


@pytest.mark.parametrize(
    "token",
    [
        None,
        "",
        " " * 30,
        "s" * (MIN_SECRET_LENGTH - 1),
        "a" * 40,
        "abababababababababababab",
        *sorted(KNOWN_WEAK_SECRETS),
        "ChangeMe",
        " admin ",
    ],
)
def test_weak_operator_token_is_refused(token: str | None) -> None:
    with pytest.raises(InsecureSettingsError, match="TRUNKLINE_OPERATOR_TOKEN"):
        Settings(operator_token=token).require_production_secrets()


def test_well_known_secrets_are_refused_even_when_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gateway.core.settings.MIN_SECRET_LENGTH", 1)
    monkeypatch.setattr("gateway.core.settings.MIN_SECRET_DISTINCT_CHARACTERS", 1)
    for weak in KNOWN_WEAK_SECRETS - {""}:
        with pytest.raises(InsecureSettingsError, match="TRUNKLINE_OPERATOR_TOKEN"):
            Settings(operator_token=weak.upper()).require_production_secrets()
    Settings(operator_token="x").require_production_secrets()


@pytest.mark.parametrize("secret", [None, "", "secret", "short", "t" * (MIN_SECRET_LENGTH - 1)])
@pytest.mark.parametrize("field", ["turn_urls", "turn_nearest_urls"])
def test_weak_turn_secret_is_refused_when_turn_urls_are_set(secret: str | None, field: str) -> None:
    settings = Settings(operator_token=STRONG, turn_secret=secret, **{field: ["turn:a"]})
    with pytest.raises(InsecureSettingsError, match="TRUNKLINE_TURN_SECRET") as excinfo:
        settings.require_production_secrets()
    assert "TRUNKLINE_OPERATOR_TOKEN" not in str(excinfo.value)


def test_turn_secret_not_needed_without_turn_urls() -> None:
    Settings(operator_token=STRONG, turn_secret=None).require_production_secrets()


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(InsecureSettingsError) as excinfo:
        Settings(
            operator_token="admin", turn_urls=["turn:a"], turn_secret="changeme"
        ).require_production_secrets()
    assert "TRUNKLINE_OPERATOR_TOKEN" in str(excinfo.value)
    assert "TRUNKLINE_TURN_SECRET" in str(excinfo.value)


def test_a_secrets_key_is_needed_in_production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gateway.core.secrets import write_key_file

    monkeypatch.delenv("TRUNKLINE_SECRETS_KEYS")
    settings = Settings(operator_token=STRONG, data_dir=tmp_path)
    assert not settings.has_secrets_key()
    with pytest.raises(InsecureSettingsError, match="TRUNKLINE_SECRETS_KEYS") as excinfo:
        settings.require_production_secrets()
    assert "TRUNKLINE_OPERATOR_TOKEN" not in str(excinfo.value)
    assert Settings(secrets_keys=" ", data_dir=tmp_path).has_secrets_key() is False

    write_key_file(settings.effective_secrets_keys_dir)  # a key file in the data dir will do
    assert settings.effective_secrets_keys_dir == tmp_path.resolve() / "secrets-keys"
    settings.require_production_secrets()
    elsewhere = Settings(operator_token=STRONG, data_dir=tmp_path, secrets_keys_dir=tmp_path / "other")
    with pytest.raises(InsecureSettingsError, match="TRUNKLINE_SECRETS_KEYS"):
        elsewhere.require_production_secrets()


def test_malformed_secrets_keys_are_refused_without_quoting_them(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("not-a-key", "c2hvcnQ=", "jKAlooJ8gwF297SOIJUCu4AUfNfQadfhSp3Z8rf31RY,short"):
        monkeypatch.setenv("TRUNKLINE_SECRETS_KEYS", value)
        with pytest.raises(InsecureSettingsError, match="TRUNKLINE_SECRETS_KEYS") as excinfo:
            Settings(operator_token=STRONG).require_production_secrets()
        assert value not in str(excinfo.value)
    monkeypatch.setenv("TRUNKLINE_SECRETS_KEYS", "jKAlooJ8gwF297SOIJUCu4AUfNfQadfhSp3Z8rf31RY")
    assert Settings().has_secrets_key()
