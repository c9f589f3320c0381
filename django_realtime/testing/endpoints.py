"""The fake's endpoints: auth, client secrets, calls (SDP offers) and call control."""

from __future__ import annotations

import copy
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any

from .contract import INVALID_OFFER_MESSAGE
from .effective import effective_session
from .errors import APIError
from .state import FakeCall, MintedSecret, PeerOptions
from .validation import (
    validate_client_secret_request,
    validate_refer,
    validate_reject,
    validate_session,
)
from .wire import (
    FakeRequest,
    FakeResponse,
    json_response,
    key_prefix,
    looks_like_offer,
    new_id,
    parse_json,
    parse_multipart,
)

if TYPE_CHECKING:
    from .peer import PeerHost

__all__ = ["CONTROL_VERBS", "Endpoints"]

CONTROL_VERBS = ("accept", "reject", "refer", "hangup")
CONTROL_RE = re.compile(r"/realtime/calls/([^/]+)/([a-z]+)\Z")
#: Answer used when the fake runs without a WebRTC peer (``webrtc=False``).
SYNTHETIC_ANSWER = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=django_realtime.testing (no WebRTC peer)\r\n"
    "t=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=inactive\r\n"
)


class Endpoints:
    """Mixed into :class:`~.fake.FakeRealtimeAPI`: one method per endpoint of the contract."""

    api_keys: set[str]
    accept_any_sk_key: bool
    webrtc: bool
    peer_options: PeerOptions
    secrets: dict[str, MintedSecret]
    calls: dict[str, FakeCall]
    _lock: threading.RLock
    _peers: PeerHost | None

    def now(self) -> float:
        raise NotImplementedError

    def _dispatch(self, request: FakeRequest, route: str) -> FakeResponse:
        if request.method == "POST":
            if route == "/realtime/client_secrets":
                return self._create_client_secret(request)
            if route == "/realtime/calls":
                return self._create_call(request)
            match = CONTROL_RE.match(route)
            if match and match.group(2) in CONTROL_VERBS:
                return self._control(request, match.group(1), match.group(2))
        raise APIError(404, f"Invalid URL ({request.method} {request.path})")

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
                f"Incorrect API key provided: {key_prefix(credential[1])}….",
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
            parse_json(request.body, required=False)
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
        return json_response(
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
                session_json = parse_json(parts["session"][1], required=True)
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
                parse_json(request.body, required=True), "", types=("realtime",)
            )
            call.session = effective_session(body)
            call.state = "accepted"
        elif verb == "reject":
            body = parse_json(request.body, required=False)
            call.reject_status = validate_reject(body)
            call.state = "rejected"
        elif verb == "refer":
            body = parse_json(request.body, required=True)
            call.refer_target = validate_refer(body)
            call.state = "referred"
        else:  # hangup: no body
            body = None
            call.state = "ended"
            if call.kind == "webrtc" and self._peers is not None:
                self._peers.close_call(call.id)
        call.record_action(verb, body)
        return FakeResponse(200, [("content-length", "0")])
