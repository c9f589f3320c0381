"""A sideband is closed however its owner stops: a controller cancelled right after it
attached (the worker stopping just as it follows a call), or ``close()`` while a dial
is under way. Each time the fake's server side must see the socket go, and no socket
is left open for the garbage collector (that was an unraisable ``ResourceWarning``
in whatever test ran next)."""

from __future__ import annotations

import asyncio

import pytest

from django_realtime.control.controller import CallController, Leash
from django_realtime.control.pricing import Metered
from django_realtime.control.sideband import Connection, Sideband, WebsocketsConnector
from django_realtime.exceptions import SidebandClosed
from django_realtime.testing.sideband import FakeSidebands
from tests.waits import until

pytestmark = pytest.mark.anyio

SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}


class GatedStore:
    """A CallStore whose ``mark_active`` waits until the test lets it go (it never does
    here: the worker's database thread is still busy when the stop arrives)."""

    def __init__(self) -> None:
        self.marking = asyncio.Event()
        self.release = asyncio.Event()
        self.ended: list[str] = []

    async def mark_active(self) -> None:
        self.marking.set()
        await self.release.wait()

    async def add_usage(self, metered: Metered) -> None:
        raise AssertionError("no usage in these tests")

    async def record_event(self, kind: str, data: dict[str, object]) -> None:
        raise AssertionError(f"unexpected event {kind}")

    async def mark_ended(self, reason: str) -> None:
        self.ended.append(reason)


async def test_a_controller_cancelled_while_it_marks_the_call_active_closes_its_sideband(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call(SESSION)
    store = GatedStore()
    controller = CallController(call.id, Leash(session=SESSION), store)
    task = asyncio.ensure_future(controller.run())
    await asyncio.wait_for(store.marking.wait(), 10)
    # The client's handshake may finish before the server's thread records the peer.
    await until(lambda: realtime_sidebands.attached(call.id) == 1)

    task.cancel()  # what Worker.shutdown does on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await task

    assert controller.sideband.closed
    await until(lambda: realtime_sidebands.attached(call.id) == 0)  # the server saw it go
    assert store.ended == []  # given up, not ended: the call goes on with another worker


async def test_close_during_a_dial_closes_the_socket_that_dial_opens(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call(SESSION)
    opened: list[Connection] = []
    dialled, gate = asyncio.Event(), asyncio.Event()
    real = WebsocketsConnector()

    async def slow_connector(url: str, headers: dict[str, str]) -> Connection:
        conn = await real(url, headers)
        opened.append(conn)
        dialled.set()
        await gate.wait()  # the handshake is done, the dial has not returned yet
        return conn

    sideband = Sideband(call.id, connector=slow_connector)
    connecting = asyncio.ensure_future(sideband.connect())
    await asyncio.wait_for(dialled.wait(), 10)
    await sideband.close()
    gate.set()

    with pytest.raises(SidebandClosed):
        await asyncio.wait_for(connecting, 10)
    await until(lambda: realtime_sidebands.attached(call.id) == 0)
    assert [getattr(conn, "close_code", None) for conn in opened] == [1000]
    assert sideband.connections == 0
