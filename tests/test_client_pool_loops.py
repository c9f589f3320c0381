"""A short-lived event loop's pooled AsyncClient is closed on that loop when the loop
shuts down: whichever runner ends it (``asyncio.run``, asgiref's ``async_to_sync``), and
also a client ``reset()`` replaced mid-loop. Nothing is left for the garbage collector
(whose ``ResourceWarning`` the suite treats as an error)."""

from __future__ import annotations

import asyncio

import httpx
from asgiref.sync import async_to_sync

from django_realtime import client
from django_realtime.client import pool


async def open_client() -> httpx.AsyncClient:
    async_client = client.get_async_client()
    assert client.get_async_client() is async_client  # one per loop
    assert not async_client.is_closed
    return async_client


def test_asyncio_run_closes_the_loops_client_and_forgets_it() -> None:
    async def scenario() -> tuple[httpx.AsyncClient, asyncio.AbstractEventLoop]:
        return await open_client(), asyncio.get_running_loop()

    async_client, loop = asyncio.run(scenario())
    assert async_client.is_closed
    # (Other loops, such as a test server's, may hold clients of their own.)
    assert loop not in pool._async_clients
    assert loop not in pool._guards


def test_async_to_sync_closes_the_loops_client() -> None:
    async_client = async_to_sync(open_client)()
    assert async_client.is_closed


def test_a_client_replaced_by_reset_and_its_successor_are_both_closed() -> None:
    async def scenario() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        first = await open_client()
        client.reset()  # closes it on this loop, at the next await
        await asyncio.sleep(0)
        second = await open_client()
        assert second is not first
        return first, second

    first, second = asyncio.run(scenario())
    assert first.is_closed
    assert second.is_closed


def test_each_loop_gets_its_own_client() -> None:
    clients = [asyncio.run(open_client()) for _ in range(3)]
    assert len({id(c) for c in clients}) == 3
    assert all(c.is_closed for c in clients)
