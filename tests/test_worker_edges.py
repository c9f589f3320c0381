"""The worker's less travelled paths: a call whose sideband cannot be opened waits
as ``unattached`` for a later try, a lease taken over by another worker makes this one
let go, :meth:`Worker.wake` polls at once, and a call whose preset was deleted is
metered with the API's limit only.

As in ``test_worker``, scenarios run under ``async_to_sync`` (the worker's database
thread is the test's own), and every wait is on a row or a counter, not the clock.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone

from django_realtime import calls, payloads
from django_realtime.control import worker as worker_module
from django_realtime.control.sideband import Sideband
from django_realtime.control.worker import UNATTACHED_RETRY_SECONDS, Worker, leash_for
from django_realtime.exceptions import SidebandError
from django_realtime.models import CallEvent, RealtimeCall, SessionPreset
from django_realtime.testing.sideband import FakeSidebands
from django_realtime.testing.sideband_memory import MemoryConnector
from tests.waits import until

pytestmark = pytest.mark.django_db


def record(hub: FakeSidebands, preset: SessionPreset) -> RealtimeCall:
    session = payloads.build_session(preset)
    call = calls.record_relay_call(
        hub.virtual_call(session).id, user=None, preset=preset, session=session
    )
    assert call is not None
    return call


def fetch(call: RealtimeCall) -> Callable[[], Any]:
    return sync_to_async(lambda: RealtimeCall.objects.get(pk=call.pk))


def test_a_sideband_that_cannot_be_opened_leaves_the_call_unattached_for_later(
    realtime_sidebands: FakeSidebands, preset: SessionPreset, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = record(realtime_sidebands, preset)
    dialled: list[str] = []
    backoffs: list[float] = []

    async def no_sleep(seconds: float) -> None:
        backoffs.append(seconds)

    # One redial; the backoffs are recorded instead of slept.
    monkeypatch.setattr(
        worker_module, "Sideband", functools.partial(Sideband, max_redials=1, sleep=no_sleep)
    )

    async def refuse(url: str, headers: dict[str, str]) -> Any:
        dialled.append(url)
        raise SidebandError("the sideband refused the connection")

    async def scenario() -> None:
        w = Worker("w1", connector=refuse, poll_seconds=0.02)
        task = asyncio.ensure_future(w.run())

        async def unattached() -> bool:
            return (await fetch(call)()).status == "unattached"

        await until(unattached)
        w.stop()
        await asyncio.wait_for(task, 10)
        assert (w.claimed, w.tasks, w.controllers) == (1, {}, {})

    started = time.time()
    async_to_sync(scenario)()
    # One backoff after each failed dial, none slept.
    assert len(backoffs) == len(dialled) >= 2
    assert all(call.call_id in url for url in dialled)
    call.refresh_from_db()
    assert (call.status, call.lease_owner, call.end_reason) == ("unattached", "", "")
    # Nobody claims it again before the retry delay is over.
    assert call.lease_expires_at is not None
    assert call.lease_expires_at.timestamp() >= started + UNATTACHED_RETRY_SECONDS - 1
    errors = list(CallEvent.objects.filter(call=call, kind="error").values_list("data", flat=True))
    assert len(errors) == 1
    assert errors[0]["message"]


def test_a_worker_whose_lease_was_taken_over_lets_the_call_go(
    realtime_sidebands: FakeSidebands, preset: SessionPreset
) -> None:
    call = record(realtime_sidebands, preset)

    async def scenario() -> None:
        # A short lease: the heartbeat (every third of a lease) comes round quickly.
        w = Worker(
            "w1",
            connector=MemoryConnector(realtime_sidebands.fake),
            poll_seconds=0.02,
            lease_seconds=1.5,
        )
        task = asyncio.ensure_future(w.run())

        async def active() -> bool:
            return (await fetch(call)()).status == "active"

        await until(active)
        # Another worker holds the call now (say this one stalled past its lease).
        # It holds a fresh lease, so this worker cannot claim the call back either.
        await sync_to_async(
            lambda: RealtimeCall.objects.filter(pk=call.pk).update(
                lease_owner="w2", lease_expires_at=timezone.now() + timedelta(hours=1)
            )
        )()
        await until(lambda: w.lost == 1 and not w.tasks)
        assert w.controllers == {}
        w.stop()
        await asyncio.wait_for(task, 10)

    async_to_sync(scenario)()
    call.refresh_from_db()
    # The new owner keeps it; the call goes on (no hang-up, no end).
    assert (call.lease_owner, call.status, call.end_reason) == ("w2", "active", "")


def test_wake_polls_at_once_instead_of_waiting_for_the_next_poll(
    realtime_sidebands: FakeSidebands, make_preset: Callable[..., SessionPreset]
) -> None:
    preset = make_preset("assistant")
    first = record(realtime_sidebands, preset)

    async def scenario() -> None:
        w = Worker("w1", connector=MemoryConnector(realtime_sidebands.fake), poll_seconds=600)
        w.wake()  # before run(): nothing to wake, no error
        task = asyncio.ensure_future(w.run())
        await until(lambda: w.claimed == 1)
        second = await sync_to_async(record)(realtime_sidebands, preset)
        w.wake()  # a NOTIFY arrived
        await until(lambda: w.claimed == 2, timeout=5)  # far less than the 600 s poll
        assert set(w.tasks) == {first.call_id, second.call_id}
        w.stop()
        await asyncio.wait_for(task, 10)

    async_to_sync(scenario)()
    assert RealtimeCall.objects.filter(lease_owner="").count() == 2


def test_a_call_whose_preset_was_deleted_is_metered_with_the_api_limit_only(
    realtime_sidebands: FakeSidebands, make_preset: Callable[..., SessionPreset]
) -> None:
    preset = make_preset(
        "strict", max_duration_seconds=60, idle_timeout_seconds=30, config_lock="revert"
    )
    call = record(realtime_sidebands, preset)
    preset.delete()
    call = RealtimeCall.objects.get(pk=call.pk)
    assert call.preset is None
    leash = leash_for(call)
    assert leash.session == call.session
    assert leash.started_at == call.created_at.timestamp()
    assert (leash.max_duration_seconds, leash.idle_timeout_seconds) == (None, None)
    assert (leash.config_lock, leash.greeting, leash.store_transcripts) == ("off", "", False)
