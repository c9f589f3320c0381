"""``control.wakeup.listen`` on real PostgreSQL, in this process: each NOTIFY on the
channel wakes the worker, and a listening connection the server kills is re-opened
(``on_listening`` again: the worker polls once for what it missed) and hears the next
NOTIFY. Only the address changes: the parameters point at the test's own cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from django_realtime.control import wakeup
from tests.scaleout.test_two_processes import postgres

pytestmark = pytest.mark.scaleout

__all__ = ["postgres"]  # the fixture, shared with the sites' test


def _params(port: int) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": port, "user": "postgres", "dbname": "postgres"}


def test_notifies_wake_and_a_killed_connection_is_reopened(
    postgres: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wakeup, "connection_params", lambda alias="default": _params(postgres))
    monkeypatch.setattr(wakeup, "RECONNECT_INITIAL", 0.01)

    async def scenario() -> tuple[int, int]:
        woken = asyncio.Queue[None]()
        listening = asyncio.Queue[None]()
        task = asyncio.create_task(
            wakeup.listen(
                lambda: woken.put_nowait(None), on_listening=lambda: listening.put_nowait(None)
            )
        )
        sender = await psycopg.AsyncConnection.connect(**_params(postgres), autocommit=True)
        try:
            await asyncio.wait_for(listening.get(), 10)
            await sender.execute(f"NOTIFY {wakeup.NOTIFY_CHANNEL}")
            await asyncio.wait_for(woken.get(), 10)
            await sender.execute("NOTIFY some_other_channel")  # not ours: no wake
            # The server ends the listening backend: listen() re-opens it by itself.
            cursor = await sender.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE query = 'LISTEN {wakeup.NOTIFY_CHANNEL}'"
            )
            assert [row[0] for row in await cursor.fetchall()] == [True]
            await asyncio.wait_for(listening.get(), 10)
            await sender.execute(f"NOTIFY {wakeup.NOTIFY_CHANNEL}")
            await asyncio.wait_for(woken.get(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sender.close()
        return woken.qsize(), listening.qsize()

    assert asyncio.run(scenario()) == (0, 0)  # one wake per NOTIFY of ours, nothing more


def test_sqlite_polls_and_django_only_parameters_are_dropped() -> None:
    assert wakeup.can_listen() is False  # the test database is SQLite: the worker polls
    params = wakeup.connection_params()
    assert not set(params) & wakeup._DJANGO_ONLY
