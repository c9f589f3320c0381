"""``manage.py realtime_worker``: it follows the calls nobody holds, and SIGTERM (or
SIGINT) stops it at once, giving its calls back for another worker to claim.

The command runs in the test's own (main) thread, as it would under a process
manager; the signal comes from ``call_started``, i.e. once the worker really follows
the call, so nothing waits on the clock. The worker's database thread is another
thread, hence ``transaction=True`` (the test database is shared-cache SQLite).
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command

from django_realtime import calls, payloads, signals
from django_realtime.control.worker import default_name
from django_realtime.models import RealtimeCall, SessionPreset
from django_realtime.testing.sideband import FakeSidebands

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def signal_on_start() -> Iterator[Callable[[int], list[str]]]:
    """``arm(signum)``: once a worker starts following a call, this process gets
    ``signum``; returns the call ids started. A watchdog sends SIGINT after 30 s so a
    broken worker fails the test instead of hanging it."""
    started: list[str] = []
    watchdog = threading.Timer(30, os.kill, (os.getpid(), signal.SIGINT))

    def arm(signum: int) -> list[str]:
        def receiver(sender: Any, call: RealtimeCall, **kwargs: Any) -> None:
            started.append(call.call_id)
            os.kill(os.getpid(), signum)

        signals.call_started.connect(receiver, weak=False, dispatch_uid="test-worker-command")
        watchdog.start()
        return started

    yield arm
    watchdog.cancel()
    signals.call_started.disconnect(dispatch_uid="test-worker-command")


def live_call(hub: FakeSidebands, preset: SessionPreset) -> RealtimeCall:
    session = payloads.build_session(preset)
    virtual = hub.virtual_call(session)
    call = calls.record_relay_call(virtual.id, user=None, preset=preset, session=session)
    assert call is not None
    return call


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_follows_a_call_and_a_signal_gives_it_back(
    realtime_sidebands: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    signal_on_start: Callable[[int], list[str]],
    signum: int,
) -> None:
    call = live_call(realtime_sidebands, make_preset("assistant", greeting="Hello!"))
    started = signal_on_start(signum)
    out = io.StringIO()

    call_command("realtime_worker", "--name", "w-cmd", "--max-calls", "3", stdout=out)

    assert started == [call.call_id]
    assert out.getvalue().splitlines() == [
        "realtime_worker w-cmd: up to 3 calls",
        "realtime_worker w-cmd: stopped",
    ]
    call.refresh_from_db()
    assert call.attached_at is not None
    # Given back at once: no owner, no lease to wait out, still live for the next worker.
    assert (call.lease_owner, call.lease_expires_at) == ("", None)
    assert call.status in ("active", "pending")
    assert call.end_reason == ""


def test_the_command_defaults_to_the_host_name_and_the_settings_limit(
    realtime_sidebands: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    signal_on_start: Callable[[int], list[str]],
    settings: Any,
) -> None:
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "CONTROL_MAX_CALLS_PER_WORKER": 7}
    call = live_call(realtime_sidebands, make_preset("assistant"))
    signal_on_start(signal.SIGTERM)
    out = io.StringIO()

    call_command("realtime_worker", stdout=out)

    name = default_name()
    assert out.getvalue().splitlines() == [
        f"realtime_worker {name}: up to 7 calls",
        f"realtime_worker {name}: stopped",
    ]
    call.refresh_from_db()
    assert call.attached_at is not None
    assert call.lease_owner == ""


def test_a_signal_while_the_call_is_marked_active_still_closes_its_sideband(
    realtime_sidebands: FakeSidebands,
    make_preset: Callable[..., SessionPreset],
    signal_on_start: Callable[[int], list[str]],
) -> None:
    """The stop lands while the worker's database thread is still inside ``mark_active``
    (``call_started`` is sent from there): the cancelled controller must still close
    its open sideband, or the socket is left to the garbage collector."""
    call = live_call(realtime_sidebands, make_preset("assistant"))
    signal_on_start(signal.SIGTERM)
    closed_meanwhile: list[bool] = []

    def hold_the_database_thread(sender: Any, call: RealtimeCall, **kwargs: Any) -> None:
        # Runs after the SIGTERM receiver: keep mark_active from returning until the
        # server has seen the socket go (or 10 s have passed: the bug).
        deadline = time.monotonic() + 10
        while realtime_sidebands.attached(call.call_id) and time.monotonic() < deadline:
            time.sleep(0.01)
        closed_meanwhile.append(realtime_sidebands.attached(call.call_id) == 0)

    signals.call_started.connect(hold_the_database_thread, weak=False, dispatch_uid="test-hold")
    try:
        call_command("realtime_worker", "--name", "w-hold", stdout=io.StringIO())
    finally:
        signals.call_started.disconnect(dispatch_uid="test-hold")

    assert closed_meanwhile == [True]
    call.refresh_from_db()
    assert (call.lease_owner, call.end_reason) == ("", "")
