"""The only module that talks HTTP to the Realtime API.

One pooled ``httpx.Client`` and one ``httpx.AsyncClient`` per process, created on
first use (creating one costs ~37 ms of CPU for the CA bundle, so never per
request). Base URL, key, headers and timeouts are read from settings on every
call, so ``override_settings`` works.

Retries follow openai-python: up to ``MAX_RETRIES`` more attempts on 408, 409,
429, 5xx, timeouts and connection errors; ``Retry-After`` (or ``retry-after-ms``)
is honoured up to ``RETRY_AFTER_CAP`` seconds, otherwise exponential backoff with
jitter; ``x-should-retry`` overrides. Other 4xx are never retried.

Every failure becomes one :class:`~django_realtime.exceptions.UpstreamError`
carrying status, upstream error code/message and ``x-request-id``.

Test seam: :func:`set_transport` installs any ``httpx`` transport (for example
:class:`django_realtime.testing.FakeRealtimeAPI`'s) for both clients.
"""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from . import __version__
from .conf import conf
from .exceptions import (
    UpstreamAuthenticationError,
    UpstreamBadResponse,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamHTTPError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

logger = logging.getLogger("django_realtime.client")

USER_AGENT = (
    f"django-openai-realtime/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)
RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


@dataclass(frozen=True)
class ClientSecret:
    """A minted secret. ``value`` is the ``ek_...``: never log or store it."""

    value: str = field(repr=False)
    expires_at: int
    session: dict[str, Any]
    request_id: str | None
    status_code: int


@dataclass(frozen=True)
class CallAnswer:
    """The answer to a relayed SDP offer."""

    sdp: str
    call_id: str | None
    request_id: str | None
    status_code: int


@dataclass(frozen=True)
class CallControlResult:
    """The outcome of accept / reject / refer / hangup."""

    call_id: str
    status_code: int
    request_id: str | None


# --- clients and the test seam ---------------------------------------------

_lock = threading.Lock()
_sync_client: httpx.Client | None = None
# One AsyncClient per event loop: its pooled connections belong to the loop that
# opened them (a site under ASGI has one loop; tests and async_to_sync make more).
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None

#: Sleep functions; tests replace them to assert the delays without waiting.
sleep: Callable[[float], None] = time.sleep
async_sleep: Callable[[float], Any] = asyncio.sleep


def set_transport(transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None) -> None:
    """Route every request through ``transport`` (``None`` restores the network).

    The transport must implement the sync interface, the async one or both; the
    client of the other kind is then unusable until the transport is reset.
    """
    global _transport
    with _lock:
        _transport = transport
    reset()


def reset() -> None:
    """Drop the pooled clients; the next call creates fresh ones."""
    global _sync_client
    with _lock:
        old_sync, _sync_client = _sync_client, None
        _async_clients.clear()  # an AsyncClient must be closed on its own loop; let GC do it
    if old_sync is not None:
        old_sync.close()


def get_client() -> httpx.Client:
    global _sync_client
    with _lock:
        if _sync_client is None:
            transport = _transport if isinstance(_transport, httpx.BaseTransport) else None
            _sync_client = httpx.Client(
                transport=transport,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                follow_redirects=False,
            )
        return _sync_client


def get_async_client() -> httpx.AsyncClient:
    """The pooled AsyncClient of the running event loop (call from a coroutine)."""
    loop = asyncio.get_running_loop()
    with _lock:
        async_client = _async_clients.get(loop)
        if async_client is None:
            transport = _transport if isinstance(_transport, httpx.AsyncBaseTransport) else None
            async_client = httpx.AsyncClient(
                transport=transport,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                follow_redirects=False,
            )
            _async_clients[loop] = async_client
        return async_client


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


# --- retry policy (pure) --------------------------------------------------------


def _should_retry(response: httpx.Response) -> bool:
    override = response.headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return response.status_code in RETRYABLE_STATUSES or response.status_code >= 500


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _retry_delay(retries_taken: int, response: httpx.Response | None) -> float:
    if response is not None:
        retry_after = parse_retry_after(response.headers)
        if retry_after is not None and 0 < retry_after <= conf.RETRY_AFTER_CAP:
            return retry_after
    delay = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _retry_allowed(response: httpx.Response | None) -> bool:
    """openai-python refuses to retry when the server asks for a wait above the cap."""
    if response is None:
        return True
    retry_after = parse_retry_after(response.headers)
    return retry_after is None or retry_after <= conf.RETRY_AFTER_CAP


# --- the send loops -------------------------------------------------------------


def _send(spec: _Spec) -> httpx.Response:
    client = get_client()
    max_retries = max(0, conf.MAX_RETRIES)
    retries = 0
    while True:
        request = spec.build(client, retries)
        try:
            response = client.send(request)
        except httpx.TimeoutException as err:
            if retries < max_retries:
                sleep(_retry_delay(retries, None))
                retries += 1
                continue
            raise UpstreamTimeout(f"The Realtime API timed out ({spec.what}).") from err
        except httpx.TransportError as err:
            if retries < max_retries:
                sleep(_retry_delay(retries, None))
                retries += 1
                continue
            raise UpstreamConnectionError(
                f"Could not reach the Realtime API ({spec.what}): {type(err).__name__}."
            ) from err
        if response.is_success:
            return response
        if retries < max_retries and _should_retry(response) and _retry_allowed(response):
            response.close()
            sleep(_retry_delay(retries, response))
            retries += 1
            continue
        raise _status_error(response, spec.what)


async def _asend(spec: _Spec) -> httpx.Response:
    client = get_async_client()
    max_retries = max(0, conf.MAX_RETRIES)
    retries = 0
    while True:
        request = spec.build(client, retries)
        try:
            response = await client.send(request)
        except httpx.TimeoutException as err:
            if retries < max_retries:
                await async_sleep(_retry_delay(retries, None))
                retries += 1
                continue
            raise UpstreamTimeout(f"The Realtime API timed out ({spec.what}).") from err
        except httpx.TransportError as err:
            if retries < max_retries:
                await async_sleep(_retry_delay(retries, None))
                retries += 1
                continue
            raise UpstreamConnectionError(
                f"Could not reach the Realtime API ({spec.what}): {type(err).__name__}."
            ) from err
        if response.is_success:
            return response
        if retries < max_retries and _should_retry(response) and _retry_allowed(response):
            await response.aclose()
            await async_sleep(_retry_delay(retries, response))
            retries += 1
            continue
        raise _status_error(response, spec.what)


def _error_fields(response: httpx.Response) -> tuple[str | None, str | None, Any]:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return None, None, response.text[:500]
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message")
        return (str(code) if code else None), (str(message)[:500] if message else None), body
    return None, None, body


def _status_error(response: httpx.Response, what: str) -> UpstreamHTTPError:
    status = response.status_code
    code, message, body = _error_fields(response)
    request_id = response.headers.get("x-request-id")
    kwargs: dict[str, Any] = {
        "status_code": status,
        "error_code": code,
        "error_message": message,
        "request_id": request_id,
        "retry_after": parse_retry_after(response.headers),
        "body": body,
    }
    if status in (401, 403):
        # The operator's problem: say so loudly, never with the key itself.
        logger.error(
            "The Realtime API refused this site's API key (%s, status %s, request id %s): "
            "check DJANGO_REALTIME['API_KEY'] / OPENAI_API_KEY and the key's project access.",
            what,
            status,
            request_id,
        )
        return UpstreamAuthenticationError(
            f"The Realtime API refused the API key ({what}).", **kwargs
        )
    if status == 429:
        return UpstreamRateLimited(f"The Realtime API is rate limiting us ({what}).", **kwargs)
    return UpstreamHTTPError(f"The Realtime API answered {status} ({what}).", **kwargs)


# --- response parsing (pure) ----------------------------------------------------


def _parse_client_secret(response: httpx.Response) -> ClientSecret:
    request_id = response.headers.get("x-request-id")
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError) as err:
        raise UpstreamBadResponse(
            "The Realtime API answered with a body that is not JSON (client_secrets).",
            status_code=response.status_code,
            request_id=request_id,
        ) from err
    # GA: top-level value/expires_at. Tolerate extra or missing nested fields.
    value = body.get("value") if isinstance(body, dict) else None
    expires_at = body.get("expires_at") if isinstance(body, dict) else None
    if not isinstance(value, str) or not value or not isinstance(expires_at, int | float):
        raise UpstreamBadResponse(
            "The Realtime API answer has no usable value/expires_at (client_secrets).",
            status_code=response.status_code,
            request_id=request_id,
        )
    session = body.get("session")
    return ClientSecret(
        value=value,
        expires_at=int(expires_at),
        session=session if isinstance(session, dict) else {},
        request_id=request_id,
        status_code=response.status_code,
    )


def call_id_from_location(location: str | None) -> str | None:
    """``/v1/realtime/calls/rtc_123`` -> ``rtc_123`` (the last path segment)."""
    if not location:
        return None
    segment = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def _parse_call_answer(response: httpx.Response) -> CallAnswer:
    sdp = response.text
    if not sdp.startswith("v="):
        raise UpstreamBadResponse(
            "The Realtime API answer is not an SDP (calls).",
            status_code=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )
    return CallAnswer(
        sdp=sdp,
        call_id=call_id_from_location(response.headers.get("location")),
        request_id=response.headers.get("x-request-id"),
        status_code=response.status_code,
    )


def _call_files(sdp: str, session: dict[str, Any]) -> dict[str, Any]:
    return {
        "sdp": (None, sdp.encode(), "application/sdp"),
        "session": (None, json.dumps(session).encode(), "application/json"),
    }


def _control(call_id: str, verb: str, body: dict[str, Any] | None) -> _Spec:
    if not call_id or "/" in call_id or "?" in call_id or "#" in call_id:
        raise UpstreamError(f"Refusing a malformed call id for {verb}.")
    return _Spec("POST", f"realtime/calls/{call_id}/{verb}", json_body=body, what=f"calls.{verb}")


def _control_result(call_id: str, response: httpx.Response) -> CallControlResult:
    return CallControlResult(
        call_id=call_id,
        status_code=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )


# --- public API (sync) -----------------------------------------------------------


def create_client_secret(payload: dict[str, Any]) -> ClientSecret:
    """``POST /realtime/client_secrets`` with a body from :mod:`django_realtime.sessions`."""
    spec = _Spec("POST", "realtime/client_secrets", json_body=payload, what="client_secrets")
    return _parse_client_secret(_send(spec))


def create_call(sdp: str, session: dict[str, Any]) -> CallAnswer:
    """Relay an SDP offer with our key: multipart ``sdp`` + ``session`` to ``/realtime/calls``."""
    spec = _Spec(
        "POST",
        "realtime/calls",
        files=_call_files(sdp, session),
        headers={"Accept": "application/sdp"},
        what="calls",
    )
    return _parse_call_answer(_send(spec))


def accept_call(call_id: str, session: dict[str, Any]) -> CallControlResult:
    return _control_result(call_id, _send(_control(call_id, "accept", session)))


def reject_call(call_id: str, status_code: int | None = None) -> CallControlResult:
    body = {"status_code": status_code} if status_code is not None else None
    return _control_result(call_id, _send(_control(call_id, "reject", body)))


def refer_call(call_id: str, target_uri: str) -> CallControlResult:
    return _control_result(call_id, _send(_control(call_id, "refer", {"target_uri": target_uri})))


def hangup_call(call_id: str) -> CallControlResult:
    return _control_result(call_id, _send(_control(call_id, "hangup", None)))


# --- public API (async twins) ------------------------------------------------------


async def acreate_client_secret(payload: dict[str, Any]) -> ClientSecret:
    spec = _Spec("POST", "realtime/client_secrets", json_body=payload, what="client_secrets")
    return _parse_client_secret(await _asend(spec))


async def acreate_call(sdp: str, session: dict[str, Any]) -> CallAnswer:
    spec = _Spec(
        "POST",
        "realtime/calls",
        files=_call_files(sdp, session),
        headers={"Accept": "application/sdp"},
        what="calls",
    )
    return _parse_call_answer(await _asend(spec))


async def aaccept_call(call_id: str, session: dict[str, Any]) -> CallControlResult:
    return _control_result(call_id, await _asend(_control(call_id, "accept", session)))


async def areject_call(call_id: str, status_code: int | None = None) -> CallControlResult:
    body = {"status_code": status_code} if status_code is not None else None
    return _control_result(call_id, await _asend(_control(call_id, "reject", body)))


async def arefer_call(call_id: str, target_uri: str) -> CallControlResult:
    return _control_result(
        call_id, await _asend(_control(call_id, "refer", {"target_uri": target_uri}))
    )


async def ahangup_call(call_id: str) -> CallControlResult:
    return _control_result(call_id, await _asend(_control(call_id, "hangup", None)))
