"""Quotas: each dimension refuses a mint or a relay with 429 ``quota_exceeded`` before any
upstream call (audited), the most generous row wins, the day ends at midnight in the
site's time zone, a stale call stops counting, and a running call is warned then hung up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group, User
from django.utils import timezone

from django_realtime import quotas
from django_realtime.control.controller import CallController
from django_realtime.control.store import DatabaseCallStore
from django_realtime.control.worker import leash_for
from django_realtime.models import AuditLogEntry, RealtimeCall, SessionPreset, UsageLimit
from django_realtime.testing import FakeRealtimeAPI, FakeRealtimeServer
from django_realtime.testing.clock import ManualClock
from django_realtime.testing.sideband import FakeSidebands
from tests.api_helpers import assert_error
from tests.conftest import OFFER_SDP, CheckedAPIClient

MINT = "/realtime/client-secrets/"
PARIS = ZoneInfo("Europe/Paris")


def call_for(user: User, preset: SessionPreset | None, **fields: Any) -> RealtimeCall:
    created_at = fields.pop("created_at", None)
    call = RealtimeCall.objects.create(
        call_id=f"rtc_{RealtimeCall.objects.count() + 1}",
        origin="relay",
        user=user,
        preset=preset,
        **fields,
    )
    if created_at is not None:
        RealtimeCall.objects.filter(pk=call.pk).update(created_at=created_at)
        call.refresh_from_db()
    return call


def minutes_call(user: User, preset: SessionPreset | None, minutes: float, **fields: Any) -> Any:
    now = timezone.now()
    start = now - timedelta(minutes=minutes)
    return call_for(
        user, preset, status="ended", created_at=start, attached_at=start, ended_at=now, **fields
    )


@pytest.fixture
def voice(make_preset: Callable[..., SessionPreset]) -> SessionPreset:
    return make_preset("voice")


def mint(api: CheckedAPIClient) -> Any:
    return api.post(MINT, {"preset": "voice"}, format="json")


@pytest.mark.django_db
def test_concurrency_refuses_before_upstream_with_an_audit_row_and_retry_after(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI, user: User
) -> None:
    UsageLimit.objects.create(max_concurrent_calls=1)
    live = call_for(
        user, voice, status="active", lease_expires_at=timezone.now() + timedelta(seconds=10)
    )
    response = mint(api_client)
    assert_error(response, 429, "quota_exceeded")
    assert 3590 <= int(response["Retry-After"]) <= 3600  # the live call's latest end
    assert realtime_fake.requests_to("/realtime/client_secrets") == []
    row = AuditLogEntry.objects.get()
    assert (row.outcome, row.error_code) == ("rate_limited", "quota_exceeded")
    # The worker holding the call crashed: its lease lapses and the call stops counting.
    RealtimeCall.objects.filter(pk=live.pk).update(lease_expires_at=timezone.now())
    assert mint(api_client).status_code == 201


@pytest.mark.django_db
def test_a_pending_call_nobody_attached_stops_counting(user: User, voice: SessionPreset) -> None:
    UsageLimit.objects.create(max_concurrent_calls=1)
    call_for(user, voice, status="pending")
    with pytest.raises(quotas.QuotaExceeded):
        quotas.check(user, voice)
    with time_machine.travel(timezone.now() + quotas.PENDING_GRACE + timedelta(seconds=1)):
        quotas.check(user, voice)


@pytest.mark.django_db
def test_minutes_per_day_and_the_most_generous_row(user: User, voice: SessionPreset) -> None:
    UsageLimit.objects.create(minutes_per_day=10, max_concurrent_calls=1)
    minutes_call(user, voice, 10)
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check(user, voice)
    assert refused.value.dimension == "minutes_per_day"
    assert quotas.remaining_minutes(user, voice) == 0
    pro = Group.objects.create(name="pro")
    UsageLimit.objects.create(group=pro, minutes_per_day=120)
    with pytest.raises(quotas.QuotaExceeded):  # not a member: the group's row does not apply
        quotas.check(user, voice)
    user.groups.add(pro)
    quotas.check(user, voice)  # the pro row lifts the minutes; the concurrency row still holds
    assert quotas.remaining_minutes(user, voice) == pytest.approx(110, abs=0.1)
    call_for(user, voice, status="pending")
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check(user, voice)
    assert refused.value.dimension == "max_concurrent_calls"


@pytest.mark.django_db
def test_a_preset_row_counts_its_preset_only(
    user: User, voice: SessionPreset, make_preset: Callable[..., SessionPreset]
) -> None:
    other = make_preset("other")
    UsageLimit.objects.create(preset=voice, minutes_per_day=5)
    minutes_call(user, other, 30)
    quotas.check(user, voice)
    quotas.check(user, other)  # no row for it
    minutes_call(user, voice, 5)
    with pytest.raises(quotas.QuotaExceeded):
        quotas.check(user, voice)
    quotas.check(user, other)


@pytest.mark.django_db
def test_cost_per_day(user: User, voice: SessionPreset) -> None:
    UsageLimit.objects.create(cost_per_day_usd=Decimal("1.00"))
    minutes_call(user, voice, 1, cost_usd=Decimal("0.99"))
    quotas.check(user, voice)
    minutes_call(user, voice, 1, cost_usd=Decimal("0.01"))
    with pytest.raises(quotas.QuotaExceeded) as refused:
        quotas.check(user, voice)
    assert refused.value.dimension == "cost_per_day_usd"


@pytest.mark.django_db
def test_the_day_ends_at_midnight_in_the_site_time_zone(
    settings: Any, user: User, voice: SessionPreset
) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    UsageLimit.objects.create(minutes_per_day=10)
    # 23:30 in Paris is 22:30 UTC (winter): the UTC day would still have 90 minutes to go.
    with time_machine.travel(datetime(2026, 12, 2, 23, 30, tzinfo=PARIS), tick=False):
        minutes_call(user, voice, 15)
        with pytest.raises(quotas.QuotaExceeded) as refused:
            quotas.check(user, voice)
        assert refused.value.wait == 30 * 60
        assert quotas.day_start() == datetime(2026, 12, 2, 0, 0, tzinfo=PARIS)
    with time_machine.travel(datetime(2026, 12, 3, 0, 0, 1, tzinfo=PARIS), tick=False):
        quotas.check(user, voice)  # a new day in Paris
        assert quotas.remaining_minutes(user, voice) == 10


@pytest.mark.django_db
def test_relay_is_refused_too(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI, user: User
) -> None:
    realtime_fake.webrtc = False
    UsageLimit.objects.create(minutes_per_day=1)
    minutes_call(user, voice, 2)
    response = api_client.post(
        "/realtime/calls/?preset=voice", data=OFFER_SDP, content_type="application/sdp"
    )
    assert_error(response, 429, "quota_exceeded")
    assert realtime_fake.requests_to("/realtime/calls") == []


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.mark.anyio
@pytest.mark.django_db(transaction=True)
async def test_a_running_call_is_warned_then_hung_up_with_reason_quota(
    realtime_sidebands: FakeSidebands, realtime_server: FakeRealtimeServer
) -> None:
    user = await User.objects.acreate(username="bo")
    preset = await SessionPreset.objects.acreate(name="Voice", slug="voice", model="gpt-realtime")
    await UsageLimit.objects.acreate(minutes_per_day=2)
    virtual = realtime_sidebands.virtual_call({"type": "realtime", "model": "gpt-realtime"})
    now = timezone.now()
    # One minute used earlier today; this call has just started.
    await RealtimeCall.objects.acreate(
        call_id="rtc_earlier",
        origin="relay",
        user=user,
        preset=preset,
        status="ended",
        attached_at=now - timedelta(minutes=1),
        ended_at=now,
    )
    row = await RealtimeCall.objects.acreate(
        call_id=virtual.id,
        origin="relay",
        user=user,
        preset=preset,
        attached_at=now,
        session={"type": "realtime", "model": "gpt-realtime"},
    )
    call = await RealtimeCall.objects.select_related("preset").aget(pk=row.pk)
    clock = ManualClock()
    store = DatabaseCallStore(call, "test")
    controller = CallController(call.call_id, leash_for(call), store, clock=clock)
    task = asyncio.ensure_future(controller.run())
    # the controller's timers and the quota watch both sleep on the clock
    await _until(lambda: controller.quota.task is not None and clock.sleepers >= 2)
    await clock.advance(29)
    await asyncio.sleep(0.05)
    assert realtime_sidebands.sent(virtual.id) == []  # 31 s left: not yet warned
    await clock.advance(2)  # 29 s left (QUOTA_WARNING_SECONDS = 30)
    await _until(lambda: len(realtime_sidebands.sent(virtual.id)) == 1)
    warning = realtime_sidebands.sent(virtual.id)[0]
    assert warning["type"] == "response.create"
    assert "allowance" in warning["response"]["instructions"]
    # the watch woke to warn: move the clock only once it sleeps on it again
    await _until(lambda: clock.sleepers >= 2)
    await clock.advance(30)
    assert await asyncio.wait_for(task, 10) == "quota"
    ended = await RealtimeCall.objects.aget(pk=row.pk)
    assert (ended.status, ended.end_reason) == ("ended", "quota")
    assert realtime_server.fake.requests_to(f"/realtime/calls/{virtual.id}/hangup")
    kinds = [e.kind async for e in ended.events.all()]
    assert "warning" in kinds


@pytest.mark.django_db
def test_a_granted_call_holds_its_slot_until_recorded(
    api_client: CheckedAPIClient, voice: SessionPreset, realtime_fake: FakeRealtimeAPI, user: User
) -> None:
    UsageLimit.objects.create(max_concurrent_calls=1)
    # An ephemeral mint records no call until the browser attaches: the slot holds it.
    assert mint(api_client).status_code == 201
    second = mint(api_client)
    assert_error(second, 429, "quota_exceeded")
    assert int(second["Retry-After"]) == quotas.slot_seconds(voice)
    assert len(realtime_fake.requests_to("/realtime/client_secrets")) == 1
    # Once its call is recorded and ended, and the slot lapsed, the user may call again.
    call_for(user, voice, status="ended")
    with time_machine.travel(timezone.now() + timedelta(seconds=quotas.slot_seconds(voice) + 1)):
        assert mint(api_client).status_code == 201


@pytest.mark.django_db
def test_slots_above_the_live_calls_let_a_bigger_limit_through(
    user: User, voice: SessionPreset
) -> None:
    UsageLimit.objects.create(max_concurrent_calls=2)
    quotas.check(user, voice)  # slot 0
    fresh = timezone.now() + timedelta(seconds=10)
    call_for(user, voice, status="active", lease_expires_at=fresh)  # that call, recorded
    quotas.check(user, voice)  # slot 1: the second call
    with pytest.raises(quotas.QuotaExceeded):
        quotas.check(user, voice)  # a third, while the second is not recorded yet
