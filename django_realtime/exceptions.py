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
from rest_framework.exceptions import APIException


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


class RateLimited(APIException):
    """429 with ``Retry-After`` (DRF's exception handler sets it from ``wait``)."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_detail = "Too many requests. Try again later."
    default_code = "rate_limited"

    def __init__(self, wait: int) -> None:
        self.wait = max(1, int(wait))
        super().__init__(f"Too many requests. Try again in {self.wait} seconds.")


class UpstreamUnavailable(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The voice service is busy. Try again shortly."
    default_code = "upstream_unavailable"

    def __init__(self, wait: int | None = None) -> None:
        self.wait = None if wait is None else max(1, int(wait))
        super().__init__()


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
