"""The fake Realtime API: the GA HTTP contract and the state behind it.

One :class:`FakeRealtimeAPI` handles plain :class:`FakeRequest` objects
synchronously (:meth:`FakeRealtimeAPI.handle`); the in-process httpx transport
(:mod:`.transport`) and the ASGI app (:mod:`.asgi`) are thin adapters around it, so
both see the same secrets, calls, faults and log. WebRTC answers come from
:mod:`.peer` (aiortc, imported only when an offer has to be answered).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .effective import effective_session
from .endpoints import Endpoints
from .errors import APIError, SimulatedTimeout
from .faults import INVALID_OFFER_MESSAGE, FaultInjection
from .state import FakeCall, Fault, LoggedRequest, MintedSecret, PeerOptions
from .wire import (
    FakeRequest,
    FakeResponse,
    json_response,
    new_id,
    parse_multipart,
    redact,
    route_path,
)

if TYPE_CHECKING:
    from .peer import PeerHost
    from .transport import FakeTransport

__all__ = ["INVALID_OFFER_MESSAGE", "FakeRealtimeAPI", "FakeRequest", "FakeResponse"]


class FakeRealtimeAPI(FaultInjection, Endpoints):
    """The fake OpenAI Realtime API (GA contract), shared by the transport and the server.

    ``api_keys``: server keys accepted besides any ``sk-...`` (set ``accept_any_sk_key``
    to ``False`` to accept only these). ``webrtc``: answer offers with a real aiortc
    peer (needs the ``testing`` extra); ``False`` answers with a static SDP and no peer.
    ``latency``: seconds added to every request.
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = (),
        accept_any_sk_key: bool = True,
        webrtc: bool = True,
        latency: float = 0.0,
        peer_options: PeerOptions | None = None,
    ) -> None:
        self.api_keys = set(api_keys)
        self.accept_any_sk_key = accept_any_sk_key
        self.webrtc = webrtc
        self.latency = latency
        self.peer_options = peer_options or PeerOptions()
        self.secrets: dict[str, MintedSecret] = {}
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[LoggedRequest] = []
        self.faults: list[Fault] = []
        self._clock_offset = 0.0
        self._lock = threading.RLock()
        self._peers: PeerHost | None = None
        self._transport: FakeTransport | None = None

    # --- adapters -------------------------------------------------------------------

    @property
    def transport(self) -> FakeTransport:
        """An httpx transport (sync and async) routed to this fake."""
        if self._transport is None:
            from .transport import FakeTransport

            self._transport = FakeTransport(self)
        return self._transport

    def asgi_app(self) -> Callable[..., Any]:
        """A raw ASGI app serving this fake under ``/v1`` (with CORS)."""
        from .asgi import FakeRealtimeASGI

        return FakeRealtimeASGI(self)

    # --- clock ------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock: wall time plus :meth:`advance_clock` offsets."""
        return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the fake's clock forward (for example past a secret's ``expires_at``)."""
        self._clock_offset += seconds

    # --- calls ------------------------------------------------------------------------------

    def add_sip_call(
        self, call_id: str | None = None, *, sip_headers: list[dict[str, str]] | None = None
    ) -> FakeCall:
        """Register a pending incoming SIP call, so accept/reject/refer/hangup find it."""
        call = FakeCall(
            call_id or new_id("rtc"),
            kind="sip",
            session=effective_session({"type": "realtime"}),
            sip_headers=sip_headers,
        )
        with self._lock:
            self.calls[call.id] = call
        return call

    def get_call(self, call_id: str) -> FakeCall:
        """The call with this id (``KeyError`` if unknown)."""
        with self._lock:
            return self.calls[call_id]

    @property
    def last_call(self) -> FakeCall | None:
        """The most recently created call, if any."""
        with self._lock:
            return next(reversed(self.calls.values()), None)

    def wait_for_call(self, timeout: float = 5.0, *, kind: str = "webrtc") -> FakeCall:
        """Block until a call of ``kind`` exists; return the newest one."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [c for c in self.calls.values() if c.kind == kind]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {kind} call reached the fake within {timeout} s")
            time.sleep(0.02)

    def drop_call(self, call_id: str | None = None) -> FakeCall:
        """Kill a live WebRTC call from the server side (the newest one by default).

        The peer connection is closed without a hangup request: the browser's data
        channel closes and its ICE/connection state goes to disconnected/failed/closed.
        """
        call = self.get_call(call_id) if call_id else self.last_call
        if call is None:
            raise KeyError("no call to drop")
        call.state = "dropped"
        self.close_peer(call.id)
        return call

    def close_peer(self, call_id: str) -> None:
        """Close a WebRTC call's peer connection, if it has one (no state change)."""
        if self._peers is not None:
            self._peers.close_call(call_id)

    def hangup_all(self) -> int:
        """Close every WebRTC peer (calls otherwise stream for ~30 s); returns how many."""
        with self._lock:
            for call in self.calls.values():
                if call.kind == "webrtc" and call.state in ("connecting", "active"):
                    call.state = "ended"
        return self._peers.close_all() if self._peers is not None else 0

    def reset(self) -> None:
        """Hang up all peers and forget secrets, calls, faults, the log, latency and clock."""
        self.hangup_all()
        with self._lock:
            self.secrets.clear()
            self.calls.clear()
            self.requests.clear()
            self.faults.clear()
            self.latency = 0.0
            self._clock_offset = 0.0

    def close(self) -> None:
        """Hang up everything and stop the peers' event-loop thread."""
        if self._peers is not None:
            self._peers.stop()

    def __enter__(self) -> FakeRealtimeAPI:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """A JSON-able snapshot: every call's stats, the log, counts."""
        with self._lock:
            calls = list(self.calls.values())
            log = [entry.as_dict() for entry in self.requests]
            minted = len(self.secrets)
        return {
            "calls": {call.id: call.stats() for call in calls},
            "requests": log,
            "secrets_minted": minted,
        }

    def requests_to(self, path: str, method: str | None = None) -> list[LoggedRequest]:
        """Logged requests whose path matches ``path`` (fnmatch, ``/v1`` optional)."""
        probe = Fault(path=route_path(path), method=method, times=1)
        with self._lock:
            return [r for r in self.requests if probe.matches(r.method, r.path)]

    # --- the HTTP contract ----------------------------------------------------------------

    def handle(self, request: FakeRequest) -> FakeResponse:
        """Answer one request (blocking: latency, WebRTC answer). Thread-safe.

        Raises :class:`~.errors.SimulatedTimeout` when a timeout fault fires.
        """
        route = route_path(request.path)
        request_id = new_id("req")
        entry = self._log(request, route, request_id)
        if self.latency > 0:
            time.sleep(self.latency)
        fault = self._take_fault(request.method, route)
        if fault is not None and fault.timeout is not None:
            raise SimulatedTimeout(fault.timeout)
        if fault is not None:
            response = FakeResponse(fault.status, list(fault.headers.items()))
            if fault.json is not None:
                response.headers.append(("content-type", "application/json"))
                response.body = json.dumps(fault.json).encode()
        else:
            try:
                response = self._dispatch(request, route)
            except APIError as err:
                response = json_response(err.status, err.body())
        response.headers.append(("x-request-id", request_id))
        entry.status = response.status
        return response

    def _log(self, request: FakeRequest, route: str, request_id: str) -> LoggedRequest:
        headers = {
            name: (redact(value) if name in ("authorization", "api-key") else value)
            for name, value in request.headers.items()
        }
        entry = LoggedRequest(request.method, route, headers, request_id=request_id)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype == "application/json" and request.body.strip():
                entry.json = json.loads(request.body)
            elif ctype == "multipart/form-data":
                parts = parse_multipart(request.headers["content-type"], request.body)
                entry.parts = {
                    name: (
                        json.loads(data)
                        if part_type == "application/json"
                        else data.decode("utf-8", "replace")
                    )
                    for name, (part_type, data) in parts.items()
                }
            elif request.body:
                entry.text = request.body.decode("utf-8", "replace")
        except (ValueError, APIError):
            entry.text = request.body.decode("utf-8", "replace")
        with self._lock:
            self.requests.append(entry)
        return entry
