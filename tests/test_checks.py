"""System checks: exact ids per bad config, SystemCheckError, unique ids."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from django_realtime import checks
from django_realtime.models import SessionPreset
from django_realtime.sip import checks as sip_checks
from tests import settings as test_settings

GOOD: dict[str, Any] = dict(test_settings.DJANGO_REALTIME)


def ids(config: Any) -> list[str]:
    from django.test import override_settings

    with override_settings(DJANGO_REALTIME=config):
        return [m.id for m in [*checks.check_settings(), *sip_checks.check_sip_settings()]]


def test_the_test_settings_are_clean() -> None:
    assert ids(GOOD) == []


def test_the_defaults_only_warn_about_webhooks() -> None:
    assert ids({}) == ["django_realtime.W001"]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"API_KEYS": "sk-x"}, ["E001"]),
        ({"RATE_LIMIT": "5/m", "TIMEOUTS": 3}, ["E001", "E001"]),
        ({"TIMEOUT": "10"}, ["E002"]),
        ({"MAX_RETRIES": 2.5}, ["E002"]),
        ({"MAX_RETRIES": True}, ["E002"]),
        ({"AUDIT_CLIENT_IP": "yes"}, ["E002"]),
        ({"API_KEY": 12345}, ["E002"]),
        ({"SDP_MAX_BYTES": None}, ["E002"]),
        ({"RATE": "10 per minute"}, ["E003"]),
        ({"RATE": "10/x"}, ["E003"]),
        ({"RATE": "/m"}, ["E003"]),
        ({"AUTH_STYLE": "basic"}, ["E005"]),
        ({"WEBHOOK_SECRETS": ["whsec-test"]}, ["E006"]),
        ({"WEBHOOK_SECRETS": ["sk-not-a-webhook-secret"]}, ["E006"]),
        ({"WEBHOOK_SECRETS": ["whsec_not*base64!"]}, ["E006"]),
        ({"WEBHOOK_SECRETS": [GOOD["WEBHOOK_SECRETS"][0], "whsec_"]}, ["E006"]),
        ({"SIP_DEFAULT_ACTION": {"action": "explode"}}, ["E007"]),
        ({"SIP_DEFAULT_ACTION": {"action": "reject", "status_code": 200}}, ["E007"]),
        ({"SIP_DEFAULT_ACTION": {"action": "refer", "target_uri": "+1415"}}, ["E007"]),
        ({"SIP_DEFAULT_ACTION": {"action": "accept"}}, ["E007"]),
        ({"API_BASE": "api.openai.com/v1"}, ["E008"]),
        ({"API_BASE": "ftp://api.openai.com/v1"}, ["E008"]),
        ({"CONNECT_URL": "https://"}, ["E008"]),
        ({"AUTHENTICATION_CLASSES": ["no.such.Authentication"]}, ["E009"]),
        ({"PERMISSION_CLASSES": ["rest_framework.permissions.NoSuch"]}, ["E009"]),
        ({"SIP_ROUTER": "tests.nowhere.route"}, ["E009"]),
        ({"WEBHOOK_SECRETS": []}, ["W001"]),
        ({"API_BASE": "http://proxy.internal/v1"}, ["W002"]),
        ({"CONNECT_URL": "http://10.0.0.5/calls"}, ["W002"]),
        (
            {"AUTH_STYLE": "token", "RATE": "fast", "API_BASE": "http://x.test/v1"},
            ["E003", "E005", "W002"],
        ),
    ],
)
def test_exact_ids_per_bad_config(changes: dict[str, Any], expected: list[str]) -> None:
    assert ids({**GOOD, **changes}) == [f"django_realtime.{i}" for i in expected]


@pytest.mark.parametrize(
    "changes",
    [
        {"AUTHENTICATION_CLASSES": None},
        {"PERMISSION_CLASSES": "rest_framework.permissions.IsAuthenticated"},
        {"SIP_DEFAULT_ACTION": "reject"},
        {"API_BASE": 443},
        {"RATE": 10},
        {"AUTH_STYLE": None},
    ],
)
def test_a_wrong_type_is_reported_once_and_does_not_crash(changes: dict[str, Any]) -> None:
    assert ids({**GOOD, **changes}) == ["django_realtime.E002"]


def test_wrong_typed_webhook_secrets_count_as_none() -> None:
    assert ids({**GOOD, "WEBHOOK_SECRETS": 5}) == ["django_realtime.E002", "django_realtime.W001"]


def test_settings_that_are_not_a_dict() -> None:
    assert ids(["API_KEY"]) == ["django_realtime.E002"]


@pytest.mark.parametrize(
    "config",
    [
        {"SIP_DEFAULT_ACTION": {"action": "reject"}},
        {"SIP_DEFAULT_ACTION": {"action": "refer", "target_uri": "sips:desk@example.com"}},
        {"SIP_DEFAULT_ACTION": {"action": "accept", "preset": "reception"}},
        {"API_BASE": "http://127.0.0.1:8765/v1", "CONNECT_URL": "http://localhost:8765/calls"},
        {"WEBHOOK_SECRETS": GOOD["WEBHOOK_SECRETS"][0]},
        {"RATE": "100/5m", "AUTH_STYLE": "api-key", "SIP_ROUTER": "tests.settings.SECRET_KEY"},
    ],
)
def test_good_variants(config: dict[str, Any]) -> None:
    assert ids({**GOOD, **config}) == []


def test_the_messages_never_show_the_api_key() -> None:
    from django.test import override_settings

    with override_settings(DJANGO_REALTIME={**GOOD, "API_KEY": 123, "AUTH_STYLE": "x"}):
        for message in checks.check_settings():
            assert "123" not in f"{message.msg} {message.hint}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ttl", "expected"), [(9, ["E004"]), (10, []), (7200, []), (7201, ["E004"])]
)
def test_preset_ttl_database_check(ttl: int, expected: list[str]) -> None:
    SessionPreset.objects.create(slug="p", name="P", model="gpt-realtime", ttl_seconds=ttl)
    found = [m.id for m in checks.check_preset_rates(databases=["default"])]
    assert found == [f"django_realtime.{i}" for i in expected]


def test_preset_checks_touch_no_database_unless_asked() -> None:
    # no django_db mark: any query would fail the test
    assert checks.check_preset_rates() == []
    assert checks.check_preset_rates(databases=["other"]) == []


@pytest.mark.django_db
def test_preset_ttl_only_with_the_database_tag() -> None:
    SessionPreset.objects.create(slug="p", name="P", model="gpt-realtime", ttl_seconds=5)
    assert "django_realtime.E004" not in [m.id for m in run_checks()]
    assert "django_realtime.E004" in [m.id for m in run_checks(databases=["default"])]


@pytest.mark.django_db
def test_preset_bad_rate_warns() -> None:
    SessionPreset.objects.create(slug="p", name="P", model="gpt-realtime", rate="lots")
    found = [m.id for m in checks.check_preset_rates(databases=["default"])]
    assert found == ["django_realtime.W003"]


def test_call_command_check_raises_for_errors(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**GOOD, "AUTH_STYLE": "basic"}
    with pytest.raises(SystemCheckError, match=r"django_realtime\.E005"):
        call_command("check")


def test_call_command_check_passes_with_good_settings(settings: Any) -> None:
    settings.DJANGO_REALTIME = GOOD
    call_command("check")


def test_check_ids_are_unique_and_documented() -> None:
    used = []
    for module in (checks, sip_checks):
        used += re.findall(r'id=f"\{ID\}([EW]\d{3})"', Path(module.__file__ or "").read_text())
    # one id per kind of problem: only "wrong type" is raised from two places
    assert {i for i, n in Counter(used).items() if n > 1} == {"E002"}
    documented = set(re.findall(r"\b([EW]\d{3})\b", checks.__doc__ or ""))
    assert set(used) == documented
