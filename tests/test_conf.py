"""Settings are read at use time: override_settings / the settings fixture just work."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_realtime import client
from django_realtime.conf import DEFAULTS, conf
from django_realtime.exceptions import RealtimeConfigurationError
from tests.conftest import API_BASE, API_KEY, Upstream

PAYLOAD = {"session": {"type": "realtime", "model": "gpt-realtime"}}


def test_values_from_the_test_settings() -> None:
    assert conf.API_KEY == API_KEY
    assert conf.API_BASE == API_BASE
    assert conf.MAX_RETRIES == 2


@override_settings(DJANGO_REALTIME={})
def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert conf.API_BASE == "https://api.openai.com/v1"
    assert conf.CONNECT_URL == "https://api.openai.com/v1/realtime/calls"
    assert conf.AUTH_STYLE == "bearer"
    assert conf.ORGANIZATION is None
    assert conf.PROJECT is None
    assert conf.TIMEOUT == 10.0
    assert conf.MAX_RETRIES == 2
    assert conf.RATE == "10/m"
    assert conf.DEFAULT_PRESET is None
    assert conf.WEBHOOK_SECRETS == []
    assert conf.WEBHOOK_TOLERANCE == 300
    assert DEFAULTS["SDP_MAX_BYTES"] == conf.SDP_MAX_BYTES
    assert conf.AUDIT_CLIENT_IP is True
    assert conf.AUTHENTICATION_CLASSES == ["rest_framework.authentication.SessionAuthentication"]
    assert conf.PERMISSION_CLASSES == ["rest_framework.permissions.IsAuthenticated"]
    assert conf.SIP_DEFAULT_ACTION == {"action": "reject", "status_code": 603}
    assert conf.has_api_key is False


def test_defaults_are_not_shared_mutable_state() -> None:
    with override_settings(DJANGO_REALTIME={}):
        conf.AUTHENTICATION_CLASSES.append("x")
        conf.SIP_DEFAULT_ACTION["action"] = "accept"
        assert conf.AUTHENTICATION_CLASSES == [
            "rest_framework.authentication.SessionAuthentication"
        ]
        assert conf.SIP_DEFAULT_ACTION == {"action": "reject", "status_code": 603}


def test_missing_key_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with (
        override_settings(DJANGO_REALTIME={"API_KEY": ""}),
        pytest.raises(RealtimeConfigurationError) as info,
    ):
        conf.API_KEY  # noqa: B018
    assert "DJANGO_REALTIME['API_KEY']" in str(info.value)
    assert "OPENAI_API_KEY" in str(info.value)


def test_environment_variable_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    with override_settings(DJANGO_REALTIME={}):
        assert conf.API_KEY == "sk-env"
        assert conf.has_api_key is True
    # the setting wins over the environment
    assert conf.API_KEY == API_KEY


def test_override_settings_takes_effect_without_reload() -> None:
    with override_settings(
        DJANGO_REALTIME={"API_BASE": "https://a.test/v1/", "RATE": "1/s", "API_KEY": "sk-other"}
    ):
        assert conf.API_BASE == "https://a.test/v1"
        assert conf.CONNECT_URL == "https://a.test/v1/realtime/calls"
        assert conf.RATE == "1/s"
        assert conf.API_KEY == "sk-other"
    assert conf.API_BASE == API_BASE
    assert conf.RATE == "10/m"
    assert conf.API_KEY == API_KEY


def test_settings_fixture_takes_effect_without_reload(settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "CONNECT_URL": "https://c.test/rtc",
        "WEBHOOK_SECRETS": "whsec_single",
    }
    assert conf.CONNECT_URL == "https://c.test/rtc"
    assert conf.WEBHOOK_SECRETS == ["whsec_single"]


@override_settings(DJANGO_REALTIME="not a dict")
def test_a_malformed_settings_value_falls_back_to_defaults() -> None:
    assert conf.API_BASE == "https://api.openai.com/v1"


def test_the_client_reads_api_base_and_key_per_request(upstream: Upstream, settings: Any) -> None:
    client.create_client_secret(PAYLOAD)
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "API_BASE": "https://b.test/v1",
        "API_KEY": "sk-rotated",
    }
    client.create_client_secret(PAYLOAD)
    first, second = upstream.requests
    assert str(first.url) == f"{API_BASE}/realtime/client_secrets"
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert str(second.url) == "https://b.test/v1/realtime/client_secrets"
    assert second.headers["authorization"] == "Bearer sk-rotated"


@pytest.mark.usefixtures("frozen_clock")
def test_the_mint_view_reads_rate_per_request(
    api_client: Any, preset: Any, upstream: Upstream, settings: Any
) -> None:
    url = "/realtime/client-secrets/"
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "RATE": "1/m"}
    assert api_client.post(url, {"preset": "assistant"}, format="json").status_code == 201
    assert api_client.post(url, {"preset": "assistant"}, format="json").status_code == 429
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "RATE": "5/m"}
    assert api_client.post(url, {"preset": "assistant"}, format="json").status_code == 201


def test_the_leak_guard_sees_keys_in_messages_args_and_tracebacks() -> None:
    """The autouse log check (conftest) would fail a test that logs a secret."""
    import logging
    import sys

    from tests.conftest import find_leaks

    def record(msg: str, args: tuple[Any, ...] = (), exc: bool = False) -> logging.LogRecord:
        exc_info = None
        if exc:
            try:
                raise ValueError(f"bad key {API_KEY}")
            except ValueError:
                exc_info = sys.exc_info()
        return logging.LogRecord("x", logging.INFO, __file__, 1, msg, args, exc_info)

    assert find_leaks([record("fine"), record("%s", ("ok",))], [API_KEY]) == []
    assert find_leaks([record(f"key={API_KEY}")], [API_KEY])
    assert find_leaks([record("key=%s", (API_KEY,))], [API_KEY])
    assert find_leaks([record("boom", exc=True)], [API_KEY])
    assert find_leaks([record("minted %s", ("ek_abc",))], ["ek_abc"])
