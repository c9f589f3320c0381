"""One error tree for the whole app.

Layers translate with ``raise ... from err``:

* ``client.py`` turns httpx failures into :class:`UpstreamError` subclasses;
* ``views.py`` turns those into the DRF exceptions at the bottom of this module;
* forged webhooks are :class:`WebhookVerificationError`, a ``SuspiciousOperation``,
  so Django answers 400 and logs on ``django.security``.

Configuration problems are :class:`RealtimeConfigurationError`, deliberately an
``ImproperlyConfigured`` and not a :class:`RealtimeError`: they are the operator's
bug, not a runtime condition to handle.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from rest_framework import status
from rest_framework.exceptions import APIException, Throttled


class RealtimeError(Exception):
    """Base of every runtime error this app raises."""


class RealtimeConfigurationError(ImproperlyConfigured):
    """A setting is missing or malformed; the message names the setting."""


class SessionConfigError(RealtimeError, ValueError):
    """A preset or a client override would build a session the API refuses.

    ``field`` names the offending field (dotted for nested ones) when known.
    """

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class UpstreamError(RealtimeError):
    """Talking to the Realtime API failed.

    Carries what the operator needs to correlate with OpenAI: the HTTP status
    (``None`` for transport failures), the upstream error ``code``/``message`` parsed
    from the ``{"error": {...}}`` body, the ``x-request-id`` and, for 429/503, the
    parsed ``Retry-After`` in seconds. The message never contains a secret.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        self.retry_after = retry_after
        self.body = body

    def __str__(self) -> str:
        parts = [super().__str__()]
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.error_code:
            parts.append(f"code={self.error_code}")
        if self.error_message:
            parts.append(f"message={self.error_message!r}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class UpstreamTimeout(UpstreamError):
    """The API did not answer within ``TIMEOUT`` (after retries)."""


class UpstreamConnectionError(UpstreamError):
    """The API could not be reached (DNS, TCP, TLS), after retries."""


class UpstreamHTTPError(UpstreamError):
    """The API answered with a non-2xx status."""


class UpstreamAuthenticationError(UpstreamHTTPError):
    """The API refused our key (401/403): an operator problem, never the user's."""


class UpstreamRateLimited(UpstreamHTTPError):
    """The API answered 429 (our organisation's limit or quota), after retries."""


class UpstreamBadResponse(UpstreamError):
    """The API answered 2xx with a body we cannot use (not JSON, no ``value``)."""


# --- call control: the sideband WebSocket (control/sideband.py) ---


class SidebandError(UpstreamError):
    """The sideband WebSocket of a live call failed."""


class CallNotFound(SidebandError):
    """The API answered ``404 call_id_not_found`` on (re)connect: the call is over."""


class SidebandClosed(SidebandError):
    """The sideband closed and re-dialling gave up; the call itself may still be live.

    ``close_code`` is the last WebSocket close code seen (``None`` when no socket
    opened), ``attempts`` how many dials were made.
    """

    def __init__(
        self, message: str, *, close_code: int | None = None, attempts: int = 0, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.close_code = close_code
        self.attempts = attempts


class SendQueueFull(SidebandError):
    """``Sideband.send_nowait`` found the bounded send queue full (nothing was queued)."""


class WebhookVerificationError(RealtimeError, SuspiciousOperation):
    """An inbound webhook failed signature, timestamp or shape checks."""


# --- DRF-facing errors: status_code, default_detail, default_code only. ---


class InvalidRequest(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "The request is invalid."
    default_code = "invalid"


class InvalidOverride(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "An override is not allowed for this preset."
    default_code = "invalid_override"


class PresetNotFound(APIException):
    status_code = status.HTTP_404_NOT_FOUND
    default_detail = "No such preset."
    default_code = "preset_not_found"


class RateLimited(Throttled):
    """429 with ``Retry-After``: DRF's ``Throttled``, whose handler sets the header from
    ``wait`` (rounded up to whole seconds, at least 1)."""

    default_detail = "Too many requests."
    default_code = "rate_limited"
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."

    def __init__(self, wait: float) -> None:
        super().__init__(wait=max(1, wait))


class UpstreamUnavailable(Throttled):
    """503: the API is rate limiting this site. ``Retry-After`` (from ``wait``) when known."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The voice service is busy."
    default_code = "upstream_unavailable"
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."

    def __init__(self, wait: float | None = None) -> None:
        if wait is None:
            super().__init__(detail="The voice service is busy. Try again shortly.")
        else:
            super().__init__(wait=max(1, wait))


class BodyTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


class Unavailable(APIException):
    """503: a service of this site (the rate-limit cache) is down; we fail closed."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The service is temporarily unavailable. Try again shortly."
    default_code = "unavailable"


class InternalError(APIException):
    """500 in our own shape: an unexpected error (logged with its traceback)."""

    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "Internal error."
    default_code = "error"


class UpstreamFailed(APIException):
    status_code = status.HTTP_502_BAD_GATEWAY
    default_detail = "The voice service failed. Try again later."
    default_code = "upstream_error"


class UpstreamTimedOut(APIException):
    status_code = status.HTTP_504_GATEWAY_TIMEOUT
    default_detail = "The voice service did not answer in time."
    default_code = "upstream_timeout"


class NotConfigured(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The voice service is not configured on this site."
    default_code = "not_configured"


class RelayRequired(APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "This preset requires relay mode (the server must see the call)."
    default_code = "relay_required"


class CallTaken(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This call id is already recorded for another user."
    default_code = "call_taken"


class QuotaExceeded(Throttled):
    """429 ``quota_exceeded``: a :class:`~django_realtime.models.UsageLimit` is used up.

    ``Retry-After`` (from ``wait``) is when a call of the user's may end, or the next day
    boundary in the site's time zone.
    """

    default_detail = "Your voice usage limit is reached."
    default_code = "quota_exceeded"
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."

    def __init__(self, wait: float, *, dimension: str = "") -> None:
        super().__init__(wait=max(1, wait))
        self.dimension = dimension
