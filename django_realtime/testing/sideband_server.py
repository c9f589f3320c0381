"""The fake sideband's WebSocket side: the ASGI handler and the control API routes.

The fake's ASGI app hands ``websocket`` scopes to :func:`serve_sideband` and control
requests to :func:`sideband_control`; the state lives in :mod:`.sideband`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from .errors import APIError
from .script_player import response_body, speak_answer
from .sideband import CLOSE, FakeSidebands, SidebandPeer, sidebands_of
from .state import FakeCall
from .wire import new_id

if TYPE_CHECKING:
    from .wire import FakeCore

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]


async def serve_sideband(
    hub: FakeSidebands, scope: dict[str, Any], receive: Receive, send: Send
) -> None:
    """ASGI ``websocket`` handler for ``/v1/realtime?call_id=...``."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    call_id = (query.get("call_id") or [None])[0]
    refusal = _refusal(hub, scope, headers, call_id)
    if refusal is not None:
        hub.attempts.append((call_id, refusal.status))
        await _deny(send, refusal)
        return
    assert call_id is not None
    call = hub.fake.calls[call_id]
    hub.attempts.append((call_id, 101))
    await send({"type": "websocket.accept"})
    peer = SidebandPeer(call_id, asyncio.get_running_loop())
    hub.attach(call, peer)
    peer.push({"type": "session.created", "event_id": new_id("event"), "session": call.session})
    try:
        await _pump(hub, call, peer, receive, send)
    finally:
        hub.detach(peer)


def _refusal(
    hub: FakeSidebands, scope: dict[str, Any], headers: dict[str, str], call_id: str | None
) -> APIError | None:
    path = scope.get("path", "")
    if not path.endswith("/realtime") or not path.startswith(("/v1/", "/openai/v1/")):
        return APIError(404, f"Invalid URL (GET {path})")
    if not call_id:
        return APIError(
            400,
            "The fake serves the sideband only: add ?call_id=rtc_...",
            param="call_id",
            code="missing_required_parameter",
        )
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else headers.get("api-key", "").strip()
    style = "bearer" if scheme.lower() == "bearer" else "api-key"
    if not token:
        return APIError(401, "You didn't provide an API key.")
    if token.startswith("ek_"):
        return _not_found(call_id, "Ephemeral client secrets cannot attach a sideband.")
    if not _server_key(hub, style, token):
        return APIError(401, f"Incorrect API key provided: {token[:3]}….", code="invalid_api_key")
    if not hub.is_live(hub.fake.calls.get(call_id)):
        return _not_found(call_id)
    return None


def _server_key(hub: FakeSidebands, style: str, token: str) -> bool:
    if token in hub.fake.api_keys:
        return True
    if not hub.fake.accept_any_sk_key:
        return False
    return token.startswith("sk-") if style == "bearer" else True


async def _pump(
    hub: FakeSidebands, call: FakeCall, peer: SidebandPeer, receive: Receive, send: Send
) -> None:
    async def outgoing() -> None:
        while True:
            item = await peer.outbox.get()
            if isinstance(item, tuple) and item and item[0] is CLOSE:
                peer.close_code = item[1]
                await send({"type": "websocket.close", "code": item[1], "reason": item[2]})
                return
            await send({"type": "websocket.send", "text": json.dumps(item)})

    async def incoming() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            _client_event(hub, call, peer, message.get("text") or message.get("bytes") or "")

    tasks = [asyncio.ensure_future(outgoing()), asyncio.ensure_future(incoming())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _client_event(hub: FakeSidebands, call: FakeCall, peer: SidebandPeer, raw: Any) -> None:
    try:
        event = json.loads(raw)
    except (TypeError, ValueError):
        event = None
    if not isinstance(event, dict):
        event = {"type": "<not a JSON object>", "raw": str(raw)[:200]}
    hub.record_sent(call, peer, event)
    kind = event.get("type")
    try:
        if kind == "<not a JSON object>":
            raise APIError(400, "The event is not a JSON object.", code="invalid_json")
        if kind == "session.update":
            hub.update_session(call, event.get("session"))
        elif kind == "response.create" and (answer := hub.take_answer(call.id)) is not None:
            speak_answer(hub, call, answer[0])
            answer[1].set()
        elif kind == "response.create":
            response_id = new_id("resp")
            hub.emit(
                call,
                {
                    "type": "response.created",
                    "response": {
                        "id": response_id,
                        "object": "realtime.response",
                        "status": "in_progress",
                    },
                },
            )
            hub.emit(
                call, {"type": "response.done", "response": response_body(response_id, [], None)}
            )
        elif kind == "conversation.item.create" and isinstance(event.get("item"), dict):
            item = {"id": new_id("item"), **event["item"]}
            hub.emit(call, {"type": "conversation.item.added", "item": item})
    except APIError as err:
        peer.push(
            {
                "type": "error",
                "event_id": new_id("event"),
                "error": {
                    "type": "invalid_request_error",
                    "code": err.code,
                    "message": err.message,
                    "param": err.param,
                    "event_id": event.get("event_id"),
                },
            }
        )


def _not_found(call_id: str, message: str | None = None) -> APIError:
    return APIError(
        404, message or f"Call '{call_id}' not found.", param="call_id", code="call_id_not_found"
    )


async def _deny(send: Send, error: APIError) -> None:
    body = error.body_bytes()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-request-id", new_id("req").encode()),
            ],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


class _DenialLogFilter(logging.Filter):
    """uvicorn logs a refused upgrade (an HTTP answer to it) as an error; it is not one."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing handshake" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_DenialLogFilter())


def sideband_control(fake: FakeCore, method: str, path: str, payload: Any) -> Any:
    """The control API's sideband routes (``None``: not one of them).

    - ``POST /_fake/virtual_calls`` ``{"call_id"?, "session"?}``: a virtual call's stats;
    - ``POST /_fake/calls/{id}/script`` ``{"steps": [...], "background"?: bool}``: play;
    - ``GET /_fake/calls/{id}/sideband``: ``{"attached", "client_events", "attempts"}``.
    """
    hub = sidebands_of(fake)
    parts = path.strip("/").split("/")
    if method == "POST" and parts == ["_fake", "virtual_calls"]:
        return hub.virtual_call(payload.get("session"), call_id=payload.get("call_id")).stats()
    if len(parts) != 4 or parts[:2] != ["_fake", "calls"]:
        return None
    call_id = parts[2]
    if call_id not in fake.calls:
        return None  # 404
    if method == "POST" and parts[3] == "script":
        steps = list(payload["steps"])
        if payload.get("background"):
            hub.play_in_background(call_id, steps)
            return {"ok": True, "background": True}
        try:
            hub.play(call_id, steps)
        except TimeoutError as err:  # no sideband attached: a bad request, not a crash
            raise ValueError(str(err)) from err
        return {"ok": True, "client_events": hub.sent(call_id)}
    if method == "GET" and parts[3] == "sideband":
        return {
            "attached": hub.attached(call_id),
            "client_events": hub.sent(call_id),
            "attempts": [status for cid, status in hub.attempts if cid == call_id],
        }
    return None
