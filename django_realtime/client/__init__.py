"""The only package that talks HTTP to the Realtime API.

One pooled ``httpx.Client`` per process, one ``httpx.AsyncClient`` per event loop
(:mod:`.pool`), created on first use (creating one costs ~37 ms of CPU for the CA
bundle, so never per request). Base URL, key, headers and timeouts are read from settings on every
call, so ``override_settings`` works.

Retries follow openai-python (:mod:`.retry`, one policy for both send loops): up
to ``MAX_RETRIES`` more attempts on 408, 409, 429, 5xx, timeouts and connection
errors; ``Retry-After`` (or ``retry-after-ms``) is honoured up to ``RETRY_AFTER_CAP``
seconds, otherwise exponential backoff with jitter; ``x-should-retry`` overrides.
Other 4xx are never retried.

Every failure becomes one :class:`~django_realtime.exceptions.UpstreamError`
carrying status, upstream error code/message and ``x-request-id``.

Test seam: :func:`set_transport` installs any ``httpx`` transport (for example
:class:`django_realtime.testing.FakeRealtimeAPI`'s) for both clients.
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from django_realtime import __version__
from django_realtime.conf import conf
from django_realtime.exceptions import UpstreamError

from .pool import get_async_client, get_client, reset, set_transport, sync_client
from .responses import (
    CallAnswer,
    CallControlResult,
    ClientSecret,
    call_id_from_location,
    control_result,
    parse_call_answer,
    parse_client_secret,
    parse_retry_after,
)
from .retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    failure_code,
    is_retryable_status,
    is_transient,
)

__all__ = [
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "CallAnswer",
    "CallControlResult",
    "ClientSecret",
    "aaccept_call",
    "accept_call",
    "acreate_call",
    "acreate_client_secret",
    "ahangup_call",
    "arefer_call",
    "areject_call",
    "call_id_from_location",
    "create_call",
    "create_client_secret",
    "failure_code",
    "get_async_client",
    "get_client",
    "hangup_call",
    "is_retryable_status",
    "is_transient",
    "parse_retry_after",
    "refer_call",
    "reject_call",
    "reset",
    "set_transport",
]

USER_AGENT = (
    f"django-openai-realtime/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)

#: Sleep functions; tests replace them to assert the delays without waiting.
sleep: Callable[[float], None] = time.sleep
async_sleep: Callable[[float], Any] = asyncio.sleep


# --- request building ---------------------------------------------------------


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    key = conf.API_KEY  # raises RealtimeConfigurationError naming the setting
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if conf.AUTH_STYLE == "api-key":
        headers["api-key"] = key
    else:
        headers["Authorization"] = f"Bearer {key}"
    if conf.ORGANIZATION:
        headers["OpenAI-Organization"] = conf.ORGANIZATION
    if conf.PROJECT:
        headers["OpenAI-Project"] = conf.PROJECT
    headers.update(extra or {})
    return headers


def _timeout() -> httpx.Timeout:
    return httpx.Timeout(conf.TIMEOUT, connect=min(conf.CONNECT_TIMEOUT, conf.TIMEOUT))


@dataclass
class _Spec:
    method: str
    path: str
    json_body: Any = None
    files: dict[str, Any] | None = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    what: str = "request"

    def build(self, client: httpx.Client | httpx.AsyncClient, retry_count: int) -> httpx.Request:
        headers = _headers(self.headers)
        if retry_count:
            headers["x-stainless-retry-count"] = str(retry_count)
        return client.build_request(
            self.method,
            f"{conf.API_BASE}/{self.path.lstrip('/')}",
            json=self.json_body,
            files=self.files,
            content=self.content,
            headers=headers,
            timeout=_timeout(),
        )


# --- the send loops: one policy (RetryPolicy), two drivers ---------------------


def _send(spec: _Spec) -> httpx.Response:
    # Counted in flight (sync_client): a reset() meanwhile closes the client after us.
    with sync_client() as client:
        policy = RetryPolicy(spec.what)
        while True:
            request = spec.build(client, policy.retries)
            try:
                response = client.send(request)  # read whole: usable after the block
            except httpx.TransportError as err:
                sleep(policy.after_error(err))
                continue
            delay = policy.after_response(response)
            if delay is None:
                return response
            response.close()
            sleep(delay)


async def _asend(spec: _Spec) -> httpx.Response:
    client = get_async_client()
    policy = RetryPolicy(spec.what)
    while True:
        request = spec.build(client, policy.retries)
        try:
            response = await client.send(request)
        except httpx.TransportError as err:
            await async_sleep(policy.after_error(err))
            continue
        delay = policy.after_response(response)
        if delay is None:
            return response
        await response.aclose()
        await async_sleep(delay)


def _call_files(sdp: str, session: dict[str, Any]) -> dict[str, Any]:
    return {
        "sdp": (None, sdp.encode(), "application/sdp"),
        "session": (None, json.dumps(session).encode(), "application/json"),
    }


def _control(call_id: str, verb: str, body: dict[str, Any] | None) -> _Spec:
    if not call_id or "/" in call_id or "?" in call_id or "#" in call_id:
        raise UpstreamError(f"Refusing a malformed call id for {verb}.")
    return _Spec("POST", f"realtime/calls/{call_id}/{verb}", json_body=body, what=f"calls.{verb}")


# --- public API (sync) -----------------------------------------------------------


def create_client_secret(payload: dict[str, Any]) -> ClientSecret:
    """``POST /realtime/client_secrets`` with a body from :mod:`django_realtime.payloads`."""
    spec = _Spec("POST", "realtime/client_secrets", json_body=payload, what="client_secrets")
    return parse_client_secret(_send(spec))


def create_call(sdp: str, session: dict[str, Any]) -> CallAnswer:
    """Relay an SDP offer with our key: multipart ``sdp`` + ``session`` to ``/realtime/calls``."""
    spec = _Spec(
        "POST",
        "realtime/calls",
        files=_call_files(sdp, session),
        headers={"Accept": "application/sdp"},
        what="calls",
    )
    return parse_call_answer(_send(spec))


def accept_call(call_id: str, session: dict[str, Any]) -> CallControlResult:
    return control_result(call_id, _send(_control(call_id, "accept", session)))


def reject_call(call_id: str, status_code: int | None = None) -> CallControlResult:
    body = {"status_code": status_code} if status_code is not None else None
    return control_result(call_id, _send(_control(call_id, "reject", body)))


def refer_call(call_id: str, target_uri: str) -> CallControlResult:
    return control_result(call_id, _send(_control(call_id, "refer", {"target_uri": target_uri})))


def hangup_call(call_id: str) -> CallControlResult:
    return control_result(call_id, _send(_control(call_id, "hangup", None)))


# --- public API (async twins) ------------------------------------------------------


async def acreate_client_secret(payload: dict[str, Any]) -> ClientSecret:
    spec = _Spec("POST", "realtime/client_secrets", json_body=payload, what="client_secrets")
    return parse_client_secret(await _asend(spec))


async def acreate_call(sdp: str, session: dict[str, Any]) -> CallAnswer:
    spec = _Spec(
        "POST",
        "realtime/calls",
        files=_call_files(sdp, session),
        headers={"Accept": "application/sdp"},
        what="calls",
    )
    return parse_call_answer(await _asend(spec))


async def aaccept_call(call_id: str, session: dict[str, Any]) -> CallControlResult:
    return control_result(call_id, await _asend(_control(call_id, "accept", session)))


async def areject_call(call_id: str, status_code: int | None = None) -> CallControlResult:
    body = {"status_code": status_code} if status_code is not None else None
    return control_result(call_id, await _asend(_control(call_id, "reject", body)))


async def arefer_call(call_id: str, target_uri: str) -> CallControlResult:
    return control_result(
        call_id, await _asend(_control(call_id, "refer", {"target_uri": target_uri}))
    )


async def ahangup_call(call_id: str) -> CallControlResult:
    return control_result(call_id, await _asend(_control(call_id, "hangup", None)))
