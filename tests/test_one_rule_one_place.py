"""Each rule that used to be written twice now lives in one place; these tests pin
that the places that use it agree."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, RequestFactory, override_settings
from django.utils import timezone
from rest_framework.exceptions import Throttled

import django_realtime
from django_realtime import checks, client, gate, signing, webhooks
from django_realtime.admin import AuditLogEntryAdmin, ReadOnlyAdminMixin, WebhookEventAdmin
from django_realtime.audit import Attempt
from django_realtime.bodies import declared_length
from django_realtime.exceptions import (
    RateLimited,
    RealtimeConfigurationError,
    UpstreamAuthenticationError,
    UpstreamConnectionError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from django_realtime.models import AuditLogEntry, AuditOutcome, SessionPreset, WebhookEvent
from django_realtime.signals import webhook_received
from django_realtime.sip import checks as sip_checks
from django_realtime.sip.admin import SipCallAdmin, explain_match
from django_realtime.sip.models import SipCall, SipRoute
from django_realtime.sip.routing import RouteDecision, decide
from django_realtime.sip.validators import decision_error
from tests.sip_helpers import incoming_event, post_webhook

PACKAGE_DIR = Path(django_realtime.__file__).parent

# --- whsec_ secrets: signing.is_valid_secret is the rule, the E006 check uses it ---------

RAW_KEY = b"0123456789abcdef0123456789abcdef!"  # 33 bytes: base64 needs padding


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_" + base64.b64encode(RAW_KEY).decode(),  # padded
        "whsec_" + base64.b64encode(RAW_KEY).decode().rstrip("="),  # padding left out
        base64.b64encode(RAW_KEY).decode(),  # bare base64, as Standard Webhooks allows
        "whsec_*not base64*",
        "whsec_",
        "sk-not-a-webhook-secret",
    ],
)
def test_the_check_and_the_verifier_agree_on_every_secret(secret: str) -> None:
    with override_settings(DJANGO_REALTIME={"WEBHOOK_SECRETS": [secret]}):
        flagged = "django_realtime.E006" in [m.id for m in checks.check_settings()]
    try:
        headers = signing.sign(b"{}", secret=secret, msg_id="msg_1", timestamp=1_700_000_000)
        signing.verify(b"{}", headers, [secret], tolerance=10, now=1_700_000_000)
        verifies = True
    except Exception:
        verifies = False
    assert flagged is (not verifies)
    assert signing.is_valid_secret(secret) is verifies


def test_an_unpadded_whsec_secret_verifies_a_padded_signature() -> None:
    padded = "whsec_" + base64.b64encode(RAW_KEY).decode()
    headers = signing.sign(b"{}", secret=padded, msg_id="msg_1", timestamp=1_700_000_000)
    signing.verify(b"{}", headers, [padded.rstrip("=")], tolerance=10, now=1_700_000_000)


# --- SIP decisions and transfer targets: sip.validators ----------------------------------

BAD_DECISIONS = [
    {"action": "explode"},
    {"action": "reject", "status_code": 200},
    {"action": "reject", "status_code": True},
    {"action": "refer", "target_uri": "+14155550123"},
    {"action": "refer", "target_uri": "tel:"},
    {"action": "refer", "target_uri": "sip:agent@example.com extra"},
    {"action": "accept"},
]


@pytest.mark.parametrize("value", BAD_DECISIONS)
def test_the_check_and_the_router_refuse_the_same_decisions(value: dict[str, Any]) -> None:
    with override_settings(DJANGO_REALTIME={"SIP_DEFAULT_ACTION": value}):
        assert [m.id for m in sip_checks.check_sip_settings()] == ["django_realtime.E007"]
    assert decision_error(value)
    with pytest.raises(RealtimeConfigurationError):
        RouteDecision.from_mapping(value, source="router")


@pytest.mark.django_db
@pytest.mark.parametrize("target", ["+14155550123", "tel:", "sip:a b", "mailto:x@example.com"])
def test_a_route_and_the_default_action_refuse_the_same_transfer_targets(target: str) -> None:
    route = SipRoute(name="r", match_type="any", action="refer", target_uri=target)
    with pytest.raises(ValidationError) as info:
        route.full_clean()
    assert "target_uri" in info.value.message_dict
    assert decision_error({"action": "refer", "target_uri": target})


@pytest.mark.parametrize("target", ["tel:+14155550123", "sip:agent@example.com", "sips:a@b.c"])
def test_good_transfer_targets_pass_everywhere(target: str) -> None:
    assert decision_error({"action": "refer", "target_uri": target}) is None
    with override_settings(
        DJANGO_REALTIME={"SIP_DEFAULT_ACTION": {"action": "refer", "target_uri": target}}
    ):
        assert sip_checks.check_sip_settings() == []


# --- one code and one retry rule for an upstream failure ----------------------------------

FAILURES = [
    (UpstreamHTTPError("x", status_code=500), "upstream_error", True),
    (UpstreamHTTPError("x", status_code=503), "upstream_error", True),
    (UpstreamHTTPError("x", status_code=400), "upstream_error", False),
    (UpstreamAuthenticationError("x", status_code=401), "upstream_error", True),
    (UpstreamRateLimited("x", status_code=429, retry_after=3), "upstream_unavailable", True),
    (UpstreamTimeout("x"), "upstream_timeout", True),
    (UpstreamConnectionError("x"), "upstream_error", True),
    (RealtimeConfigurationError("x"), "not_configured", True),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("err", "code", "transient"), FAILURES)
def test_one_failure_one_code_on_the_mint_and_sip_paths(
    err: Exception, code: str, transient: bool
) -> None:
    assert client.failure_code(err) == code
    assert client.is_transient(err) is transient
    answered = gate._translate(err, Attempt("mint"))  # type: ignore[arg-type]
    assert answered.default_code == code
    assert code in AuditOutcome.values  # the SIP path audits this very value


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 599])
def test_the_retry_loop_and_the_transient_rule_share_retryable_statuses(status: int) -> None:
    assert client.is_retryable_status(status)
    assert client.is_transient(UpstreamHTTPError("x", status_code=status))


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_client_errors_are_neither_retried_nor_transient(status: int) -> None:
    assert not client.is_retryable_status(status)
    assert not client.is_transient(UpstreamHTTPError("x", status_code=status))


def test_one_retry_policy_drives_both_loops(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 2}
    policy = client.RetryPolicy("test")
    request = httpx.Request("POST", "https://api.openai.test/v1/x")
    busy = httpx.Response(503, headers={"retry-after": "2"}, request=request)
    assert policy.after_response(busy) == 2.0
    assert policy.after_error(httpx.ConnectError("down", request=request)) > 0
    assert policy.retries == 2
    with pytest.raises(UpstreamHTTPError):
        policy.after_response(busy)  # out of retries: the final error
    assert policy.after_response(httpx.Response(200, request=request)) is None


# --- DRF's Throttled, dataclasses.replace -------------------------------------------------


def test_rate_limits_are_drf_throttled_with_a_whole_second_wait() -> None:
    assert isinstance(RateLimited(2.2), Throttled)
    assert RateLimited(2.2).wait == 3
    assert RateLimited(0).wait == 1
    assert str(RateLimited(5).detail) == "Too many requests. Try again in 5 seconds."
    assert UpstreamUnavailable(7).wait == 7
    assert UpstreamUnavailable().wait is None
    assert UpstreamUnavailable().status_code == 503


@pytest.mark.django_db
def test_a_router_decision_keeps_every_field_but_its_source(settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "SIP_ROUTER": "tests.test_one_rule_one_place.route_to_agent",
    }
    call = SipCall(call_id="rtc_1", webhook_id="wh_1", to_header="sip:+1@x")
    decision = decide(call)
    assert (decision.action, decision.target_uri, decision.source) == (
        "refer",
        "tel:+14155550100",
        "router",
    )


def route_to_agent(call: SipCall) -> RouteDecision:
    return RouteDecision("refer", target_uri="tel:+14155550100", source="route")


# --- one read-only admin, one decision walk -------------------------------------------------


def test_the_logs_and_the_call_log_share_one_read_only_admin(rf: RequestFactory) -> None:
    request = rf.get("/")
    for admin_class in (AuditLogEntryAdmin, WebhookEventAdmin, SipCallAdmin):
        assert issubclass(admin_class, ReadOnlyAdminMixin)
        instance = admin_class.__new__(admin_class)
        assert not instance.has_add_permission(request)
        assert not instance.has_change_permission(request)
        assert not instance.has_delete_permission(request)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("from_value", "to_value"),
    [
        ("sip:+14155550100@carrier", "sip:+14155550123@sip.api.openai.com"),
        ("sip:+14155550100@carrier", "sip:+19995550000@sip.api.openai.com"),
        ("sip:blocked@spam.example", "sip:+14155550123@sip.api.openai.com"),
        ("", ""),
    ],
)
def test_the_admin_explains_exactly_what_decide_decides(from_value: str, to_value: str) -> None:
    preset = SessionPreset.objects.create(slug="agent", name="Agent", model="gpt-realtime")
    inactive = SessionPreset.objects.create(
        slug="off", name="Off", model="gpt-realtime", is_active=False
    )
    SipRoute.objects.create(
        name="blocked", priority=1, match_field="from", match_type="glob",
        pattern="*spam*", action="reject", status_code=486,
    )  # fmt: skip
    SipRoute.objects.create(
        name="inactive preset", priority=2, match_type="any", action="accept", preset=inactive
    )
    SipRoute.objects.create(
        name="sales", priority=3, match_type="exact", pattern="+14155550123",
        action="accept", preset=preset,
    )  # fmt: skip
    SipRoute.objects.create(
        name="also sales", priority=4, match_type="glob", pattern="+1415*",
        action="refer", target_uri="tel:+1",
    )  # fmt: skip
    call = SipCall(call_id="rtc_x", webhook_id="wh_x", from_header=from_value, to_header=to_value)
    report = explain_match(from_value, to_value)
    assert report.decision is not None
    assert report.decision.describe() == decide(call).describe()
    assert sum(check.matched for check in report.checks) <= 1


# --- Content-Length, read once --------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [({}, None), ({"CONTENT_LENGTH": ""}, None), ({"CONTENT_LENGTH": "12"}, 12)],
)
def test_declared_length(meta: dict[str, str], expected: int | None) -> None:
    assert declared_length(meta) == expected


@pytest.mark.parametrize("raw", ["-5", "12a", "+12", "1_2", " "])
def test_a_malformed_content_length_is_refused_by_the_parser(raw: str) -> None:
    if raw.strip() == "":
        assert declared_length({"CONTENT_LENGTH": raw}) is None
        return
    with pytest.raises(ValueError, match="Content-Length"):
        declared_length({"CONTENT_LENGTH": raw})


@pytest.mark.django_db
def test_the_webhook_answers_a_malformed_content_length_with_400() -> None:
    response = Client().post(
        "/realtime/webhooks/openai/", b"{}", content_type="application/json", CONTENT_LENGTH="-5"
    )
    assert response.status_code == 400
    assert WebhookEvent.objects.count() == 0


# --- try to mint, on failure finish the audit row: gate.try_mint ----------------------------


@pytest.mark.django_db
def test_try_mint_finishes_the_audit_row_of_a_failure(preset: SessionPreset) -> None:
    client.set_transport(httpx.MockTransport(lambda request: httpx.Response(400, json={})))
    try:
        attempt = Attempt("mint")
        with pytest.raises(Exception) as info:
            gate.try_mint(preset, {}, attempt)
    finally:
        client.set_transport(None)
    entry = AuditLogEntry.objects.get()
    assert attempt.entry == entry
    assert (entry.outcome, entry.error_code) == ("upstream_error", "upstream_error")
    assert info.value.detail == "The voice service failed. Try again later."  # type: ignore[attr-defined]
    assert entry.error_message.startswith("The Realtime API answered 400 (client_secrets).")
    assert entry.upstream_status == 400


@pytest.mark.django_db
def test_try_mint_refuses_an_override_with_one_audit_row(preset: SessionPreset) -> None:
    attempt = Attempt("mint")
    with pytest.raises(Exception, match="does not allow"):
        gate.try_mint(preset, {"voice": "marin"}, attempt)
    entry = AuditLogEntry.objects.get()
    assert (entry.outcome, entry.error_code) == ("invalid", "invalid_override")


# --- client.reset() closes async clients, whatever their loop's state ------------------------


def _mock() -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200))


def test_reset_closes_an_async_client_whose_loop_is_gone() -> None:
    client.set_transport(_mock())
    loop = asyncio.new_event_loop()
    try:
        opened = loop.run_until_complete(_open_async_client())
    finally:
        loop.close()
    client.reset()
    assert opened.is_closed
    client.set_transport(None)


def test_reset_closes_an_async_client_of_a_loop_that_is_not_running() -> None:
    client.set_transport(_mock())
    loop = asyncio.new_event_loop()
    try:
        opened = loop.run_until_complete(_open_async_client())
        client.reset()
        assert opened.is_closed
    finally:
        loop.close()
        client.set_transport(None)


def test_reset_from_a_coroutine_closes_the_running_loops_client() -> None:
    client.set_transport(_mock())

    async def scenario() -> bool:
        opened = await _open_async_client()
        client.reset()
        await asyncio.sleep(0)  # the close task runs at the next await
        await asyncio.sleep(0)
        return opened.is_closed

    try:
        assert asyncio.run(scenario())
    finally:
        client.set_transport(None)


async def _open_async_client() -> httpx.AsyncClient:
    opened = client.get_async_client()
    await opened.get("https://api.openai.test/v1/ping")
    return opened


# --- names -----------------------------------------------------------------------------------


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE_DIR)): path.read_text()
        for path in PACKAGE_DIR.rglob("*.py")
        if "migrations" not in path.parts
    }


def test_one_logger_per_module_named_after_it() -> None:
    offenders = [
        name
        for name, text in _sources().items()
        # our own loggers are named after their module; a third party's (uvicorn) may be
        # filtered by name
        if re.search(r"getLogger\(\s*[\"']django_realtime", text)
    ]
    assert offenders == []


def test_one_spelling_of_hangup_in_code() -> None:
    offenders = [
        name for name, text in _sources().items() if re.search(r"\bhang_up\b|\bhung_up\b", text)
    ]
    assert offenders == []


def test_no_comment_cites_a_file_outside_the_repo() -> None:
    pattern = re.compile(r"reference §|DESIGN\.md|tooling\.md|(?<!api-)reference/")
    assert [name for name, text in _sources().items() if pattern.search(text)] == []


# --- the receiver knows no event type by name -------------------------------------------------


def test_the_receiver_names_no_event_type() -> None:
    source = (PACKAGE_DIR / "webhooks.py").read_text()
    code = re.sub(r'""".*?"""', "", source, flags=re.S)
    assert "realtime.call.incoming" not in code
    assert webhooks.EVENT_HANDLERS["realtime.call.incoming"].__module__ == (
        "django_realtime.sip.incoming"
    )


@pytest.mark.django_db(transaction=True)
def test_without_the_sip_app_a_call_is_signalled_and_answered_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(webhooks, "EVENT_HANDLERS", {})  # as in a site without the app
    seen: list[str] = []

    def receiver(sender: Any, event_type: str, **kwargs: Any) -> None:
        seen.append(event_type)

    webhook_received.connect(receiver, dispatch_uid="no-sip")
    try:
        response = post_webhook(Client(), incoming_event("rtc_nosip"), msg_id="wh_nosip")
    finally:
        webhook_received.disconnect(dispatch_uid="no-sip")
    assert response.status_code == 200
    assert seen == ["realtime.call.incoming"]
    assert SipCall.objects.count() == 0
    assert WebhookEvent.objects.get().status == "done"


def test_the_core_migration_creates_no_telephony_table() -> None:
    from django_realtime.migrations import __path__ as core_migrations

    text = (Path(next(iter(core_migrations))) / "0001_initial.py").read_text()
    assert "SipCall" not in text
    assert "SipRoute" not in text


# --- realtime_prune ------------------------------------------------------------------------------


def _age(model: Any, field: str, days: int, **values: Any) -> Any:
    row = model.objects.create(**values)
    model.objects.filter(pk=row.pk).update(**{field: timezone.now() - timedelta(days=days)})
    return row


@pytest.mark.django_db
def test_prune_takes_each_kind_at_its_own_age() -> None:
    _age(AuditLogEntry, "created_at", 40, action="mint", outcome="issued")
    kept_audit = _age(AuditLogEntry, "created_at", 10, action="mint", outcome="issued")
    _age(WebhookEvent, "received_at", 10, webhook_id="old", event_type="x", status="done")
    kept_event = _age(WebhookEvent, "received_at", 2, webhook_id="new", event_type="x")
    claimed = _age(WebhookEvent, "received_at", 30, webhook_id="busy", event_type="x")
    out = StringIO()
    call_command("realtime_prune", "--audit-days", "30", "--webhook-days", "7", stdout=out)
    assert "Deleted 1 audit log entries older than 30 days." in out.getvalue()
    assert "Deleted 1 webhook events older than 7 days." in out.getvalue()
    assert list(AuditLogEntry.objects.all()) == [kept_audit]
    # A delivery still being processed keeps its claim, however old.
    assert set(WebhookEvent.objects.all()) == {kept_event, claimed}


@pytest.mark.django_db
def test_prune_leaves_kinds_without_an_age_alone() -> None:
    _age(AuditLogEntry, "created_at", 400, action="mint", outcome="issued")
    call_command("realtime_prune", "--webhook-days", "0", stdout=StringIO())
    assert AuditLogEntry.objects.count() == 1


def test_prune_needs_an_age(settings: Any) -> None:
    settings.DJANGO_REALTIME = {"TRANSCRIPT_RETENTION_DAYS": None}  # issue 10: its default age
    with pytest.raises(CommandError, match="--audit-days, --webhook-days"):
        call_command("realtime_prune")


@pytest.mark.django_db
def test_prune_audit_is_a_deprecated_alias() -> None:
    _age(AuditLogEntry, "created_at", 40, action="mint", outcome="issued")
    out, err = StringIO(), StringIO()
    with pytest.warns(DeprecationWarning, match="realtime_prune --audit-days"):
        call_command("realtime_prune_audit", "--older-than-days", "30", stdout=out, stderr=err)
    assert "Deleted 1 audit log entries older than 30 days." in out.getvalue()
    assert "deprecated" in err.getvalue()
    assert AuditLogEntry.objects.count() == 0


def test_loggers_are_named_after_modules() -> None:
    from django_realtime.sip import actions

    assert actions.logger.name == "django_realtime.sip.actions"
    assert logging.getLogger(gate.__name__) is gate.logger


SITE_WITHOUT_SIP = """
import django, json
django.setup()
from django.core.management import call_command
from django.db import connection
from django.test import Client
call_command("migrate", verbosity=0)
from django_realtime import webhooks
from django_realtime.models import WebhookEvent
from django_realtime.signals import webhook_received
from tests.sip_helpers import incoming_event, post_webhook
seen = []
webhook_received.connect(lambda sender, event_type, **kw: seen.append(event_type), weak=False)
response = post_webhook(Client(), incoming_event("rtc_nosip"), msg_id="wh_nosip")
print(json.dumps({
    "status": response.status_code,
    "seen": seen,
    "handlers": sorted(webhooks.EVENT_HANDLERS),
    "events": list(WebhookEvent.objects.values_list("status", flat=True)),
    "sip_tables": [t for t in connection.introspection.table_names() if "sip" in t],
}))
"""


def test_a_site_without_the_sip_app_has_no_sip_tables_and_answers_200() -> None:
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings_without_sip"}
    result = subprocess.run(
        [sys.executable, "-c", SITE_WITHOUT_SIP],
        capture_output=True,
        text=True,
        env=env,
        # the directory holding tests/ (not the package's: under the wheel test the
        # package is in site-packages)
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "status": 200,
        "seen": ["realtime.call.incoming"],
        "handlers": [],
        "events": ["done"],
        "sip_tables": [],
    }
