"""The retry policy (openai-python's), one for the sync and the async send loop, and
the one classification of upstream failures every caller uses."""

from __future__ import annotations

import random

import httpx

from django_realtime.conf import conf
from django_realtime.exceptions import (
    RealtimeConfigurationError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
)

from .responses import parse_retry_after, status_error

__all__ = [
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "failure_code",
    "is_retryable_status",
    "is_transient",
]

RETRYABLE_STATUSES = frozenset({408, 409, 429})
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


def _should_retry(response: httpx.Response) -> bool:
    override = response.headers.get("x-should-retry")
    if override == "true":
        return True
    if override == "false":
        return False
    return is_retryable_status(response.status_code)


def is_retryable_status(status: int) -> bool:
    """Whether an answer with ``status`` may succeed when the request is sent again."""
    return status in RETRYABLE_STATUSES or status >= 500


def is_transient(err: Exception) -> bool:
    """Whether trying again later could help, after this client's own retries gave up:
    transport failures, the retryable statuses, and 401/403 and a missing key (the
    operator can fix those; until then a redelivery should keep failing loudly)."""
    if isinstance(err, RealtimeConfigurationError):
        return True
    if isinstance(err, UpstreamTimeout | UpstreamConnectionError):
        return True
    if isinstance(err, UpstreamError):
        status = err.status_code
        return status is not None and (status in (401, 403) or is_retryable_status(status))
    return False


def failure_code(err: Exception) -> str:
    """The one error code for an upstream (or configuration) failure, on every path:
    ``not_configured``, ``upstream_timeout``, ``upstream_unavailable`` (the API is
    rate limiting this site) or ``upstream_error``. Audit outcomes use the same values."""
    if isinstance(err, RealtimeConfigurationError):
        return "not_configured"
    if isinstance(err, UpstreamTimeout):
        return "upstream_timeout"
    if isinstance(err, UpstreamRateLimited):
        return "upstream_unavailable"
    return "upstream_error"


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


class RetryPolicy:
    """The retries of one request. The send loop asks it after each attempt what to do:
    ``None`` (the response is the answer), a delay (sleep, then send again), or it
    raises the final :class:`~django_realtime.exceptions.UpstreamError`."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.max_retries = max(0, conf.MAX_RETRIES)
        #: Retries taken so far (sent upstream as ``x-stainless-retry-count``).
        self.retries = 0

    def after_error(self, err: httpx.TransportError) -> float:
        """A transport failure: the delay before the next attempt, or raise when out of tries."""
        if self.retries < self.max_retries:
            return self._next(None)
        if isinstance(err, httpx.TimeoutException):
            raise UpstreamTimeout(f"The Realtime API timed out ({self.what}).") from err
        raise UpstreamConnectionError(
            f"Could not reach the Realtime API ({self.what}): {type(err).__name__}."
        ) from err

    def after_response(self, response: httpx.Response) -> float | None:
        """``None`` for a success; the delay before a retry; raise for a final failure."""
        if response.is_success:
            return None
        if self.retries < self.max_retries and _should_retry(response) and _retry_allowed(response):
            return self._next(response)
        raise status_error(response, self.what)

    def _next(self, response: httpx.Response | None) -> float:
        delay = _retry_delay(self.retries, response)
        self.retries += 1
        return delay
