"""The rows behind the call controller, through their public functions: recording a
call (``calls``), the leases workers hold on calls (``control.leases``), a usage
limit's label and validation, and which transcript events make a line.

Synchronous ORM only, against the test database; each test reads the rows back.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import ValidationError
from django.utils import timezone

from django_realtime import calls
from django_realtime.control import leases
from django_realtime.control.transcripts import line_data
from django_realtime.exceptions import CallTaken, InvalidRequest
from django_realtime.models import (
    AuditAction,
    AuditLogEntry,
    AuditOutcome,
    RealtimeCall,
    SessionPreset,
)
from django_realtime.usage_models import UsageLimit

pytestmark = pytest.mark.django_db


def relay(call_id: str, preset: SessionPreset, user: User | None = None) -> RealtimeCall:
    call = calls.record_relay_call(
        call_id, user=user, preset=preset, session={"type": "realtime", "model": "gpt-realtime"}
    )
    assert call is not None
    return call


# --- recording calls ---------------------------------------------------------------------


def test_a_relay_call_without_an_id_is_not_recorded_and_says_why(
    preset: SessionPreset, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="django_realtime.calls"):
        assert calls.record_relay_call("", user=None, preset=preset, session={}) is None
    assert not RealtimeCall.objects.exists()
    assert ["relay call without a call id" in r.getMessage() for r in caplog.records] == [True]


def test_a_relay_call_row_keeps_the_preset_version_model_and_a_signed_in_user_only(
    preset: SessionPreset, user: User
) -> None:
    mine = relay("rtc_mine", preset, user)
    anonymous = calls.record_relay_call(
        "rtc_anon", user=mock_anonymous(), preset=preset, session={}
    )
    assert anonymous is not None
    rows = {
        row.call_id: row
        for row in RealtimeCall.objects.filter(call_id__in=["rtc_mine", "rtc_anon"])
    }
    assert (rows["rtc_mine"].origin, rows["rtc_mine"].user_id) == ("relay", user.pk)
    assert rows["rtc_mine"].model == "gpt-realtime"
    assert rows["rtc_mine"].preset_version == preset.version
    assert rows["rtc_anon"].user_id is None
    # The preset's own model stands in when the session names none.
    assert rows["rtc_anon"].model == preset.model
    # Recording the same id again returns the row, unchanged.
    assert relay("rtc_mine", preset).pk == mine.pk
    assert RealtimeCall.objects.count() == 2


def mock_anonymous() -> object:
    from django.contrib.auth.models import AnonymousUser

    return AnonymousUser()


@pytest.mark.parametrize("call_id", [None, 42, "", "rtc_", "call_123", "rtc_bad id"])
def test_attaching_a_malformed_call_id_is_refused(user: User, call_id: object) -> None:
    with pytest.raises(InvalidRequest):
        calls.attach_ephemeral(call_id, user)
    assert not RealtimeCall.objects.exists()


def test_attaching_without_a_recent_mint_is_refused(user: User, preset: SessionPreset) -> None:
    old = AuditLogEntry.objects.create(
        user=user, action=AuditAction.MINT, outcome=AuditOutcome.ISSUED, preset=preset
    )
    AuditLogEntry.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - calls.MINT_LOOKBACK - datetime.timedelta(minutes=1)
    )
    with pytest.raises(InvalidRequest, match="No client secret"):
        calls.attach_ephemeral("rtc_ephemeral1", user)
    assert not RealtimeCall.objects.exists()


def test_attaching_takes_the_latest_mints_preset_and_session_and_is_idempotent(
    user: User, other_user: User, make_preset: Callable[..., SessionPreset]
) -> None:
    first, latest = make_preset("first"), make_preset("latest")
    for preset, model in ((first, "gpt-realtime-mini"), (latest, "gpt-realtime")):
        AuditLogEntry.objects.create(
            user=user,
            action=AuditAction.MINT,
            outcome=AuditOutcome.ISSUED,
            preset=preset,
            preset_version=preset.version,
            model=model,
            session_payload={"type": "realtime", "model": model},
        )
    call, created = calls.attach_ephemeral("rtc_ephemeral1", user)
    assert created
    row = RealtimeCall.objects.get(call_id="rtc_ephemeral1")
    assert (row.origin, row.user_id, row.preset_id) == ("ephemeral", user.pk, latest.pk)
    assert (row.model, row.session) == (
        "gpt-realtime",
        {"type": "realtime", "model": "gpt-realtime"},
    )
    again, created_again = calls.attach_ephemeral("rtc_ephemeral1", user)
    assert (again.pk, created_again) == (call.pk, False)
    with pytest.raises(CallTaken):
        calls.attach_ephemeral("rtc_ephemeral1", other_user)
    assert RealtimeCall.objects.count() == 1


def test_an_end_request_is_asked_once_and_never_for_an_ended_call(preset: SessionPreset) -> None:
    live, over = relay("rtc_live", preset), relay("rtc_over", preset)
    RealtimeCall.objects.filter(pk=over.pk).update(status="ended", end_reason="idle")
    assert calls.request_end(live, "admin") is True
    assert calls.request_end(live, "beacon") is False  # the first reason stands
    assert calls.request_end(over, "admin") is False
    rows = dict(RealtimeCall.objects.values_list("call_id", "end_requested"))
    assert rows == {"rtc_live": "admin", "rtc_over": ""}


def test_a_beacon_just_after_an_end_by_the_peer_explains_it(preset: SessionPreset) -> None:
    recent, old = relay("rtc_recent", preset), relay("rtc_old", preset)
    now = timezone.now()
    RealtimeCall.objects.filter(pk=recent.pk).update(
        status="ended", end_reason="peer", ended_at=now
    )
    RealtimeCall.objects.filter(pk=old.pk).update(
        status="ended", end_reason="peer", ended_at=now - calls.BEACON_GRACE * 2
    )
    assert calls.request_end(recent, "beacon") is False
    assert calls.request_end(old, "beacon") is False
    rows = {
        c: (r, q)
        for c, r, q in RealtimeCall.objects.values_list("call_id", "end_reason", "end_requested")
    }
    assert rows == {"rtc_recent": ("beacon", "beacon"), "rtc_old": ("peer", "")}


# --- leases ------------------------------------------------------------------------------


def owners() -> dict[str, str]:
    return dict(RealtimeCall.objects.values_list("call_id", "lease_owner"))


def test_claims_take_the_oldest_unheld_live_calls_up_to_the_limit(preset: SessionPreset) -> None:
    for index in range(4):
        relay(f"rtc_{index}", preset)
    RealtimeCall.objects.filter(call_id="rtc_3").update(status="ended")
    assert leases.claim("w1", 0, 15) == []
    won = leases.claim("w1", 2, 15)
    assert [call.call_id for call in won] == ["rtc_0", "rtc_1"]
    assert [call.preset for call in won] == [preset, preset]  # fetched with the rows
    # The rest goes to the next worker; an ended call to nobody.
    assert [call.call_id for call in leases.claim("w2", 10, 15)] == ["rtc_2"]
    assert leases.claim("w3", 10, 15) == []
    assert owners() == {"rtc_0": "w1", "rtc_1": "w1", "rtc_2": "w2", "rtc_3": ""}


def test_a_lapsed_lease_is_claimed_by_another_worker_and_a_too_old_call_by_nobody(
    preset: SessionPreset,
) -> None:
    lapsed, ancient = relay("rtc_lapsed", preset), relay("rtc_ancient", preset)
    past = timezone.now() - datetime.timedelta(seconds=1)
    RealtimeCall.objects.filter(pk=lapsed.pk).update(lease_owner="dead", lease_expires_at=past)
    RealtimeCall.objects.filter(pk=ancient.pk).update(
        created_at=timezone.now() - leases.CLAIM_HORIZON - datetime.timedelta(seconds=1)
    )
    assert [call.call_id for call in leases.claim("w2", 10, 15)] == ["rtc_lapsed"]
    assert owners() == {"rtc_lapsed": "w2", "rtc_ancient": ""}


def test_renewing_extends_only_the_workers_own_live_leases(preset: SessionPreset) -> None:
    for call_id in ("rtc_a", "rtc_b", "rtc_c"):
        relay(call_id, preset)
    leases.claim("w1", 2, 1)  # rtc_a, rtc_b
    leases.claim("w2", 1, 1)  # rtc_c
    RealtimeCall.objects.filter(call_id="rtc_b").update(status="ended")
    before = timezone.now()
    assert leases.renew("w1", [], 60) == set()
    assert leases.renew("w1", ["rtc_a", "rtc_b", "rtc_c"], 60) == {"rtc_a"}
    expiry = dict(RealtimeCall.objects.values_list("call_id", "lease_expires_at"))
    assert expiry["rtc_a"] >= before + datetime.timedelta(seconds=59)
    assert expiry["rtc_c"] < before + datetime.timedelta(seconds=2)  # w2's, untouched


def test_release_gives_up_all_or_some_calls_and_end_requests_are_the_owners(
    preset: SessionPreset,
) -> None:
    for call_id in ("rtc_a", "rtc_b", "rtc_c"):
        relay(call_id, preset)
    leases.claim("w1", 3, 15)
    RealtimeCall.objects.filter(call_id="rtc_b").update(end_requested="admin")
    assert leases.end_requests("w1") == {"rtc_b": "admin"}
    assert leases.end_requests("w2") == {}
    assert leases.release("w1", ["rtc_a"]) == 1
    assert owners() == {"rtc_a": "", "rtc_b": "w1", "rtc_c": "w1"}
    assert leases.release("w1") == 2
    assert owners() == {"rtc_a": "", "rtc_b": "", "rtc_c": ""}
    assert RealtimeCall.objects.filter(lease_expires_at__isnull=False).count() == 0


def test_an_unattached_call_waits_out_its_retry_then_anyone_may_claim_it(
    preset: SessionPreset,
) -> None:
    relay("rtc_a", preset)
    ended = relay("rtc_ended", preset)
    leases.claim("w1", 2, 15)
    RealtimeCall.objects.filter(pk=ended.pk).update(status="ended")
    leases.mark_unattached("w1", "rtc_a", 10)
    leases.mark_unattached("w1", "rtc_ended", 10)
    leases.mark_unattached("w2", "rtc_a", 10)  # not w2's: nothing happens
    row = RealtimeCall.objects.get(call_id="rtc_a")
    assert (row.status, row.lease_owner) == ("unattached", "")
    assert row.lease_expires_at is not None
    assert row.lease_expires_at > timezone.now()
    assert RealtimeCall.objects.get(pk=ended.pk).status == "ended"
    assert leases.claim("w2", 10, 15) == []  # still waiting
    RealtimeCall.objects.filter(call_id="rtc_a").update(
        lease_expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert [call.call_id for call in leases.claim("w2", 10, 15)] == ["rtc_a"]


# --- usage limits and transcript lines ------------------------------------------------


def test_a_usage_limit_names_who_and_what_and_needs_one_limit(
    preset: SessionPreset, group: Group
) -> None:
    assert str(UsageLimit(minutes_per_day=5)) == "everyone / every preset"
    assert str(UsageLimit(group=group, preset=preset, minutes_per_day=5)) == (
        f"callers / {preset.name}"
    )
    with pytest.raises(ValidationError, match="at least one limit"):
        UsageLimit(group=group).full_clean()
    UsageLimit(group=group, cost_per_day_usd=1).full_clean()
    UsageLimit(max_concurrent_calls=1).full_clean()


@pytest.mark.parametrize(
    ("role", "event", "expected"),
    [
        ("user", {"transcript": "Hi", "item_id": "item_1"}, ("user", "Hi", "item_1")),
        ("assistant", {"transcript": "Hello", "item_id": 7}, ("assistant", "Hello", "")),
        ("system", {"transcript": "Hi"}, None),
        ("user", {"transcript": "   "}, None),
        ("user", {"transcript": None}, None),
        ("user", {}, None),
    ],
)
def test_only_a_spoken_line_of_a_known_role_is_a_transcript_line(
    role: str, event: dict[str, object], expected: tuple[str, str, str] | None
) -> None:
    data = line_data(role, event)
    if expected is None:
        assert data is None
    else:
        assert data == dict(zip(("role", "text", "item_id"), expected, strict=True))
