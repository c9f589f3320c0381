"""Transcripts (order, roles, item ids, the signal, pruning), the usage dashboard's figures
against a hand computation, its CSV (formula-guarded) and the preset's server tools in
the session sent upstream."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from django_realtime import payloads, signals
from django_realtime.control.controller import CallController, Leash
from django_realtime.models import CallEvent, RealtimeCall, SessionPreset
from django_realtime.testing import FakeRealtimeServer, script
from django_realtime.testing.clock import ManualClock
from django_realtime.testing.sideband import FakeSidebands
from django_realtime.tools import registry
from django_realtime.usage import usage_report

PARIS = ZoneInfo("Europe/Paris")
DASHBOARD = "/admin/django_realtime/usagelimit/dashboard/"


class Store:
    def __init__(self) -> None:
        self.status = "pending"
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def mark_active(self) -> None:
        self.status = "active"

    async def add_usage(self, metered: Any) -> None:
        pass

    async def record_event(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))

    async def mark_ended(self, reason: str) -> None:
        self.status = "ended"


@pytest.mark.anyio
async def test_transcript_lines_in_order_with_roles_item_ids_and_the_signal(
    realtime_sidebands: FakeSidebands, realtime_server: FakeRealtimeServer
) -> None:
    session = {"type": "realtime", "model": "gpt-realtime"}
    call = realtime_sidebands.virtual_call(session)
    store = Store()
    heard: list[dict[str, Any]] = []
    heard_sync: list[dict[str, Any]] = []

    # Both kinds of receiver, on every supported Django (4.2 has no Signal.asend).
    async def receiver(sender: Any, **kwargs: Any) -> None:
        heard.append(kwargs)

    def sync_receiver(sender: Any, **kwargs: Any) -> None:
        heard_sync.append(kwargs)

    signals.transcript_line.connect(receiver)
    signals.transcript_line.connect(sync_receiver)
    try:
        controller = CallController(
            call.id, Leash(session=session, store_transcripts=True), store, clock=ManualClock()
        )
        task = asyncio.ensure_future(controller.run())
        steps = [script.turn("What time is it?", "Noon."), script.turn("Thanks", "Bye!")]
        await asyncio.to_thread(realtime_sidebands.play, call.id, [*steps, script.hangup()])
        await asyncio.wait_for(task, 10)
    finally:
        signals.transcript_line.disconnect(receiver)
        signals.transcript_line.disconnect(sync_receiver)
    lines = [data for kind, data in store.events if kind == "transcript"]
    assert [(d["role"], d["text"]) for d in lines] == [
        ("user", "What time is it?"),
        ("assistant", "Noon."),
        ("user", "Thanks"),
        ("assistant", "Bye!"),
    ]
    assert all(d["item_id"].startswith("item_") for d in lines)
    assert lines[0]["item_id"] != lines[2]["item_id"]
    for received in (heard, heard_sync):
        assert [{k: v for k, v in h.items() if k != "signal"} for h in received] == [
            {"call_id": call.id, **d} for d in lines
        ]


@pytest.mark.django_db
def test_transcripts_are_pruned_after_their_retention_other_events_stay(settings: Any) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "TRANSCRIPT_RETENTION_DAYS": 7}
    call = RealtimeCall.objects.create(call_id="rtc_p", origin="relay", status="active")
    old = timezone.now() - timedelta(days=8)
    for kind in ("transcript", "tool_call"):
        event = CallEvent.objects.create(call=call, kind=kind, data={"role": "user", "text": "x"})
        CallEvent.objects.filter(pk=event.pk).update(created_at=old)
    fresh = CallEvent.objects.create(call=call, kind="transcript", data={"text": "y"})
    out = StringIO()
    call_command("realtime_prune", stdout=out)  # the default age: TRANSCRIPT_RETENTION_DAYS
    assert "Deleted 1 transcript lines older than 7 days." in out.getvalue()
    assert set(CallEvent.objects.values_list("kind", flat=True)) == {"tool_call", "transcript"}
    assert CallEvent.objects.filter(kind="transcript").get() == fresh


def _call(
    user: User | None, preset: SessionPreset | None, start: datetime, minutes: float, cost: str
) -> RealtimeCall:
    call = RealtimeCall.objects.create(
        call_id=f"rtc_{RealtimeCall.objects.count()}",
        origin="relay",
        user=user,
        preset=preset,
        status="ended",
        attached_at=start,
        ended_at=start + timedelta(minutes=minutes),
        cost_usd=Decimal(cost),
    )
    RealtimeCall.objects.filter(pk=call.pk).update(created_at=start)
    return call


@pytest.mark.django_db
def test_dashboard_figures_equal_a_hand_computation_in_the_site_time_zone(
    settings: Any, make_preset: Callable[..., SessionPreset], admin_client: Client
) -> None:
    settings.TIME_ZONE = "Europe/Paris"
    voice, text = make_preset("voice"), make_preset("text")
    ann = User.objects.create_user("ann")
    bob = User.objects.create_user("=cmd|' /C calc'!A0")  # a formula in a username
    with time_machine.travel(datetime(2026, 12, 2, 12, 0, tzinfo=PARIS), tick=False):
        # 00:30 in Paris on Dec 2 is still Dec 1 in UTC: it belongs to Dec 2 here.
        _call(ann, voice, datetime(2026, 12, 2, 0, 30, tzinfo=PARIS), 3, "0.30")
        _call(bob, voice, datetime(2026, 12, 1, 10, 0, tzinfo=PARIS), 2, "0.20")
        _call(bob, text, datetime(2026, 12, 1, 11, 0, tzinfo=PARIS), 1.5, "0.05")
        _call(ann, text, datetime(2026, 10, 1, 11, 0, tzinfo=PARIS), 60, "9")  # outside 30 days
        report = usage_report()
        response = admin_client.get(DASHBOARD)
        exported = admin_client.get(DASHBOARD + "?format=csv")
    days = {row.label: row for row in report.days}
    assert len(report.days) == 30
    assert report.days[-1].label == "2026-12-02"
    assert (days["2026-12-02"].calls, days["2026-12-02"].minutes) == (1, 3.0)
    assert days["2026-12-02"].cost_usd == Decimal("0.3000")
    assert (days["2026-12-01"].calls, days["2026-12-01"].minutes) == (2, 3.5)
    assert days["2026-12-01"].cost_usd == Decimal("0.2500")
    assert sum(row.calls for row in report.days) == 3
    assert [(r.label, r.calls, r.minutes, r.cost_usd) for r in report.presets] == [
        (voice.name, 2, 5.0, Decimal("0.5000")),
        (text.name, 1, 1.5, Decimal("0.0500")),
    ]
    assert [(r.label, r.minutes) for r in report.users] == [(bob.username, 3.5), ("ann", 3.0)]
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<svg class="realtime-usage-chart"') == 3
    assert "<script" not in page.split('id="realtime-usage"')[1]  # no script of ours
    assert "3 calls, 6.5 minutes, 0.5500 USD" in page
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0] == ["table", "label", "calls", "minutes", "cost_usd"]
    assert ["day", "2026-12-01", "2", "3.5", "0.2500"] in rows
    assert ["preset", voice.name, "2", "5", "0.5000"] in rows
    assert ["user", "'" + bob.username, "2", "3.5", "0.2500"] in rows


@pytest.mark.django_db
def test_dashboard_is_linked_from_the_calls_list_and_needs_view_permission(
    admin_client: Client, client: Client
) -> None:
    page = admin_client.get("/admin/django_realtime/realtimecall/").content.decode()
    assert DASHBOARD in page
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(DASHBOARD).status_code == 403


@pytest.mark.django_db
def test_server_tools_are_sent_with_the_session(make_preset: Callable[..., SessionPreset]) -> None:
    own = {"type": "function", "name": "local", "parameters": {"type": "object"}}
    preset = make_preset("tools", tools=[own], server_tools=["spell"])
    session = payloads.build_session(preset)
    assert session["tools"] == [own, registry["spell"].definition()]
    preset.server_tools = []
    assert payloads.build_session(preset)["tools"] == [own]


@pytest.mark.django_db
def test_a_stale_server_tool_name_is_a_database_check_error(
    make_preset: Callable[..., SessionPreset],
) -> None:
    from django.core import checks

    preset = make_preset("stale")
    SessionPreset.objects.filter(pk=preset.pk).update(server_tools=["spell", "gone_tool"])
    errors = [m for m in checks.run_checks(databases=["default"]) if m.id == "django_realtime.E020"]
    assert len(errors) == 1
    assert "gone_tool" in errors[0].msg
    assert "spell" not in errors[0].msg.split(":")[-1]


def test_malformed_usage_settings_are_e021(settings: Any) -> None:
    from django_realtime.usage_checks import check_usage_settings

    settings.DJANGO_REALTIME = {"TOOL_TIMEOUT": 0, "TRANSCRIPT_RETENTION_DAYS": "30"}
    assert [m.id for m in check_usage_settings()] == ["django_realtime.E021"] * 2
    settings.DJANGO_REALTIME = {"TOOL_TIMEOUT": 2.5, "TRANSCRIPT_RETENTION_DAYS": None}
    assert check_usage_settings() == []
