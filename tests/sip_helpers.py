"""Shared helpers for the webhook / SIP tests: signed deliveries, events, a recording
stand-in for the call-control endpoints, and the OpenAPI schemas to check bodies with.

Self-contained on purpose (no conftest fixture needed): the recorder is an
``httpx.MockTransport`` installed with ``client.set_transport``.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from django.test import Client
from django.urls import reverse

from django_realtime import client as upstream_client
from django_realtime import signing
from tests import settings as test_settings

SECRET: str = test_settings.DJANGO_REALTIME["WEBHOOK_SECRETS"][0]
#: A second, valid secret for rotation tests (not the configured one).
OTHER_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SCHEMAS_PATH = Path(__file__).parent / "data" / "openapi_realtime_schemas.json"

_ids = itertools.count(1)


def webhook_url() -> str:
    return reverse("django_realtime:webhook")


def new_webhook_id() -> str:
    return f"wh_test_{next(_ids):06d}_{time.monotonic_ns()}"


def incoming_event(
    call_id: str = "rtc_test_1",
    *,
    from_: str = '"Alice" <sip:+14155550100@pstn.example.com>;tag=abc',
    to: str = "<sip:+14155550123@sip.api.openai.com;user=phone>",
    extra_headers: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """A ``realtime.call.incoming`` event as OpenAI sends it."""
    headers = [
        {"name": "From", "value": from_},
        {"name": "To", "value": to},
        {"name": "Call-ID", "value": f"{call_id}@pstn.example.com"},
        *(extra_headers or []),
    ]
    return {
        "id": f"evt_{call_id}",
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": int(time.time()),
        "data": {"call_id": call_id, "sip_headers": headers},
    }


def signed_headers(
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    secret: str = SECRET,
) -> dict[str, str]:
    return signing.sign(
        body,
        secret=secret,
        msg_id=msg_id or new_webhook_id(),
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )


def post_webhook(
    client: Client,
    payload: dict[str, Any] | bytes,
    *,
    headers: dict[str, str] | None = None,
    msg_id: str | None = None,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> Any:
    """POST ``payload`` signed (unless ``headers`` are given) to the webhook URL."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if headers is None:
        headers = signed_headers(body, msg_id=msg_id, secret=secret, timestamp=timestamp)
    return client.post(
        webhook_url(),
        data=body,
        content_type="application/json",
        headers={
            **headers,
            "User-Agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks)",
        },
    )


# --- the call-control stand-in ----------------------------------------------------------

Answer = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class CallControlAPI:
    """Records call-control requests; answers 200 unless an answer is queued for a verb.

    Thread-safe: the concurrency tests hit it from several threads. ``gate`` (a
    ``threading.Event``), when set on the recorder, holds every ``accept`` until it is
    released, so a test can keep one delivery in flight while another arrives.
    """

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self._answers: dict[str, list[Answer]] = {}
        self._lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self.transport = httpx.MockTransport(self._handle)

    def answer_next(self, verb: str, *answers: Answer) -> None:
        with self._lock:
            self._answers.setdefault(verb, []).extend(answers)

    def fail_next(self, verb: str, status: int, code: str = "error", *, times: int = 1) -> None:
        body = {
            "error": {
                "message": f"simulated {status}",
                "type": "server_error",
                "param": None,
                "code": code,
            }
        }
        for _ in range(times):
            self.answer_next(
                verb, httpx.Response(status, json=body, headers={"x-request-id": "req_failed"})
            )

    def to(self, verb: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(f"/{verb}")]

    def bodies(self, verb: str) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.to(verb)]

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        verb = request.url.path.rsplit("/", 1)[-1]
        with self._lock:
            self.requests.append(request)
            queued = self._answers.get(verb)
            answer = queued.pop(0) if queued else None
            request_id = f"req_{verb}_{next(self._request_ids)}"
        if verb == "accept" and self.gate is not None:
            self.entered.set()
            self.gate.wait(timeout=10)
        if answer is None:
            return httpx.Response(200, headers={"x-request-id": request_id})
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return answer(request)


def install_call_api() -> CallControlAPI:
    api = CallControlAPI()
    upstream_client.set_transport(api.transport)
    return api


# --- OpenAPI schemas -------------------------------------------------------------------


@cache
def _schemas() -> dict[str, Any]:
    return json.loads(SCHEMAS_PATH.read_text())


def validate_against(name: str, instance: Any) -> None:
    """Validate ``instance`` against ``$defs[name]`` of the Realtime OpenAPI subset."""
    document = _schemas()
    schema = {"$schema": document["$schema"], "$defs": document["$defs"], "$ref": f"#/$defs/{name}"}
    jsonschema.Draft202012Validator(schema).validate(instance)
