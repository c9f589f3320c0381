"""The pooled httpx clients (one sync per process, one async per event loop) and the
test seam, :func:`set_transport`."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator

import httpx

__all__ = ["get_async_client", "get_client", "reset", "set_transport", "sync_client"]

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
#: The async client serves every request in flight on its loop (hundreds under ASGI)
#: without queueing, and keeps them alive for the next burst.
ASYNC_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=200)

_lock = threading.Lock()
_sync_client: httpx.Client | None = None
# One AsyncClient per event loop: its pooled connections belong to the loop that
# opened them (a site under ASGI has one loop; tests and async_to_sync make more).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
#: Each loop's :func:`_closed_with_loop` guards, one per client it had (the loop
#: itself keeps only a weak reference to them); they go when the loop shuts down.
_guards: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[AsyncGenerator[None, None]]] = (
    weakref.WeakKeyDictionary()
)
_transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
#: Requests in flight on each sync client (:func:`sync_client`), and the clients
#: :func:`reset` retired while requests were in flight: the last one out closes it.
_in_flight: dict[httpx.Client, int] = {}
_retired: set[httpx.Client] = set()


def set_transport(transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None) -> None:
    """Route every request through ``transport`` (``None`` restores the network).

    The transport must implement the sync interface, the async one or both; the
    client of the other kind is then unusable until the transport is reset.
    """
    global _transport
    with _lock:
        _transport = transport
    reset()


def reset() -> None:
    """Close the pooled clients; the next call creates fresh ones.

    An ``AsyncClient``'s connections belong to the loop that opened them, so each is
    closed there (:func:`_close_async`), never left to the garbage collector.
    """
    global _sync_client
    with _lock:
        old_sync, _sync_client = _sync_client, None
        if old_sync is not None and _in_flight.get(old_sync):
            # Closing now would cut the requests in flight (and a connection its pool
            # had assigned but not yet opened would open after the close, outside the
            # pool: a leaked socket). The last of them closes it (sync_client).
            _retired.add(old_sync)
            old_sync = None
        old_async = list(_async_clients.items())
        _async_clients.clear()
    if old_sync is not None:
        old_sync.close()
    for loop, async_client in old_async:
        _close_async(loop, async_client)


#: Close tasks scheduled on the running loop, kept so they are not collected mid-way.
_closing: set[asyncio.Task[None]] = set()


def _close_async(loop: asyncio.AbstractEventLoop, async_client: httpx.AsyncClient) -> None:
    """Close ``async_client`` on its own ``loop``, whatever state that loop is in.

    * the loop running in this thread (``reset()`` called from a coroutine): a task
      on it, done at the caller's next ``await``;
    * a loop running in another thread: handed to it, thread-safely;
    * a loop that is not running and not closed: run to completion on it here;
    * a closed loop: its sockets' transports can no longer run a callback, so the
      client is closed on a private loop in a worker thread (safe whether or not this
      thread runs a loop). httpx marks the client closed before closing the pool; a
      dead-loop transport's ``close()`` raising ``RuntimeError`` is expected there,
      and the kernel socket is released with its transport object.
    """
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if loop is running:
        task = loop.create_task(async_client.aclose())
        _closing.add(task)
        task.add_done_callback(_closing.discard)
    elif loop.is_running():
        asyncio.run_coroutine_threadsafe(async_client.aclose(), loop)
    elif not loop.is_closed():
        loop.run_until_complete(async_client.aclose())
    else:
        worker = threading.Thread(target=_close_orphan, args=(async_client,), daemon=True)
        worker.start()
        worker.join()


def _close_orphan(async_client: httpx.AsyncClient) -> None:
    with contextlib.suppress(RuntimeError):
        asyncio.run(async_client.aclose())


def get_client() -> httpx.Client:
    """The pooled sync client. A caller that sends requests uses :func:`sync_client`,
    so that a :func:`reset` meanwhile waits for its requests before closing it."""
    with _lock:
        return _current_sync_client()


def _current_sync_client() -> httpx.Client:
    global _sync_client
    if _sync_client is None:
        transport = _transport if isinstance(_transport, httpx.BaseTransport) else None
        _sync_client = httpx.Client(
            transport=transport,
            limits=LIMITS,
            follow_redirects=False,
        )
    return _sync_client


@contextlib.contextmanager
def sync_client() -> Iterator[httpx.Client]:
    """The pooled sync client, counted in flight until the block ends.

    Read each response whole inside the block: a client :func:`reset` retired is
    closed when its last block ends.
    """
    with _lock:
        client = _current_sync_client()
        _in_flight[client] = _in_flight.get(client, 0) + 1
    try:
        yield client
    finally:
        with _lock:
            left = _in_flight[client] - 1
            if left:
                _in_flight[client] = left
                close = False
            else:
                del _in_flight[client]
                close = client in _retired
                _retired.discard(client)
        if close:
            client.close()


def _async_client_class() -> type[httpx.AsyncClient]:
    """httpx's API over aiohttp when the ``asgi`` extra (``httpx-aiohttp``) is installed.

    httpcore's async pool slows down as it grows (measured: 42 mints/s at 200
    concurrent requests where the aiohttp transport served 584/s); the client is
    an ``httpx.AsyncClient`` either way, so responses, errors and ``set_transport``
    are the same. Its aiohttp session belongs to the loop that opened it, like the
    client itself (one per loop, below).
    """
    try:
        from httpx_aiohttp import HttpxAiohttpClient
    except ImportError:
        return httpx.AsyncClient
    return HttpxAiohttpClient


def get_async_client() -> httpx.AsyncClient:
    """The pooled AsyncClient of the running event loop (call from a coroutine).

    It is closed on that loop when the loop shuts down (:func:`_closed_with_loop`).
    """
    loop = asyncio.get_running_loop()
    with _lock:
        async_client = _async_clients.get(loop)
        if async_client is None:
            transport = _transport if isinstance(_transport, httpx.AsyncBaseTransport) else None
            async_client = _async_client_class()(
                transport=transport,
                limits=ASYNC_LIMITS,
                follow_redirects=False,
            )
            _async_clients[loop] = async_client
            _guard(loop, async_client)
        return async_client


async def _closed_with_loop(
    loop: asyncio.AbstractEventLoop, async_client: httpx.AsyncClient
) -> AsyncGenerator[None, None]:
    """Suspended until ``loop`` shuts down, then closes ``async_client`` there.

    ``asyncio.run``, ``asyncio.Runner``, asgiref's ``async_to_sync`` and anyio end a
    loop with ``loop.shutdown_asyncgens()``, which closes every async generator the
    loop started, while the loop still runs: this one's ``finally`` closes the client
    and its sockets cleanly, so a short-lived loop leaves nothing to the garbage
    collector (``ResourceWarning: unclosed transport``).
    """
    try:
        yield
    finally:
        with _lock:
            if _async_clients.get(loop) is async_client:
                del _async_clients[loop]
            _guards.pop(loop, None)
        await async_client.aclose()  # a no-op when reset() closed it already


def _guard(loop: asyncio.AbstractEventLoop, async_client: httpx.AsyncClient) -> None:
    guard = _closed_with_loop(loop, async_client)
    # The first step registers the generator with the running loop (its asyncgen
    # hooks) and runs it to its ``yield``, synchronously: it awaits nothing before.
    with contextlib.suppress(StopIteration):
        guard.__anext__().send(None)
    _guards.setdefault(loop, []).append(guard)
