"""The gate shared by the mint view, the relay view, the admin's "Test mint" and
the ``realtime_mint`` command: preset + overrides -> upstream -> audit -> signal.

Failures raise the DRF-facing exceptions of :mod:`django_realtime.exceptions`
(translated here, once, with ``raise ... from err``); the audit row is written by
the caller's :class:`~django_realtime.audit.Attempt` whatever happens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rest_framework.exceptions import APIException

from . import client, sessions
from .audit import Attempt
from .exceptions import (
    InvalidOverride,
    NotConfigured,
    RealtimeConfigurationError,
    SessionConfigError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamRateLimited,
    UpstreamTimedOut,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from .models import AuditOutcome, SessionPreset

if TYPE_CHECKING:
    pass

logger = logging.getLogger("django_realtime")

#: Retry-After we send when the API rate-limits us without saying how long.
DEFAULT_UPSTREAM_RETRY_AFTER = 10

#: DRF error code -> audit outcome.
OUTCOMES: dict[str, str] = {
    "not_authenticated": AuditOutcome.FORBIDDEN,
    "authentication_failed": AuditOutcome.FORBIDDEN,
    "permission_denied": AuditOutcome.FORBIDDEN,
    "preset_not_found": AuditOutcome.NOT_FOUND,
    "not_found": AuditOutcome.NOT_FOUND,
    "rate_limited": AuditOutcome.RATE_LIMITED,
    "throttled": AuditOutcome.RATE_LIMITED,
    "not_configured": AuditOutcome.NOT_CONFIGURED,
    "upstream_error": AuditOutcome.UPSTREAM_ERROR,
    "upstream_unavailable": AuditOutcome.UPSTREAM_UNAVAILABLE,
    "upstream_timeout": AuditOutcome.UPSTREAM_TIMEOUT,
}


@dataclass
class Minted:
    """What a successful mint hands back to the caller (the secret is in ``secret``)."""

    preset: SessionPreset
    secret: client.ClientSecret = field(repr=False)
    session_sent: dict[str, Any]


@dataclass
class Relayed:
    preset: SessionPreset
    answer: client.CallAnswer
    session_sent: dict[str, Any]


def error_code(exc: APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "invalid") or "invalid"


def outcome_for(exc: BaseException) -> str:
    if isinstance(exc, APIException):
        return OUTCOMES.get(error_code(exc), AuditOutcome.INVALID)
    return AuditOutcome.ERROR


def validated_overrides(preset: SessionPreset, overrides: Any) -> dict[str, Any]:
    try:
        return sessions.validate_overrides(preset, overrides)
    except SessionConfigError as err:
        raise InvalidOverride(str(err)) from err


def mint(
    preset: SessionPreset,
    overrides: dict[str, Any],
    attempt: Attempt,
) -> Minted:
    """Mint one client secret for ``preset`` (overrides already validated)."""
    attempt.set_preset(preset)
    payload = sessions.build_client_secret_request(preset, overrides)
    attempt.session_payload = payload["session"]
    try:
        secret = client.create_client_secret(payload)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err
    attempt.set_upstream(status=secret.status_code, request_id=secret.request_id)
    attempt.set_secret(secret.value, secret.expires_at)
    return Minted(preset=preset, secret=secret, session_sent=payload["session"])


def relay(
    preset: SessionPreset,
    overrides: dict[str, Any],
    sdp: str,
    attempt: Attempt,
) -> Relayed:
    """Forward a browser's SDP offer with our key (multipart ``sdp`` + ``session``)."""
    attempt.set_preset(preset)
    session = sessions.build_session(preset, overrides)
    attempt.session_payload = session
    try:
        answer = client.create_call(sdp, session)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err
    attempt.set_upstream(status=answer.status_code, request_id=answer.request_id)
    return Relayed(preset=preset, answer=answer, session_sent=session)


def _translate(err: UpstreamError | RealtimeConfigurationError, attempt: Attempt) -> APIException:
    """Upstream/config failure -> the error the browser sees (never the upstream body)."""
    if isinstance(err, RealtimeConfigurationError):
        logger.error("Realtime minting is not configured: %s", err)
        return NotConfigured()
    attempt.set_upstream_error(err)
    if isinstance(err, UpstreamTimeout):
        logger.warning("Realtime API timeout: %s", err)
        return UpstreamTimedOut()
    if isinstance(err, UpstreamRateLimited):
        logger.warning("Realtime API rate limited this site: %s", err)
        wait = err.retry_after if err.retry_after else DEFAULT_UPSTREAM_RETRY_AFTER
        return UpstreamUnavailable(wait=max(1, round(wait)))
    if isinstance(err, UpstreamAuthenticationError):
        # client.py already logged the ERROR for the operator.
        return UpstreamFailed()
    logger.warning("Realtime API failure: %s body=%.500r", err, err.body)
    return UpstreamFailed()
