"""The gate shared by the mint view, the relay view, the admin's "Test mint" and
the ``realtime_mint`` command: preset + overrides -> upstream -> audit.

Failures raise the DRF-facing exceptions of :mod:`django_realtime.exceptions`
(translated here, once, with ``raise ... from err``); the audit row is written by
the caller's :class:`~django_realtime.audit.Attempt` whatever happens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from rest_framework.exceptions import APIException

from . import calls, client, payloads, preset_cache, quotas
from .audit import Attempt
from .exceptions import (
    InvalidOverride,
    NotConfigured,
    RealtimeConfigurationError,
    RelayRequired,
    SessionConfigError,
    UpstreamAuthenticationError,
    UpstreamError,
    UpstreamFailed,
    UpstreamTimedOut,
    UpstreamUnavailable,
)
from .models import AuditLogEntry, AuditOutcome, SessionPreset
from .overrides import validate_overrides

logger = logging.getLogger(__name__)

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
    "quota_exceeded": AuditOutcome.RATE_LIMITED,  # issue 10
    "not_configured": AuditOutcome.NOT_CONFIGURED,
    "upstream_error": AuditOutcome.UPSTREAM_ERROR,
    "upstream_unavailable": AuditOutcome.UPSTREAM_UNAVAILABLE,
    "upstream_timeout": AuditOutcome.UPSTREAM_TIMEOUT,
    "unavailable": AuditOutcome.UNAVAILABLE,
    "error": AuditOutcome.ERROR,
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


def detail_text(detail: Any) -> str:
    """A DRF error detail (string, list or dict of them) as one line of text."""
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {detail_text(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(detail_text(v) for v in detail)
    return str(detail)


def finish_failure(attempt: Attempt, exc: BaseException) -> AuditLogEntry:
    """Finish ``attempt``'s audit row for a failure (the first finish wins)."""
    if isinstance(exc, APIException):
        code, message = error_code(exc), detail_text(exc.detail)
    else:
        code, message = "error", type(exc).__name__
    return attempt.finish(outcome_for(exc), error_code=code, error_message=message)


def try_mint(preset: SessionPreset, requested: Any, attempt: Attempt) -> Minted:
    """Validate ``requested`` overrides and mint; on failure finish the audit row, re-raise.

    The one "mint, or record why not" path of the admin's test mint, the
    ``realtime_mint`` command and the mint view.
    """
    attempt.set_preset(preset)
    try:
        return mint(preset, validated_overrides(preset, requested), attempt)
    except APIException as exc:
        finish_failure(attempt, exc)
        raise


def validated_overrides(preset: SessionPreset, requested: Any) -> dict[str, Any]:
    try:
        return validate_overrides(preset, requested)
    except SessionConfigError as err:
        raise InvalidOverride(str(err)) from err


def mint(
    preset: SessionPreset,
    overrides: dict[str, Any],
    attempt: Attempt,
) -> Minted:
    """Mint one client secret for ``preset`` (overrides already validated)."""
    payload = begin_mint(preset, overrides, attempt)
    return end_mint(preset, payload, call_mint(payload, attempt), attempt)


def begin_mint(
    preset: SessionPreset, overrides: dict[str, Any], attempt: Attempt
) -> dict[str, Any]:
    """The upstream request body, with the attempt's row written ``pending`` first."""
    attempt.set_preset(preset)
    if preset.require_control:  # a client secret's call would escape the controller
        raise RelayRequired()
    _check_quotas(attempt, preset)
    payload = payloads.build_client_secret_request(preset, overrides)
    attempt.session_payload = payload["session"]
    attempt.begin()  # the row exists before the secret does (crash-safe audit)
    return payload


def _check_quotas(attempt: Attempt, preset: SessionPreset) -> None:
    """429 ``quota_exceeded`` before any upstream call; no query on a site without limits.

    Else the minutes left under the limits go on the attempt, for the mint answer.
    """
    exists = attempt.usage_limits_exist
    if exists is None:
        exists = preset_cache.usage_limits_exist()
    if exists:
        attempt.remaining_minutes = quotas.check(attempt.user, preset)


def call_mint(payload: dict[str, Any], attempt: Attempt) -> client.ClientSecret:
    """The upstream call of :func:`mint`, failures translated."""
    try:
        return client.create_client_secret(payload)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err


async def acall_mint(payload: dict[str, Any], attempt: Attempt) -> client.ClientSecret:
    """:func:`call_mint` on the event loop (no database, no thread)."""
    try:
        return await client.acreate_client_secret(payload)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err


def end_mint(
    preset: SessionPreset, payload: dict[str, Any], secret: client.ClientSecret, attempt: Attempt
) -> Minted:
    """Record what the upstream answered on the attempt (the caller finishes the row)."""
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
    session = begin_relay(preset, overrides, attempt)
    return end_relay(preset, session, call_relay(sdp, session, attempt), attempt)


def begin_relay(
    preset: SessionPreset, overrides: dict[str, Any], attempt: Attempt
) -> dict[str, Any]:
    attempt.set_preset(preset)
    _check_quotas(attempt, preset)
    session = payloads.build_session(preset, overrides)
    attempt.session_payload = session
    attempt.begin()
    return session


def call_relay(sdp: str, session: dict[str, Any], attempt: Attempt) -> client.CallAnswer:
    try:
        return client.create_call(sdp, session)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err


async def acall_relay(sdp: str, session: dict[str, Any], attempt: Attempt) -> client.CallAnswer:
    try:
        return await client.acreate_call(sdp, session)
    except (UpstreamError, RealtimeConfigurationError) as err:
        raise _translate(err, attempt) from err


def end_relay(
    preset: SessionPreset, session: dict[str, Any], answer: client.CallAnswer, attempt: Attempt
) -> Relayed:
    attempt.set_upstream(status=answer.status_code, request_id=answer.request_id)
    calls.record_relay_call(answer.call_id or "", user=attempt.user, preset=preset, session=session)
    return Relayed(preset=preset, answer=answer, session_sent=session)


def _translate(err: UpstreamError | RealtimeConfigurationError, attempt: Attempt) -> APIException:
    """Upstream/config failure -> the error the browser sees (never the upstream body)."""
    code = client.failure_code(err)
    if isinstance(err, RealtimeConfigurationError):
        logger.error("Realtime minting is not configured: %s", err)
        return NotConfigured()
    attempt.set_upstream_error(err)
    if code == "upstream_timeout":
        logger.warning("Realtime API timeout: %s", err)
        return UpstreamTimedOut()
    if code == "upstream_unavailable":
        logger.warning("Realtime API rate limited this site: %s", err)
        wait = err.retry_after if err.retry_after else DEFAULT_UPSTREAM_RETRY_AFTER
        return UpstreamUnavailable(wait=max(1, round(wait)))
    if not isinstance(err, UpstreamAuthenticationError):
        # (client already logged the key refusal at ERROR for the operator)
        logger.warning("Realtime API failure: %s body=%.500r", err, err.body)
    return UpstreamFailed()
