"""The fake as an httpx transport, sync and async, for ``client.set_transport``.

No sockets: requests go straight to :meth:`FakeCore.handle`. The async side
runs it in a worker thread (``anyio.to_thread``) because the core blocks (latency,
waiting for the WebRTC answer from the peers' own loop), and blocking the caller's
event loop would stall the test that awaits it.
"""

from __future__ import annotations

import anyio.to_thread
import httpx

from .errors import SimulatedTimeout
from .wire import FakeCore, FakeRequest, FakeResponse


class FakeTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Routes every request of an ``httpx.Client`` / ``httpx.AsyncClient`` to a fake."""

    def __init__(self, fake: FakeCore) -> None:
        self.fake = fake

    @staticmethod
    def _to_fake(request: httpx.Request) -> FakeRequest:
        return FakeRequest(
            method=request.method,
            path=request.url.path,
            headers={
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw
            },
            body=request.content,
        )

    @staticmethod
    def _to_httpx(response: FakeResponse, request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            response.status, headers=response.headers, content=response.body, request=request
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Sync entry point (``httpx.Client``)."""
        request.read()
        try:
            response = self.fake.handle(self._to_fake(request))
        except SimulatedTimeout as err:
            raise httpx.ReadTimeout(str(err), request=request) from err
        return self._to_httpx(response, request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Async entry point (``httpx.AsyncClient``)."""
        await request.aread()
        fake_request = self._to_fake(request)
        try:
            response = await anyio.to_thread.run_sync(self.fake.handle, fake_request)
        except SimulatedTimeout as err:
            raise httpx.ReadTimeout(str(err), request=request) from err
        return self._to_httpx(response, request)

    def close(self) -> None:
        """No-op: closing an httpx client must not shut the shared fake down."""

    async def aclose(self) -> None:
        """No-op, as :meth:`close`."""
