"""The fake as a raw ASGI app: the API under ``/v1`` with CORS, plus a small control API.

CORS matters because a browser page (say ``http://127.0.0.1:8000``) posts its SDP
offer straight to the API's origin, exactly as it would to ``api.openai.com``; the
preflight is answered for any origin, and ``Location`` / ``x-request-id`` are exposed
so the page can read the call id and log the request id.

Control API (for a fake running in another process, e.g. the CLI), JSON in and out:

- ``GET  /_fake/stats``                 every call's stats, the request log
- ``POST /_fake/reset``                 hang up, forget everything
- ``POST /_fake/latency``               ``{"seconds": 0.5}``
- ``POST /_fake/faults``                ``{"path", "status", "json", "headers", "times",
  "method", "timeout"}`` (as :meth:`FakeCore.add_fault`)
- ``POST /_fake/calls/{id}/drop``       close a live call's peer connection
- ``POST /_fake/sip_calls``             ``{"call_id"?: "rtc_..."}`` register a pending SIP call
- ``POST /_fake/virtual_calls``, ``POST /_fake/calls/{id}/script``, ``GET
  /_fake/calls/{id}/sideband``: see :func:`.sideband.sideband_control`
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from .errors import APIError, SimulatedTimeout
from .sideband import sidebands_of
from .sideband_server import serve_sideband, sideband_control
from .wire import FakeCore, FakeRequest, FakeResponse, new_id

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API_PREFIX = "/v1"
CONTROL_PREFIX = "/_fake"
EXPOSED_HEADERS = "Location, x-request-id, Retry-After"
DEFAULT_ALLOWED_HEADERS = (
    "authorization, content-type, api-key, openai-organization, openai-project"
)
_DROP_RE = re.compile(r"/_fake/calls/([^/]+)/drop\Z")


class FakeRealtimeASGI:
    """ASGI callable serving a :class:`FakeCore`."""

    def __init__(self, fake: FakeCore) -> None:
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "websocket":  # the sideband (testing/sideband.py)
            await serve_sideband(sidebands_of(self.fake), scope, receive, send)
            return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        cors = self._cors_headers(headers)
        method, path = scope["method"], scope["path"]
        if method == "OPTIONS":
            requested = headers.get("access-control-request-headers", DEFAULT_ALLOWED_HEADERS)
            await self._send(
                send,
                FakeResponse(
                    204,
                    [
                        ("access-control-allow-methods", "GET, POST, OPTIONS"),
                        ("access-control-allow-headers", requested),
                        ("access-control-max-age", "600"),
                    ],
                ),
                cors,
            )
            return
        body = await self._read_body(receive)
        if path.startswith(CONTROL_PREFIX + "/"):
            response = await self._control(method, path, body)
        elif path.startswith(API_PREFIX + "/"):
            request = FakeRequest(method=method, path=path, headers=headers, body=body)
            try:
                # The core blocks (latency, the WebRTC answer): keep uvicorn's loop free.
                response = await anyio.to_thread.run_sync(self.fake.handle, request)
            except SimulatedTimeout as err:
                if await self._hold(receive, err.seconds):
                    return  # the client gave up, as a real client's timeout would
                response = _error(504, "Simulated upstream timeout (fake).", "timeout")
        else:
            response = _error(404, f"Invalid URL ({method} {path})", None)
        await self._send(send, response, cors)

    # --- plumbing ------------------------------------------------------------------------

    @staticmethod
    def _cors_headers(headers: dict[str, str]) -> list[tuple[str, str]]:
        origin = headers.get("origin")
        if not origin:
            return []
        return [
            ("access-control-allow-origin", origin),
            ("access-control-expose-headers", EXPOSED_HEADERS),
            ("vary", "Origin"),
        ]

    @staticmethod
    async def _read_body(receive: Receive) -> bytes:
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    async def _hold(receive: Receive, seconds: float) -> bool:
        """Wait ``seconds`` or until the client disconnects (``True`` if it did)."""
        with anyio.move_on_after(seconds):
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return True
        return False

    @staticmethod
    async def _send(send: Send, response: FakeResponse, cors: list[tuple[str, str]]) -> None:
        headers = [*response.headers, *cors]
        if not any(k.lower() == "x-request-id" for k, _ in headers):
            headers.append(("x-request-id", new_id("req")))  # every response has one
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers.append(("content-length", str(len(response.body))))
        await send(
            {
                "type": "http.response.start",
                "status": response.status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await anyio.to_thread.run_sync(self.fake.hangup_all)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # --- control API ----------------------------------------------------------------------

    async def _control(self, method: str, path: str, body: bytes) -> FakeResponse:
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return _error(400, "The control body must be JSON.", "invalid_json")
        if not isinstance(payload, dict):
            return _error(400, "The control body must be a JSON object.", "invalid_json")
        try:
            result = await anyio.to_thread.run_sync(self._run_control, method, path, payload)
        except (KeyError, TypeError, ValueError) as err:
            return _error(400, f"Bad control request: {err}", "invalid_control")
        if result is None:
            return _error(404, f"Invalid URL ({method} {path})", None)
        return FakeResponse(
            200, [("content-type", "application/json")], json.dumps(result).encode()
        )

    def _run_control(self, method: str, path: str, payload: dict[str, Any]) -> Any:
        fake = self.fake
        handled = sideband_control(fake, method, path, payload)  # virtual calls, scripts
        if handled is not None:
            return handled
        if method == "GET" and path == "/_fake/stats":
            return fake.stats()
        if method != "POST":
            return None
        if path == "/_fake/reset":
            fake.reset()
            return {"ok": True}
        if path == "/_fake/latency":
            fake.latency = float(payload.get("seconds", 0))
            return {"latency": fake.latency}
        if path == "/_fake/faults":
            fault = fake.add_fault(**payload)
            return {"path": fault.path, "times": fault.times}
        if path == "/_fake/sip_calls":
            return fake.add_sip_call(payload.get("call_id")).stats()
        match = _DROP_RE.match(path)
        if match:
            return fake.drop_call(match.group(1)).stats()
        return None


def _error(status: int, message: str, code: str | None) -> FakeResponse:
    error = APIError(status, message, code=code)
    return FakeResponse(status, [("content-type", "application/json")], error.body_bytes())
