"""Settings from the environment: typed, validated, secrets never printed."""

from __future__ import annotations

import pytest

from streams.kernel.settings import ProcessingGuarantee, Secret, Settings, SettingsError


def test_defaults_point_at_the_local_stack_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no STOCKFLOW_ variables, when settings load, then Kafka is 127.0.0.1:9092, the
    table store is RocksDB (a restart reads only the changelog's tail) and workers join
    their group as dynamic members."""
    for key in list(__import__("os").environ):
        if key.startswith("STOCKFLOW_"):
            monkeypatch.delenv(key)
    settings = Settings()
    assert settings.bootstrap == "127.0.0.1:9092"
    assert settings.processing_guarantee is ProcessingGuarantee.AT_LEAST_ONCE
    assert settings.store == "rocksdb://"
    assert settings.static_membership is False
    assert settings.rocksdb_memory_mb == 256


def test_a_static_membership_flag_that_is_neither_on_nor_off_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given STOCKFLOW_STATIC_MEMBERSHIP=maybe, when settings load, then the error names the
    variable; 1 turns it on."""
    monkeypatch.setenv("STOCKFLOW_STATIC_MEMBERSHIP", "maybe")
    with pytest.raises(SettingsError, match="STOCKFLOW_STATIC_MEMBERSHIP"):
        Settings()
    monkeypatch.setenv("STOCKFLOW_STATIC_MEMBERSHIP", "1")
    assert Settings().static_membership is True


def test_a_non_integer_port_is_refused_with_the_variable_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Given STOCKFLOW_KAFKA_PORT=abc, when settings load, then the error names the variable."""
    monkeypatch.setenv("STOCKFLOW_KAFKA_PORT", "abc")
    with pytest.raises(SettingsError, match="STOCKFLOW_KAFKA_PORT"):
        Settings()


def test_an_unknown_guarantee_lists_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given an unknown processing guarantee, when settings load, then the choices are listed."""
    monkeypatch.setenv("STOCKFLOW_PROCESSING_GUARANTEE", "maybe")
    with pytest.raises(SettingsError, match="at_least_once"):
        Settings()


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a ClickHouse password, when settings are described, then the password is masked."""
    monkeypatch.setenv("STOCKFLOW_CLICKHOUSE_PASSWORD", "hunter2")
    settings = Settings()
    assert "hunter2" not in repr(settings.describe())
    assert "hunter2" not in str(settings)
    assert settings.clickhouse_password.reveal() == "hunter2"
    assert Secret("a") == Secret("a")
