"""Every call is recorded, whatever its channel (relay, SIP, ephemeral attach), and the
browser's end beacon reaches the call's worker; the admin's Calls list and hang-up."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from django_realtime import calls, checks, payloads
from django_realtime.models import AuditLogEntry, CallEvent, RealtimeCall, SessionPreset
from django_realtime.pruning import TARGETS
from django_realtime.sip import actions
from django_realtime.sip.models import SipCall
from django_realtime.testing import FakeRealtimeAPI
from tests.api_helpers import assert_error
from tests.conftest import OFFER_SDP, CheckedAPIClient
from tests.sip_helpers import CallControlAPI, install_call_api

pytestmark = pytest.mark.django_db

ATTACH = "/realtime/calls/attach/"


def end_url(call_id: str) -> str:
    return reverse("django_realtime:call-end", kwargs={"call_id": call_id})


@pytest.fixture
def fake(realtime_fake: FakeRealtimeAPI) -> FakeRealtimeAPI:
    realtime_fake.webrtc = False
    return realtime_fake


def test_the_url_names_resolve() -> None:
    assert reverse("django_realtime:call-attach") == ATTACH
    assert end_url("rtc_x") == "/realtime/calls/rtc_x/end/"


def test_a_relayed_call_is_recorded_pending_with_its_session(
    api_client: CheckedAPIClient, make_preset: Callable[..., SessionPreset], fake: Any, user: User
) -> None:
    preset = make_preset("assistant", instructions="Hi.", max_duration_seconds=60)
    response = api_client.post(
        "/realtime/calls/?preset=assistant", data=OFFER_SDP, content_type="application/sdp"
    )
    assert response.status_code == 201
    call = RealtimeCall.objects.get()
    assert call.call_id == response["X-Realtime-Call-Id"] == fake.last_call.id
    assert (call.origin, call.status, call.user, call.preset) == ("relay", "pending", user, preset)
    assert call.preset_version == preset.version
    assert call.session == payloads.build_session(preset)
    assert call.model == "gpt-realtime"
    assert call.usage() == dict.fromkeys(call.usage(), 0)
    assert call.cost_usd == Decimal(0)


def test_require_control_refuses_a_client_secret(
    api_client: CheckedAPIClient, make_preset: Callable[..., SessionPreset], fake: Any
) -> None:
    make_preset("leashed", require_control=True)
    response = api_client.post("/realtime/client-secrets/", {"preset": "leashed"}, format="json")
    assert_error(response, 400, "relay_required")
    assert fake.requests_to("/realtime/client_secrets") == []
    row = AuditLogEntry.objects.get()
    assert (row.outcome, row.error_code) == ("invalid", "relay_required")


# --- ephemeral: attach ---------------------------------------------------------------------


def _mint(api: CheckedAPIClient) -> None:
    assert api.post("/realtime/client-secrets/", {}, format="json").status_code == 201


@pytest.fixture
def minted(
    api_client: CheckedAPIClient,
    make_preset: Callable[..., SessionPreset],
    settings: Any,
    fake: Any,
) -> SessionPreset:
    preset = make_preset("assistant", voice="ash")
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "DEFAULT_PRESET": "assistant"}
    _mint(api_client)
    return preset


def test_attach_records_the_call_of_the_latest_mint_idempotently(
    api_client: CheckedAPIClient, minted: SessionPreset, user: User
) -> None:
    first = api_client.post(ATTACH, {"call_id": "rtc_abc123"}, format="json")
    assert first.status_code == 202
    assert first.json() == {"call_id": "rtc_abc123", "status": "pending", "end_requested": ""}
    again = api_client.post(ATTACH, {"call_id": "rtc_abc123"}, format="json")
    assert again.status_code == 202
    call = RealtimeCall.objects.get()
    mint = AuditLogEntry.objects.get(action="mint")
    assert (call.origin, call.user, call.preset) == ("ephemeral", user, minted)
    assert call.session == mint.session_payload
    assert call.session["audio"]["output"]["voice"] == "ash"


@pytest.mark.parametrize("body", [{}, {"call_id": "sess_1"}, {"call_id": "rtc_"}, {"call_id": 7}])
def test_attach_refuses_what_is_not_a_call_id(
    api_client: CheckedAPIClient, minted: SessionPreset, body: dict[str, Any]
) -> None:
    assert_error(api_client.post(ATTACH, body, format="json"), 400, "invalid")
    assert not RealtimeCall.objects.exists()


def test_attach_without_a_mint_is_refused(api_client: CheckedAPIClient) -> None:
    response = api_client.post(ATTACH, {"call_id": "rtc_abc"}, format="json")
    assert_error(response, 400, "invalid")
    assert not RealtimeCall.objects.exists()


def test_attach_refuses_another_users_call(
    api_client: CheckedAPIClient, minted: SessionPreset, make_user: Callable[..., User]
) -> None:
    RealtimeCall.objects.create(call_id="rtc_theirs", origin="relay", user=make_user("bob"))
    assert_error(
        api_client.post(ATTACH, {"call_id": "rtc_theirs"}, format="json"), 409, "call_taken"
    )
    assert RealtimeCall.objects.get().user.username == "bob"


# --- the end beacon ---------------------------------------------------------------------------


def test_the_beacon_asks_the_worker_to_end_with_reason_beacon(user: User) -> None:
    call = RealtimeCall.objects.create(call_id="rtc_mine", origin="relay", user=user)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)
    browser.get("/realtime/presets/")  # any page: the CSRF cookie
    token = "x" * 32
    browser.cookies["csrftoken"] = token
    response = browser.post(end_url(call.call_id), {"csrfmiddlewaretoken": token})
    assert response.status_code == 202, response.content
    call.refresh_from_db()
    assert (call.end_requested, call.status) == ("beacon", "pending")
    # Without the token the CSRF check refuses it and nothing changes.
    other = RealtimeCall.objects.create(call_id="rtc_mine2", origin="relay", user=user)
    assert browser.post(end_url(other.call_id), {}).status_code == 403
    other.refresh_from_db()
    assert other.end_requested == ""


def test_only_the_calls_own_user_may_end_it(
    api_client: CheckedAPIClient, make_user: Callable[..., User]
) -> None:
    call = RealtimeCall.objects.create(call_id="rtc_bobs", origin="relay", user=make_user("bob"))
    assert_error(api_client.post(end_url(call.call_id)), 404, "call_not_found")
    call.refresh_from_db()
    assert call.end_requested == ""


def test_an_ended_call_stays_ended(api_client: CheckedAPIClient, user: User) -> None:
    call = RealtimeCall.objects.create(
        call_id="rtc_done", origin="relay", user=user, status="ended", end_reason="peer"
    )
    assert api_client.post(end_url(call.call_id)).status_code == 202
    call.refresh_from_db()
    assert (call.end_requested, call.end_reason) == ("", "peer")


# --- SIP -----------------------------------------------------------------------------------------


@pytest.fixture
def call_api(settings: Any) -> Iterator[CallControlAPI]:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "MAX_RETRIES": 0}
    api = install_call_api()
    yield api
    from django_realtime import client

    client.set_transport(None)


def test_an_accepted_sip_call_is_recorded_one_to_one(
    call_api: CallControlAPI, make_preset: Callable[..., SessionPreset]
) -> None:
    preset = make_preset("phone", greeting="Say hello.")
    sip = SipCall.objects.create(call_id="rtc_sip_1", webhook_id="wh_1")
    assert actions.accept(sip, preset).ok
    call = RealtimeCall.objects.get()
    sip.refresh_from_db()
    assert sip.realtime_call == call
    assert call.sip == sip
    assert (call.origin, call.preset, call.user) == ("sip", preset, None)
    assert call.session == payloads.build_sip_accept_session(preset)


def test_a_failed_sip_accept_records_nothing(
    call_api: CallControlAPI, make_preset: Callable[..., SessionPreset]
) -> None:
    call_api.fail_next("accept", 400, "invalid_request_error")
    sip = SipCall.objects.create(call_id="rtc_sip_2", webhook_id="wh_2")
    assert not actions.accept(sip, make_preset("phone")).ok
    assert not RealtimeCall.objects.exists()


# --- admin -------------------------------------------------------------------------------------


@pytest.fixture
def admin_client(make_user: Callable[..., User]) -> Client:
    admin = make_user("root", is_staff=True, is_superuser=True)
    browser = Client()
    browser.force_login(admin)
    return browser


def test_the_calls_list_shows_usage_and_totals(admin_client: Client, user: User) -> None:
    start = timezone.now() - timedelta(minutes=2)
    for n, cost in enumerate(["0.0125", "0.5"]):
        call = RealtimeCall.objects.create(
            call_id=f"rtc_list{n}",
            origin="relay",
            user=user,
            status="ended",
            end_reason="beacon",
            input_audio_tokens=100,
            output_audio_tokens=50,
            cost_usd=Decimal(cost),
        )
        RealtimeCall.objects.filter(pk=call.pk).update(
            created_at=start, ended_at=start + timedelta(seconds=90)
        )
        CallEvent.objects.create(call=call, kind="warning", data={"message": f"note {n}"})
    page = admin_client.get("/admin/django_realtime/realtimecall/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "rtc_list0" in text
    assert "1:30" in text
    assert "0.5000" in text
    assert "Totals of the 2 calls listed: 3.0 minutes, 300 tokens, 0.5125 USD." in text
    filtered = admin_client.get("/admin/django_realtime/realtimecall/?q=rtc_list1")
    assert "Totals of the 1 calls listed" in filtered.content.decode()
    detail = admin_client.get(f"/admin/django_realtime/realtimecall/{call.pk}/change/")
    assert detail.status_code == 200
    assert "note 1" in detail.content.decode()


def test_hang_up_action_for_a_held_call_goes_through_the_worker(
    admin_client: Client, user: User
) -> None:
    call = RealtimeCall.objects.create(
        call_id="rtc_held",
        origin="relay",
        user=user,
        status="active",
        lease_owner="w1",
        lease_expires_at=timezone.now() + timedelta(seconds=15),
    )
    response = admin_client.post(
        "/admin/django_realtime/realtimecall/",
        {"action": "hangup", "_selected_action": [call.pk]},
    )
    assert response.status_code == 302
    call.refresh_from_db()
    assert (call.end_requested, call.status) == ("admin", "active")
    row = AuditLogEntry.objects.get()
    assert (row.action, row.outcome, row.call_id, row.username) == (
        "call.hangup",
        "succeeded",
        "rtc_held",
        "root",
    )


def test_hang_up_action_for_an_unfollowed_call_hangs_up_itself(
    admin_client: Client, user: User, call_api: CallControlAPI
) -> None:
    call = RealtimeCall.objects.create(call_id="rtc_loose", origin="relay", user=user)
    admin_client.post(
        "/admin/django_realtime/realtimecall/", {"action": "hangup", "_selected_action": [call.pk]}
    )
    assert [r.url.path for r in call_api.to("hangup")] == ["/v1/realtime/calls/rtc_loose/hangup"]
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("ended", "admin")
    assert AuditLogEntry.objects.get().outcome == "succeeded"


# --- settings, pruning ---------------------------------------------------------------------------


def test_worker_settings_are_checked(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "CONTROL_LEASE_SECONDS": 0}
    assert "django_realtime.E017" in {m.id for m in checks.check_settings()}
    settings.DJANGO_REALTIME = {
        **settings.DJANGO_REALTIME,
        "CONTROL_LEASE_SECONDS": 2,
        "CONTROL_POLL_SECONDS": 1,
    }
    assert {m.id for m in checks.check_settings()} >= {"django_realtime.W006"}
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "CONTROL_LEASE_SECONDS": 15}
    assert not {"django_realtime.W006", "django_realtime.E017"} & {
        m.id for m in checks.check_settings()
    }


def test_old_ended_calls_are_pruned_with_their_events(user: User) -> None:
    assert "calls" in TARGETS
    old = timezone.now() - timedelta(days=40)
    gone = RealtimeCall.objects.create(
        call_id="rtc_old", origin="relay", status="ended", ended_at=old
    )
    CallEvent.objects.create(call=gone, kind="warning")
    live = RealtimeCall.objects.create(call_id="rtc_live", origin="relay", status="active")
    call_command("realtime_prune", "--calls-days", "30", stdout=io.StringIO())
    assert list(RealtimeCall.objects.values_list("call_id", flat=True)) == [live.call_id]
    assert not CallEvent.objects.exists()


def test_request_end_twice_asks_once(user: User) -> None:
    call = RealtimeCall.objects.create(call_id="rtc_twice", origin="relay", user=user)
    assert calls.request_end(call, "beacon") is True
    assert calls.request_end(call, "admin") is False
    call.refresh_from_db()
    assert call.end_requested == "beacon"


def test_a_beacon_just_after_a_peer_end_explains_it(user: User) -> None:
    now = timezone.now()
    fresh = RealtimeCall.objects.create(
        call_id="rtc_raced",
        origin="relay",
        user=user,
        status="ended",
        end_reason="peer",
        ended_at=now - timedelta(seconds=2),
    )
    stale = RealtimeCall.objects.create(
        call_id="rtc_stale",
        origin="relay",
        user=user,
        status="ended",
        end_reason="peer",
        ended_at=now - timedelta(minutes=5),
    )
    calls.request_end(fresh, "beacon")
    calls.request_end(stale, "beacon")
    fresh.refresh_from_db()
    stale.refresh_from_db()
    assert (fresh.end_reason, stale.end_reason) == ("beacon", "peer")
