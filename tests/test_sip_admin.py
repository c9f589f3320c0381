"""Admin for SIP routes, calls and webhook events (``django_realtime.sip.admin``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from django_realtime import client as upstream_client
from django_realtime.models import AuditLogEntry, SessionPreset, WebhookEvent
from django_realtime.sip.models import SipCall, SipRoute
from tests.sip_helpers import CallControlAPI, install_call_api, validate_against

pytestmark = pytest.mark.django_db


@pytest.fixture
def call_api(settings: Any) -> Iterator[CallControlAPI]:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 0}
    api = install_call_api()
    yield api
    upstream_client.set_transport(None)


@pytest.fixture
def realtime_preset() -> SessionPreset:
    return SessionPreset.objects.create(slug="agent", name="Agent", model="gpt-realtime")


@pytest.fixture
def transcription_preset() -> SessionPreset:
    return SessionPreset.objects.create(
        slug="notes",
        name="Notes",
        session_type="transcription",
        transcription_model="gpt-4o-transcribe",
    )


def make_call(call_id: str = "rtc_live", status: str = "accepted", **kw: Any) -> SipCall:
    return SipCall.objects.create(
        call_id=call_id,
        webhook_id=f"wh_{call_id}",
        status=status,
        from_header='"Alice" <sip:+14155550100@carrier.example>',
        to_header="sip:+14155550123@x",
        **kw,
    )


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- routes ---------------------------------------------------------------------------


def test_route_changelist_is_ordered_by_priority_and_links_the_helper(
    admin_client: Client, realtime_preset: SessionPreset
) -> None:
    SipRoute.objects.create(name="late", priority=50, match_type="any", action="reject")
    SipRoute.objects.create(
        name="early", priority=10, match_type="any", action="accept", preset=realtime_preset
    )
    response = admin_client.get(reverse("admin:realtime_sip_siproute_changelist"))
    assert response.status_code == 200
    assert [r.name for r in response.context["cl"].result_list] == ["early", "late"]
    assert reverse("admin:realtime_sip_siproute_match") in response.content.decode()


def test_priority_and_active_are_editable_in_the_list(admin_client: Client) -> None:
    a = SipRoute.objects.create(name="a", priority=10, match_type="any", action="reject")
    b = SipRoute.objects.create(name="b", priority=20, match_type="any", action="reject")
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        "form-MIN_NUM_FORMS": "0",
        "form-MAX_NUM_FORMS": "1000",
        "_save": "Save",
        "form-0-id": str(a.pk),
        "form-0-priority": "30",
        "form-0-is_active": "on",
        "form-1-id": str(b.pk),
        "form-1-priority": "5",
    }
    response = admin_client.post(reverse("admin:realtime_sip_siproute_changelist"), data)
    assert response.status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.priority, a.is_active, b.priority, b.is_active) == (30, True, 5, False)


def _add_route(admin_client: Client, **fields: Any) -> Any:
    data = {
        "name": "r",
        "priority": "100",
        "is_active": "on",
        "match_field": "to",
        "match_type": "exact",
        "pattern": "+14155550123",
        "action": "accept",
        "preset": "",
        "status_code": "",
        "target_uri": "",
    }
    data.update({k: str(v) for k, v in fields.items()})
    return admin_client.post(reverse("admin:realtime_sip_siproute_add"), data)


def test_accept_route_with_a_transcription_preset_is_refused(
    admin_client: Client, transcription_preset: SessionPreset
) -> None:
    response = _add_route(admin_client, preset=transcription_preset.pk)
    assert response.status_code == 200
    assert (
        "transcription preset cannot answer a call"
        in response.context["adminform"].form.errors["preset"][0]
    )
    assert SipRoute.objects.count() == 0


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"action": "accept"}, "preset", "needs a preset"),
        ({"match_type": "regex", "pattern": "(+1"}, "pattern", "Not a valid regular expression"),
        ({"match_type": "regex", "pattern": r"(\d+)+$"}, "pattern", "exponential time"),
        ({"match_type": "exact", "pattern": ""}, "pattern", "pattern is required"),
        ({"action": "refer", "target_uri": "http://evil"}, "target_uri", "tel: URI"),
        ({"action": "refer", "target_uri": ""}, "target_uri", "tel: URI"),
        ({"action": "reject", "status_code": "200"}, "status_code", "greater than or equal"),
    ],
)
def test_route_form_validation(
    admin_client: Client, fields: dict[str, Any], field: str, message: str
) -> None:
    response = _add_route(admin_client, **fields)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert SipRoute.objects.count() == 0


def test_valid_routes_are_saved(admin_client: Client, realtime_preset: SessionPreset) -> None:
    assert _add_route(admin_client, preset=realtime_preset.pk).status_code == 302
    assert (
        _add_route(
            admin_client,
            action="refer",
            target_uri="sip:desk@pbx.example.com",
            match_type="glob",
            pattern="+1415*",
        ).status_code
        == 302
    )
    assert (
        _add_route(
            admin_client,
            action="reject",
            status_code="486",
            match_type="regex",
            pattern=r"\+1415\d{7}",
        ).status_code
        == 302
    )
    assert SipRoute.objects.count() == 3


# --- the "Which route matches?" helper ------------------------------------------------------


def _match(admin_client: Client, from_value: str = "", to_value: str = "") -> Any:
    return admin_client.get(
        reverse("admin:realtime_sip_siproute_match"),
        {"from_value": from_value, "to_value": to_value},
    )


def test_helper_shows_the_first_matching_route(
    admin_client: Client, call_api: CallControlAPI, realtime_preset: SessionPreset
) -> None:
    SipRoute.objects.create(
        name="Sales",
        priority=10,
        match_type="exact",
        pattern="+14155550199",
        action="accept",
        preset=realtime_preset,
    )
    SipRoute.objects.create(
        name="Main",
        priority=20,
        match_type="glob",
        pattern="+1415*",
        action="accept",
        preset=realtime_preset,
    )
    SipRoute.objects.create(
        name="Catch-all", priority=90, match_type="any", action="reject", status_code=486
    )
    response = _match(admin_client, '"Bob" <sip:+44200@x>', "<sip:+14155550123@sip.api.openai.com>")
    assert response.status_code == 200
    report = response.context["report"]
    assert report.matched_route.name == "Main"
    assert report.decision.describe() == "accept with preset agent (route 'Main')"
    assert report.to_addr.number == "+14155550123"
    assert [(c.route.name, c.matched) for c in report.checks] == [
        ("Sales", False),
        ("Main", True),
        ("Catch-all", False),
    ]
    assert "matches, but a route above wins" in report.checks[2].note
    assert "accept with preset agent" in response.content.decode()
    assert call_api.requests == []  # nothing upstream


def test_helper_falls_through_to_the_default_action(
    admin_client: Client, call_api: CallControlAPI
) -> None:
    SipRoute.objects.create(name="Other", match_type="exact", pattern="+1999", action="reject")
    report = _match(admin_client, "+1415", "+1415").context["report"]
    assert report.matched_route is None
    assert report.decision.source == "default"
    assert report.decision.describe() == "reject with 603 (SIP_DEFAULT_ACTION)"
    assert call_api.requests == []


def router_to_desk(call: SipCall, event: dict[str, Any] | None) -> dict[str, Any] | None:
    if "+1800" in call.from_header:
        return {"action": "refer", "target_uri": "tel:+14155550000"}
    return None


def router_that_breaks(call: SipCall) -> None:
    raise ValueError("router bug")


def test_helper_shows_sip_router_precedence(
    admin_client: Client, settings: Any, realtime_preset: SessionPreset
) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "SIP_ROUTER": "tests.test_sip_admin.router_to_desk",
    }
    SipRoute.objects.create(name="All", match_type="any", action="accept", preset=realtime_preset)
    report = _match(admin_client, "sip:+18005550100@x", "+1415").context["report"]
    assert report.decision.source == "router"
    assert report.decision.describe() == "transfer to tel:+14155550000 (SIP_ROUTER)"
    # The router falls through for other callers: the route decides.
    report = _match(admin_client, "sip:+14155550100@x", "+1415").context["report"]
    assert report.router_decision is None
    assert report.decision.route.name == "All"


def test_helper_reports_a_broken_router(admin_client: Client, settings: Any) -> None:
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "SIP_ROUTER": "tests.test_sip_admin.router_that_breaks",
    }
    response = _match(admin_client, "+1", "+2")
    assert response.status_code == 200
    assert "ValueError: router bug" in response.content.decode()
    assert response.context["report"].decision is None


def test_helper_needs_admin_access(client: Client) -> None:
    response = client.get(reverse("admin:realtime_sip_siproute_match"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


# --- calls: read-only, hang up, transfer ------------------------------------------------------


def test_calls_are_read_only(admin_client: Client) -> None:
    call = make_call()
    assert admin_client.get(reverse("admin:realtime_sip_sipcall_add")).status_code == 403
    change = admin_client.get(reverse("admin:realtime_sip_sipcall_change", args=[call.pk]))
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    assert (
        admin_client.post(
            reverse("admin:realtime_sip_sipcall_change", args=[call.pk]), {"status": "ended"}
        ).status_code
        == 403
    )
    assert (
        admin_client.get(reverse("admin:realtime_sip_sipcall_delete", args=[call.pk])).status_code
        == 403
    )
    call.refresh_from_db()
    assert call.status == "accepted"
    changelist = admin_client.get(
        reverse("admin:realtime_sip_sipcall_changelist"), {"status__exact": "accepted"}
    )
    assert [c.call_id for c in changelist.context["cl"].result_list] == ["rtc_live"]


def _action(admin_client: Client, action: str, calls: list[SipCall], **extra: str) -> Any:
    data = {"action": action, "_selected_action": [str(c.pk) for c in calls], **extra}
    return admin_client.post(reverse("admin:realtime_sip_sipcall_changelist"), data)


def test_hangup_action(admin_client: Client, admin_user: User, call_api: CallControlAPI) -> None:
    live, ended = make_call("rtc_a"), make_call("rtc_b", status="ended")
    response = _action(admin_client, "hangup", [live, ended])
    assert response.status_code == 302
    assert [r.url.path for r in call_api.requests] == ["/v1/realtime/calls/rtc_a/hangup"]
    assert call_api.requests[0].content == b""
    live.refresh_from_db()
    assert live.status == "ended"
    audit = AuditLogEntry.objects.get()
    assert (audit.action, audit.outcome, audit.call_id, audit.user, audit.username) == (
        "sip.hangup",
        "succeeded",
        "rtc_a",
        admin_user,
        admin_user.username,
    )
    assert audit.upstream_status == 200
    texts = messages_of(response)
    assert any("Hung up: rtc_a" in t for t in texts)
    assert any("no longer live: rtc_b" in t for t in texts)


def test_hangup_failure_is_reported_and_audited(
    admin_client: Client, call_api: CallControlAPI
) -> None:
    call = make_call("rtc_gone")
    call_api.fail_next("hangup", 404, "call_id_not_found")
    response = _action(admin_client, "hangup", [call])
    [text] = messages_of(response)
    assert "failed for rtc_gone" in text
    assert "HTTP 404" in text
    assert "req_failed" in text
    audit = AuditLogEntry.objects.get()
    assert (audit.outcome, audit.upstream_status) == ("upstream_error", 404)
    call.refresh_from_db()
    assert call.status == "accepted"  # unchanged


def test_transfer_action_asks_for_a_validated_target(
    admin_client: Client, admin_user: User, call_api: CallControlAPI
) -> None:
    call = make_call("rtc_t")
    page = _action(admin_client, "transfer", [call])
    assert page.status_code == 200
    assert 'name="target_uri"' in page.content.decode()
    assert "rtc_t" in page.content.decode()

    bad = _action(admin_client, "transfer", [call], apply="1", target_uri="javascript:alert(1)")
    assert bad.status_code == 200
    assert bad.context["form"].errors["target_uri"]
    assert call_api.requests == []

    done = _action(admin_client, "transfer", [call], apply="1", target_uri="tel:+14155550123")
    assert done.status_code == 302
    [request] = call_api.requests
    assert request.url.path == "/v1/realtime/calls/rtc_t/refer"
    body = json.loads(request.content)
    validate_against("RealtimeCallReferRequest", body)
    assert body == {"target_uri": "tel:+14155550123"}
    call.refresh_from_db()
    assert call.status == "referred"
    audit = AuditLogEntry.objects.get()
    assert (audit.action, audit.outcome, audit.user) == ("sip.refer", "succeeded", admin_user)
    assert any("Transferred to tel:+14155550123: rtc_t" in t for t in messages_of(done))


def test_actions_need_the_change_permission(call_api: CallControlAPI) -> None:
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_sipcall"))
    client = Client()
    client.force_login(viewer)
    call = make_call()
    page = client.get(reverse("admin:realtime_sip_sipcall_changelist"))
    assert page.status_code == 200
    assert "hangup" not in page.content.decode()
    response = _action(client, "hangup", [call])
    assert call_api.requests == []
    assert AuditLogEntry.objects.count() == 0
    assert response.status_code in (200, 302)


# --- webhook events ---------------------------------------------------------------------------


def test_webhook_events_are_read_only(admin_client: Client) -> None:
    event = WebhookEvent.objects.create(
        webhook_id="wh_1", event_type="realtime.call.incoming", status="done"
    )
    listing = admin_client.get(reverse("admin:django_realtime_webhookevent_changelist"))
    assert listing.status_code == 200
    assert "wh_1" in listing.content.decode()
    assert admin_client.get(reverse("admin:django_realtime_webhookevent_add")).status_code == 403
    assert (
        admin_client.post(
            reverse("admin:django_realtime_webhookevent_change", args=[event.pk]),
            {"status": "failed"},
        ).status_code
        == 403
    )
    assert (
        admin_client.post(
            reverse("admin:django_realtime_webhookevent_delete", args=[event.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.status == "done"
