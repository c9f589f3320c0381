"""The fake Realtime API: the GA HTTP contract and the state behind it.

One :class:`FakeRealtimeAPI` handles plain :class:`FakeRequest` objects
synchronously (:meth:`FakeRealtimeAPI.handle`); the in-process httpx transport
(:mod:`.transport`) and the ASGI app (:mod:`.asgi`) are thin adapters around it, so
both see the same secrets, calls, faults and log. WebRTC answers come from
:mod:`.peer` (aiortc, imported only when an offer has to be answered).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

from .errors import APIError, SimulatedTimeout
from .state import FakeCall, Fault, LoggedRequest, MintedSecret, PeerOptions
from .validation import (
    effective_session,
    new_id,
    validate_client_secret_request,
    validate_refer,
    validate_reject,
    validate_session,
)

if TYPE_CHECKING:
    from .peer import PeerHost
    from .transport import FakeTransport

#: How many characters of a credential the request log and error messages keep.
KEY_PREFIX_CHARS = 6
INVALID_OFFER_MESSAGE = "Invalid SDP offer. Please try again with a WHIP-compliant offer."
CONTROL_VERBS = ("accept", "reject", "refer", "hangup")
_CONTROL_RE = re.compile(r"^/realtime/calls/([^/]+)/([a-z]+)$")
#: Answer used when the fake runs without a WebRTC peer (``webrtc=False``).
SYNTHETIC_ANSWER = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=django_realtime.testing (no WebRTC peer)\r\n"
    "t=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=inactive\r\n"
)


@dataclass
class FakeRequest:
    """An HTTP request as the fake's core sees it (header names lower-case)."""

    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class FakeResponse:
    """An HTTP response from the fake's core."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def route_path(path: str) -> str:
    """``/v1/realtime/calls`` (or Azure's ``/openai/v1/...``) -> ``/realtime/calls``."""
    index = path.find("/realtime")
    return path[index:] if index >= 0 else path


def redact(value: str) -> str:
    """A credential cut to a short prefix: enough to tell ``sk-`` from ``ek_``, no more."""
    scheme, _, token = value.partition(" ")
    if token and scheme.lower() == "bearer":
        return f"{scheme} {_prefix(token)}…"
    return f"{_prefix(value)}…"


def _prefix(token: str) -> str:
    # Never more than half of a (short) token.
    return token[: min(KEY_PREFIX_CHARS, len(token) // 2)]


def _json_response(status: int, payload: Any) -> FakeResponse:
    return FakeResponse(
        status, [("content-type", "application/json")], json.dumps(payload).encode()
    )


def _parse_json(body: bytes, *, required: bool) -> Any:
    if not body.strip():
        if required:
            raise APIError(400, "The request body must be a JSON object.", code="invalid_json")
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise APIError(
            400,
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly.)",
            code="invalid_json",
        ) from err


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str, bytes]]:
    """``multipart/form-data`` body -> ``{name: (content type, bytes)}`` (stdlib only)."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise APIError(400, "The multipart body could not be parsed.", code="invalid_multipart")
    parts: dict[str, tuple[str, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            parts[name] = (part.get_content_type(), payload if isinstance(payload, bytes) else b"")
    return parts


def looks_like_offer(sdp: str) -> bool:
    """An SDP offer the API would take: starts ``v=0`` and has an audio m-line."""
    return sdp.lstrip().startswith("v=0") and re.search(r"^m=audio ", sdp, re.M) is not None


class FakeRealtimeAPI:
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

    # --- faults ---------------------------------------------------------------------------

    def add_fault(
        self,
        path: str,
        *,
        status: int = 500,
        json: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
        method: str | None = "POST",
        timeout: float | None = None,
    ) -> Fault:
        """Answer the next ``times`` requests to ``path`` (an fnmatch pattern, ``/v1``
        optional, e.g. ``/realtime/calls/*/accept``) with this status/JSON/headers, or
        with a hang of ``timeout`` seconds."""
        fault = Fault(
            path=route_path(path),
            status=status,
            json=json,
            headers=dict(headers or {}),
            times=times,
            method=method,
            timeout=timeout,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def fail_next(
        self,
        path: str,
        status: int = 500,
        *,
        message: str = "The server had an error while processing your request.",
        code: str | None = None,
        error_type: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> Fault:
        """Answer the next ``times`` requests to ``path`` with an OpenAI-style error."""
        if error_type is None:
            error_type = "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": error_type, "param": param, "code": code}}
        return self.add_fault(path, status=status, json=body, headers=headers, times=times)

    def rate_limit_next(
        self, path: str = "/realtime/*", *, retry_after: int | None = 1, times: int = 1
    ) -> Fault:
        """429 ``rate_limit_exceeded`` (with ``Retry-After`` unless ``None``)."""
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return self.fail_next(
            path,
            429,
            message="Rate limit reached for requests (fake).",
            code="rate_limit_exceeded",
            error_type="requests",
            headers=headers,
            times=times,
        )

    def timeout_next(self, path: str, *, seconds: float = 30.0, times: int = 1) -> Fault:
        """Hang the next requests: in-process ``httpx.ReadTimeout``; the server holds
        the request for ``seconds`` or until the client gives up."""
        return self.add_fault(path, timeout=seconds, times=times)

    def refuse_next_offer(self, message: str = INVALID_OFFER_MESSAGE, *, times: int = 1) -> Fault:
        """400 ``invalid_offer`` with ``message`` for the next SDP offers."""
        return self.fail_next(
            "/realtime/calls", 400, message=message, code="invalid_offer", times=times
        )

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        with self._lock:
            self.faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    return fault
        return None

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
        if self._peers is not None:
            self._peers.close_call(call.id)
        return call

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
                response = _json_response(err.status, err.body())
        response.headers.append(("x-request-id", request_id))
        entry.status = response.status
        return response

    def _dispatch(self, request: FakeRequest, route: str) -> FakeResponse:
        if request.method == "POST":
            if route == "/realtime/client_secrets":
                return self._create_client_secret(request)
            if route == "/realtime/calls":
                return self._create_call(request)
            match = _CONTROL_RE.match(route)
            if match and match.group(2) in CONTROL_VERBS:
                return self._control(request, match.group(1), match.group(2))
        raise APIError(404, f"Invalid URL ({request.method} {request.path})")

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

    # --- auth ---------------------------------------------------------------------------------

    @staticmethod
    def _credential(request: FakeRequest) -> tuple[str, str] | None:
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return "bearer", token.strip()
        if request.headers.get("api-key", "").strip():
            return "api-key", request.headers["api-key"].strip()
        return None

    def _is_server_key(self, style: str, token: str) -> bool:
        if token in self.api_keys:
            return True
        if not self.accept_any_sk_key:
            return False
        return token.startswith("sk-") if style == "bearer" else not token.startswith("ek_")

    def _require_server_key(self, request: FakeRequest) -> None:
        credential = self._credential(request)
        if credential is None:
            raise APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if not self._is_server_key(*credential):
            raise APIError(
                401,
                f"Incorrect API key provided: {_prefix(credential[1])}….",
                code="invalid_api_key",
            )

    def _secret_for(self, token: str) -> MintedSecret:
        with self._lock:
            secret = self.secrets.get(token)
        if secret is None:
            raise APIError(401, "Invalid ephemeral client secret.", code="invalid_api_key")
        if self.now() >= secret.expires_at:
            raise APIError(401, "The ephemeral client secret has expired.", code="invalid_api_key")
        return secret

    # --- endpoints ------------------------------------------------------------------------------

    def _create_client_secret(self, request: FakeRequest) -> FakeResponse:
        self._require_server_key(request)
        seconds, session_request = validate_client_secret_request(
            _parse_json(request.body, required=False)
        )
        now = self.now()
        secret = MintedSecret(
            value="ek_" + secrets.token_hex(16),
            created_at=now,
            expires_at=int(now) + seconds,
            session=effective_session(session_request),
        )
        with self._lock:
            self.secrets[secret.value] = secret
        return _json_response(
            200, {"value": secret.value, "expires_at": secret.expires_at, "session": secret.session}
        )

    def _create_call(self, request: FakeRequest) -> FakeResponse:
        credential = self._credential(request)
        secret: MintedSecret | None = None
        if credential is not None and credential[1].startswith("ek_"):
            secret = self._secret_for(credential[1])
        else:
            self._require_server_key(request)
        content_type = request.headers.get("content-type", "")
        media_type = content_type.split(";")[0].strip().lower()
        session: dict[str, Any] | None = None
        if media_type == "application/sdp":
            offer = request.body.decode("utf-8", "replace")
        elif media_type == "multipart/form-data":
            parts = parse_multipart(content_type, request.body)
            if "sdp" not in parts:
                raise APIError(
                    400,
                    "Missing required parameter: 'sdp'.",
                    param="sdp",
                    code="missing_required_parameter",
                )
            offer = parts["sdp"][1].decode("utf-8", "replace")
            if "session" in parts:
                session_json = _parse_json(parts["session"][1], required=True)
                session = effective_session(validate_session(session_json))
        else:
            raise APIError(
                400,
                "Unsupported Content-Type: send application/sdp (the offer) or "
                "multipart/form-data (parts 'sdp' and 'session').",
                code="invalid_content_type",
            )
        if not looks_like_offer(offer):
            raise APIError(400, INVALID_OFFER_MESSAGE, code="invalid_offer")
        if session is None:
            session = (
                copy.deepcopy(secret.session)
                if secret is not None
                else effective_session({"type": "realtime"})
            )
        call = FakeCall(
            new_id("rtc"),
            kind="webrtc",
            session=session,
            auth="ephemeral" if secret is not None else "server",
            client_secret=secret.value if secret is not None else None,
            key_was_minted=secret is not None,
        )
        with self._lock:
            self.calls[call.id] = call
            if secret is not None:
                secret.uses += 1
        try:
            answer = self._answer(call, offer)
        except APIError:
            with self._lock:
                self.calls.pop(call.id, None)
            raise
        return FakeResponse(
            201,
            [("content-type", "application/sdp"), ("location", f"/v1/realtime/calls/{call.id}")],
            answer.encode(),
        )

    def _answer(self, call: FakeCall, offer: str) -> str:
        if not self.webrtc:
            return SYNTHETIC_ANSWER
        if self._peers is None:
            with self._lock:
                if self._peers is None:
                    from .peer import PeerHost  # aiortc: only now, and with a clear error

                    self._peers = PeerHost(self.peer_options)
        try:
            return self._peers.answer(call, offer)
        except (ValueError, AttributeError, IndexError) as err:
            # aiortc refusing to parse the offer: the API says invalid_offer too.
            raise APIError(400, INVALID_OFFER_MESSAGE, code="invalid_offer") from err

    def _control(self, request: FakeRequest, call_id: str, verb: str) -> FakeResponse:
        self._require_server_key(request)
        with self._lock:
            call = self.calls.get(call_id)
        if call is None:
            raise APIError(
                404, f"Call '{call_id}' not found.", param="call_id", code="call_id_not_found"
            )
        if verb == "accept":
            body = validate_session(
                _parse_json(request.body, required=True), "", types=("realtime",)
            )
            call.session = effective_session(body)
            call.state = "accepted"
        elif verb == "reject":
            body = _parse_json(request.body, required=False)
            call.reject_status = validate_reject(body)
            call.state = "rejected"
        elif verb == "refer":
            body = _parse_json(request.body, required=True)
            call.refer_target = validate_refer(body)
            call.state = "referred"
        else:  # hangup: no body
            body = None
            call.state = "ended"
            if call.kind == "webrtc" and self._peers is not None:
                self._peers.close_call(call.id)
        call.record_action(verb, body)
        return FakeResponse(200, [("content-length", "0")])
