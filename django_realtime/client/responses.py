"""What the Realtime API answered (pure): result types, response parsing, status errors."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from django_realtime.exceptions import (
    UpstreamAuthenticationError,
    UpstreamBadResponse,
    UpstreamHTTPError,
    UpstreamRateLimited,
)

__all__ = [
    "CallAnswer",
    "CallControlResult",
    "ClientSecret",
    "call_id_from_location",
    "control_result",
    "expiry_problem",
    "parse_call_answer",
    "parse_client_secret",
    "parse_retry_after",
    "status_error",
]

logger = logging.getLogger(__name__)


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
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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


def status_error(response: httpx.Response, what: str) -> UpstreamHTTPError:
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


def parse_client_secret(response: httpx.Response) -> ClientSecret:
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
    if not isinstance(value, str) or not value or unsafe_secret(value):
        raise UpstreamBadResponse(
            "The Realtime API answer has no usable value (client_secrets).",
            status_code=response.status_code,
            request_id=request_id,
        )
    problem = expiry_problem(expires_at)
    if problem:
        logger.warning("Unusable client secret from the Realtime API: expires_at %s.", problem)
        raise UpstreamBadResponse(
            f"The Realtime API answer has an unusable expires_at: {problem} (client_secrets).",
            status_code=response.status_code,
            request_id=request_id,
        )
    assert isinstance(expires_at, int | float)
    session = body.get("session")
    return ClientSecret(
        value=value,
        expires_at=int(expires_at),
        session=session if isinstance(session, dict) else {},
        request_id=request_id,
        status_code=response.status_code,
    )


#: Latest expiry we accept, from now: the API's own maximum lifetime is 7200 s, so
#: ten years is only a sanity bound (1e20 would overflow the audit row's datetime).
EXPIRY_HORIZON = 10 * 366 * 86400


def expiry_problem(expires_at: Any, *, now: float | None = None) -> str:
    """Why ``expires_at`` is not a usable Unix time for a fresh secret ("" if it is).

    Refuses non-numbers (booleans too), NaN and infinities, and times already past
    or beyond :data:`EXPIRY_HORIZON`: a browser must never get an expired secret, and
    a far-future time overflows the audit row's datetime.
    """
    if isinstance(expires_at, bool) or not isinstance(expires_at, int | float):
        return "not a number"
    if not math.isfinite(expires_at):
        return "not finite"
    current = time.time() if now is None else now
    if expires_at <= current:
        return "already past"
    if expires_at > current + EXPIRY_HORIZON:
        return "too far in the future"
    return ""


def unsafe_secret(value: str) -> bool:
    """A secret we cannot hand on as text (control characters, non-ASCII)."""
    return not value.isascii() or not value.isprintable()


def call_id_from_location(location: str | None) -> str | None:
    """``/v1/realtime/calls/rtc_123`` -> ``rtc_123`` (the last path segment)."""
    if not location:
        return None
    segment = location.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return segment or None


def parse_call_answer(response: httpx.Response) -> CallAnswer:
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


def control_result(call_id: str, response: httpx.Response) -> CallControlResult:
    return CallControlResult(
        call_id=call_id,
        status_code=response.status_code,
        request_id=response.headers.get("x-request-id"),
    )
