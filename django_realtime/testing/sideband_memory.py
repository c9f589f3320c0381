"""An in-memory :data:`~django_realtime.control.sideband.Connector` to a fake's sideband.

The same handler as over the network (:func:`.sideband_server.serve_sideband`), run
as a task on the caller's loop, with queues for a socket: no port, no HTTP, no
threads. For controller tests and benchmarks holding many calls::

    sideband = Sideband(call.id, connector=MemoryConnector(fake))

The key check, refusals (as ``CallNotFound`` / ``UpstreamAuthenticationError``),
``session.created``, mirroring, drops and ends behave as over a real WebSocket; what
it cannot show is the network itself (TLS, pings, proxies, partial writes).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from ..control.sideband import refusal_error
from .sideband import sidebands_of
from .sideband_server import serve_sideband

if TYPE_CHECKING:
    from .wire import FakeCore


class MemoryConnection:
    """One side of an in-memory WebSocket (the ``Connection`` protocol)."""

    def __init__(
        self, to_app: asyncio.Queue[Any], from_app: asyncio.Queue[Any], task: asyncio.Task[None]
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self._task = task
        self._closed: ConnectionClosed | None = None

    async def recv(self) -> str:
        if self._closed is not None:
            raise self._closed
        message = await self._from_app.get()
        if message["type"] == "websocket.send":
            return str(message.get("text") or message.get("bytes", b"").decode())
        self._closed = ConnectionClosed(
            Close(int(message.get("code", 1000)), str(message.get("reason", ""))), None
        )
        raise self._closed

    async def send(self, message: str) -> None:
        if self._closed is not None or self._task.done():
            raise self._closed or ConnectionClosed(None, None)
        await self._to_app.put({"type": "websocket.receive", "text": message})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self._closed is None:
            # Wake a pending recv() as a real socket would: it raises ConnectionClosed.
            await self._from_app.put({"type": "websocket.close", "code": code, "reason": reason})
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
        await asyncio.gather(self._task, return_exceptions=True)


class MemoryConnector:
    """``await MemoryConnector(fake)(url, headers)``: a :class:`MemoryConnection`."""

    def __init__(self, fake: FakeCore) -> None:
        self.hub = sidebands_of(fake)

    async def __call__(self, url: str, headers: dict[str, str]) -> MemoryConnection:
        parts = urlsplit(url)
        scope = {
            "type": "websocket",
            "path": parts.path,
            "query_string": parts.query.encode("latin-1"),
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
            ],
        }
        to_app: asyncio.Queue[Any] = asyncio.Queue()
        from_app: asyncio.Queue[Any] = asyncio.Queue()
        await to_app.put({"type": "websocket.connect"})

        async def send(message: dict[str, Any]) -> None:
            await from_app.put(message)

        task = asyncio.ensure_future(serve_sideband(self.hub, scope, to_app.get, send))
        first = await from_app.get()
        if first["type"] == "websocket.accept":
            return MemoryConnection(to_app, from_app, task)
        body = (await from_app.get()).get("body", b"")
        await asyncio.gather(task, return_exceptions=True)
        headers_out = dict(first.get("headers", []))
        request_id = headers_out.get(b"x-request-id", b"").decode() or None
        raise refusal_error(int(first["status"]), body, request_id)
