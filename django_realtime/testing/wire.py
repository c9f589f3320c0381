"""The fake's wire types and body parsing: what the transport and the ASGI app share.

:class:`FakeRequest` / :class:`FakeResponse` are plain HTTP messages; :class:`FakeCore`
is the interface of the fake that the in-process transport (:mod:`.transport`) and the
ASGI adapter (:mod:`.asgi`) drive, so neither imports the fake itself.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Protocol

from .errors import APIError
from .state import FakeCall, Fault

__all__ = [
    "FakeCore",
    "FakeRequest",
    "FakeResponse",
    "json_response",
    "looks_like_offer",
    "new_id",
    "parse_json",
    "parse_multipart",
    "redact",
    "route_path",
]

#: How many characters of a credential the request log and error messages keep.
KEY_PREFIX_CHARS = 6


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
        return f"{scheme} {key_prefix(token)}…"
    return f"{key_prefix(value)}…"


def key_prefix(token: str) -> str:
    # Never more than half of a (short) token.
    return token[: min(KEY_PREFIX_CHARS, len(token) // 2)]


def json_response(status: int, payload: Any) -> FakeResponse:
    return FakeResponse(
        status, [("content-type", "application/json")], json.dumps(payload).encode()
    )


def parse_json(body: bytes, *, required: bool) -> Any:
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


def new_id(prefix: str) -> str:
    """An OpenAI-looking random id such as ``sess_...`` or ``rtc_...``."""
    return f"{prefix}_{secrets.token_hex(12)}"


class FakeCore(Protocol):
    """What the adapters need of :class:`~.fake.FakeRealtimeAPI`."""

    latency: float
    calls: dict[str, FakeCall]
    api_keys: set[str]
    accept_any_sk_key: bool

    def now(self) -> float: ...

    def close_peer(self, call_id: str) -> None: ...

    def handle(self, request: FakeRequest) -> FakeResponse: ...

    def hangup_all(self) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

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
    ) -> Fault: ...

    def add_sip_call(self, call_id: str | None = None) -> FakeCall: ...

    def drop_call(self, call_id: str | None = None) -> FakeCall: ...
