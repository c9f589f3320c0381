"""The worker against the fake's virtual calls (the same sideband handler as over the
network, in memory) and the test database: metering lands in the counters exactly, each
end reason ends the row, end requests reach the controller, calls are claimed once and
handed over on stop.

The scenarios run under ``async_to_sync``, so the worker's database thread is the
test's own thread (and its transaction).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.contrib.auth.models import User

from django_realtime import calls, payloads, signals
from django_realtime.control.worker import Worker
from django_realtime.models import CallEvent, RealtimeCall, SessionPreset
from django_realtime.testing import FakeRealtimeServer, script
from django_realtime.testing.clock import ManualClock
from django_realtime.testing.sideband import FakeSidebands
from django_realtime.testing.sideband_memory import MemoryConnector
from tests.waits import until

pytestmark = pytest.mark.django_db
M = Decimal(1_000_000)


@pytest.fixture
def hub(realtime_sidebands: FakeSidebands) -> FakeSidebands:
    return realtime_sidebands


@pytest.fixture
def sent_signals() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    log: list[tuple[str, dict[str, Any]]] = []
    pairs = [
        ("started", signals.call_started),
        ("ended", signals.call_ended),
        ("violation", signals.call_violation),
    ]
    receivers = []
    for name, signal in pairs:

        def receiver(sender: Any, name: str = name, **kwargs: Any) -> None:
            log.append((name, kwargs))

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield log
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def record(hub: FakeSidebands, preset: SessionPreset, user: User | None = None) -> RealtimeCall:
    """A relay-style call: the fake knows it (virtual), the database has its row."""
    session = payloads.build_session(preset)
    virtual = hub.virtual_call(session)
    call = calls.record_relay_call(virtual.id, user=user, preset=preset, session=session)
    assert call is not None
    return call


def worker(hub: FakeSidebands, name: str = "w1", **kwargs: Any) -> Worker:
    return Worker(name, connector=MemoryConnector(hub.fake), poll_seconds=0.02, **kwargs)


def row(call: RealtimeCall) -> Callable[[], Awaitable[RealtimeCall]]:
    return sync_to_async(lambda: RealtimeCall.objects.get(pk=call.pk))


def status_is(call: RealtimeCall, status: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await row(call)()).status == status

    return check


def play(hub: FakeSidebands, call: RealtimeCall, *steps: dict[str, Any]) -> Awaitable[None]:
    return asyncio.to_thread(hub.play, call.call_id, list(steps))


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


async def running(w: Worker) -> asyncio.Task[None]:
    return asyncio.ensure_future(w.run())


async def stop(w: Worker, task: asyncio.Task[None]) -> None:
    w.stop()
    await asyncio.wait_for(task, 10)


def test_metering_is_exact_and_signals_carry_the_usage(
    hub: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    user: User,
    sent_signals: list[Any],
    realtime_server: FakeRealtimeServer,
) -> None:
    preset = make_preset(
        "assistant", store_transcripts=True, transcription_model="gpt-4o-transcribe"
    )
    call = record(hub, preset, user)

    async def scenario() -> None:
        w = worker(hub)
        task = await running(w)
        await until(status_is(call, "active"))
        await play(
            hub,
            call,
            script.turn(
                "Hi",
                "Hello",
                usage=script.usage(
                    text_in=300,
                    audio_in=700,
                    cached_text=200,
                    cached_audio=500,
                    text_out=20,
                    audio_out=400,
                ),
                transcription_usage=script.transcription_tokens(audio=60, output=5),
            ),
            script.turn("Bye", "Bye!", usage=script.usage(text_in=50, image_in=8, audio_out=90)),
            script.hangup(),
        )
        await until(status_is(call, "ended"))
        await stop(w, task)

    run(scenario)
    call.refresh_from_db()
    assert call.usage() == {
        "input_text_tokens": 350,
        "input_audio_tokens": 700,
        "input_image_tokens": 8,
        "cached_input_tokens": 700,
        "output_text_tokens": 20,
        "output_audio_tokens": 490,
        "transcription_tokens": 65,
        "transcription_seconds": 0,
    }
    expected = (
        (100 + 50) * Decimal(4)
        + 200 * Decimal("0.40")
        + 200 * Decimal(32)
        + 500 * Decimal("0.40")
        + 8 * Decimal(5)
        + 20 * Decimal(16)
        + 490 * Decimal(64)
        + 60 * Decimal(6)
        + 5 * Decimal(10)
    ) / M
    assert call.cost_usd == expected
    assert (call.end_reason, call.lease_owner, call.lease_expires_at) == ("peer", "", None)
    assert call.attached_at is not None
    assert call.ended_at is not None
    assert str(call.prices_read_on) == "2026-12-02"
    kinds = list(CallEvent.objects.filter(call=call).values_list("kind", "data"))
    lines = [d for k, d in kinds if k == "transcript"]
    assert all(line["item_id"].startswith("item_") for line in lines)
    assert [{"role": d["role"], "text": d["text"]} for d in lines] == [
        {"role": "user", "text": "Hi"},
        {"role": "assistant", "text": "Hello"},
        {"role": "user", "text": "Bye"},
        {"role": "assistant", "text": "Bye!"},
    ]
    assert [name for name, _ in sent_signals] == ["started", "ended"]
    ended = sent_signals[1][1]
    assert ended["reason"] == "peer"
    assert ended["usage"] == call.usage()
    assert ended["call"].cost_usd == expected


def test_a_beacon_reaches_the_worker_and_ends_with_beacon(
    hub: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    user: User,
    realtime_server: FakeRealtimeServer,
) -> None:
    call = record(hub, make_preset("assistant"), user)

    async def scenario() -> None:
        w = worker(hub)
        task = await running(w)
        await until(status_is(call, "active"))
        await sync_to_async(calls.request_end)(call, "beacon")
        await until(status_is(call, "ended"))
        await stop(w, task)

    run(scenario)
    call.refresh_from_db()
    assert call.end_reason == "beacon"
    assert len(realtime_server.fake.requests_to(f"/realtime/calls/{call.call_id}/hangup")) == 1


def test_max_duration_warns_then_hangs_up_on_the_clock(
    hub: FakeSidebands, make_preset: Callable[..., SessionPreset], realtime_server: Any
) -> None:
    preset = make_preset(
        "short",
        max_duration_seconds=60,
        max_duration_warning="Say goodbye.",
        greeting="Greet the caller.",
    )
    call = record(hub, preset)
    clock = ManualClock(start=call.created_at.timestamp())

    async def scenario() -> None:
        w = worker(hub, clock=clock)
        task = await running(w)
        await until(status_is(call, "active"))
        await until(lambda: clock.sleepers > 0)
        await clock.advance(44)
        assert (await row(call)()).status == "active"
        await clock.advance(1)  # 15 s before the end: the warning
        await until(lambda: len(hub.sent(call.call_id)) >= 2)
        # Move the clock only while the controller sleeps on it (its plan is made).
        await until(call.events.filter(kind="warning").aexists)
        await until(lambda: clock.sleepers > 0)
        await clock.advance(14)
        assert (await row(call)()).status == "active"
        await until(lambda: clock.sleepers > 0)
        await clock.advance(1)
        await until(status_is(call, "ended"))
        await stop(w, task)

    run(scenario)
    call.refresh_from_db()
    assert call.end_reason == "max_duration"
    assert [e["response"]["instructions"] for e in hub.sent(call.call_id)] == [
        "Greet the caller.",
        "Say goodbye.",
    ]
    assert list(call.events.values_list("kind", flat=True)) == ["attached", "warning"]


def test_config_lock_hangup_records_the_violation(
    hub: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    sent_signals: list[Any],
    realtime_server: Any,
) -> None:
    call = record(hub, make_preset("locked", instructions="Be kind.", config_lock="hangup"))

    async def scenario() -> None:
        w = worker(hub)
        task = await running(w)
        await until(status_is(call, "active"))
        await play(hub, call, script.tamper(instructions="Be rude."))
        await until(status_is(call, "ended"))
        await stop(w, task)

    run(scenario)
    call.refresh_from_db()
    assert call.end_reason == "config_violation"
    event = call.events.get(kind="config_violation")
    assert event.data == {"fields": ["instructions"], "action": "hangup"}
    assert [(n, k["fields"], k["action"]) for n, k in sent_signals if n == "violation"] == [
        ("violation", ["instructions"], "hangup")
    ]


def test_a_dropped_sideband_is_redialled_without_ending_the_call(
    hub: FakeSidebands, make_preset: Callable[..., SessionPreset], realtime_server: Any
) -> None:
    call = record(hub, make_preset("assistant"))

    async def scenario() -> None:
        w = worker(hub)
        task = await running(w)
        await until(status_is(call, "active"))
        await play(
            hub,
            call,
            script.drop_sideband(1001),
            script.wait_sideband(),
            script.turn(usage=script.usage(audio_out=10)),
        )
        await until(
            lambda: RealtimeCall.objects.filter(pk=call.pk, output_audio_tokens=10).aexists()
        )
        assert (await row(call)()).status == "active"
        await play(hub, call, script.hangup())
        await until(status_is(call, "ended"))
        await stop(w, task)

    run(scenario)
    call.refresh_from_db()
    assert (call.end_reason, call.output_audio_tokens) == ("peer", 10)
    assert len(hub.sent_by_each(call.call_id)) == 2  # attached twice: the re-dial


def test_two_workers_attach_each_call_once_and_stop_hands_over(
    hub: FakeSidebands, make_preset: Callable[..., SessionPreset], realtime_server: Any
) -> None:
    preset = make_preset("assistant", greeting="Hello!")
    made = [record(hub, preset) for _ in range(6)]

    async def scenario() -> None:
        first, second = worker(hub, "w1", max_calls=4), worker(hub, "w2", max_calls=4)
        t1, t2 = await running(first), await running(second)
        await until(lambda: len(first.tasks) + len(second.tasks) == 6)
        assert 2 <= len(first.tasks) <= 4
        assert 2 <= len(second.tasks) <= 4
        # A task exists before its sideband is open: wait for every attach, then count.
        await until(lambda: all(hub.attached(call.call_id) for call in made))
        for call in made:
            assert hub.attached(call.call_id) == 1
        await until(lambda: all(hub.sent(call.call_id) for call in made))  # greeted
        moved = set(first.tasks)
        second.max_calls = 6
        await stop(first, t1)
        await until(lambda: len(second.tasks) == 6)
        # As above, a task exists before its sideband opens: wait for the second socket.
        await until(lambda: all(hub.attached(call_id) == 1 for call_id in moved))
        await until(lambda: all(len(hub.sent_by_each(call_id)) == 2 for call_id in moved))
        for call in made:  # handed over: the moved calls attached again, the rest once
            assert len(hub.sent_by_each(call.call_id)) == (2 if call.call_id in moved else 1)
        await stop(second, t2)

    run(scenario)
    for call in made:
        call.refresh_from_db()
        assert (call.status, call.lease_owner) == ("active", "")  # live, given up by both
        # Greeted once, by the first worker to attach; the re-attach stays quiet.
        assert hub.sent_types(call.call_id) == ["response.create"]
