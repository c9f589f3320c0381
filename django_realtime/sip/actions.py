"""The four call actions: accept, reject, refer (transfer) and hangup.

Each action (:func:`accept`, :func:`reject`, :func:`refer`, :func:`hangup`) calls the
Realtime API once through :mod:`django_realtime.client`, writes exactly one
:class:`~django_realtime.models.AuditLogEntry` (``sip.accept`` ... ``sip.hangup``),
updates the :class:`~django_realtime.sip.models.SipCall` and sends a signal
(``call_accepted`` ... ``call_hangup``, or ``call_action_failed``). Failures are
returned as an :class:`ActionResult`, never raised: the caller (the webhook view,
an admin action) decides what to answer.

Which action to take for a new call is decided by :mod:`django_realtime.sip.routing`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from django_realtime import calls, client, payloads
from django_realtime.audit import Attempt
from django_realtime.exceptions import (
    RealtimeConfigurationError,
    SessionConfigError,
    UpstreamError,
)
from django_realtime.models import AuditAction, AuditLogEntry, AuditOutcome, SessionPreset

from .models import SipCall, SipCallStatus
from .routing import RouteDecision
from .signals import (
    call_accepted,
    call_action_failed,
    call_hangup,
    call_referred,
    call_rejected,
)
from .validators import DEFAULT_REJECT_STATUS

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = [
    "ActionResult",
    "accept",
    "hangup",
    "perform_decision",
    "refer",
    "reject",
]

logger = logging.getLogger(__name__)

DETAIL_MAX = 255  # SipCall.status_detail


@dataclass(frozen=True)
class ActionResult:
    """The outcome of one call action; ``audit`` is its audit row."""

    ok: bool
    action: str
    audit: AuditLogEntry
    error: Exception | None = None
    #: The failure may succeed if tried again (timeout, 5xx, 429, key refused...).
    transient: bool = False


def _failure_outcome(err: Exception) -> str:
    if isinstance(err, SessionConfigError):
        return AuditOutcome.INVALID
    return client.failure_code(err)


# --- the actions ---------------------------------------------------------------------


def accept(
    call: SipCall,
    preset: SessionPreset,
    *,
    decision: RouteDecision | None = None,
    request: HttpRequest | None = None,
    user: Any = None,
    fail_status: str | None = None,
) -> ActionResult:
    """Answer ``call`` with a realtime session built from ``preset``."""
    attempt = Attempt(AuditAction.SIP_ACCEPT, request=request, user=user)
    attempt.set_preset(preset)
    try:
        session = payloads.build_sip_accept_session(preset)
    except SessionConfigError as err:
        return _failed(call, "accept", attempt, err, decision=decision, fail_status=fail_status)
    attempt.session_payload = session
    result = _run(
        call,
        "accept",
        attempt,
        lambda: client.accept_call(call.call_id, session),
        new_status=SipCallStatus.ACCEPTED,
        detail=f"Accepted with preset {preset.slug}.",
        signal=call_accepted,
        decision=decision,
        fail_status=fail_status,
        preset=preset,
    )
    if result.ok:  # the call controller follows every accepted call
        calls.record_sip_call(call, preset, session)
    return result


def reject(
    call: SipCall,
    status_code: int | None = None,
    *,
    decision: RouteDecision | None = None,
    request: HttpRequest | None = None,
    user: Any = None,
    fail_status: str | None = None,
) -> ActionResult:
    """Decline ``call`` with a SIP status (603 Decline when ``None``)."""
    code = status_code or DEFAULT_REJECT_STATUS
    return _run(
        call,
        "reject",
        Attempt(AuditAction.SIP_REJECT, request=request, user=user),
        lambda: client.reject_call(call.call_id, code),
        new_status=SipCallStatus.REJECTED,
        detail=f"Rejected with {code}.",
        signal=call_rejected,
        decision=decision,
        fail_status=fail_status,
    )


def refer(
    call: SipCall,
    target_uri: str,
    *,
    decision: RouteDecision | None = None,
    request: HttpRequest | None = None,
    user: Any = None,
    fail_status: str | None = None,
) -> ActionResult:
    """Transfer ``call`` (SIP REFER) to a ``tel:`` or ``sip:`` URI."""
    return _run(
        call,
        "refer",
        Attempt(AuditAction.SIP_REFER, request=request, user=user),
        lambda: client.refer_call(call.call_id, target_uri),
        new_status=SipCallStatus.REFERRED,
        detail=f"Transferred to {target_uri}."[:DETAIL_MAX],
        signal=call_referred,
        decision=decision,
        fail_status=fail_status,
    )


def hangup(call: SipCall, *, request: HttpRequest | None = None, user: Any = None) -> ActionResult:
    """End ``call``. A failure leaves its status as it was."""
    return _run(
        call,
        "hangup",
        Attempt(AuditAction.SIP_HANGUP, request=request, user=user),
        lambda: client.hangup_call(call.call_id),
        new_status=SipCallStatus.ENDED,
        detail="Hung up.",
        signal=call_hangup,
    )


def perform_decision(
    call: SipCall,
    decision: RouteDecision,
    *,
    request: HttpRequest | None = None,
    user: Any = None,
) -> ActionResult:
    """Carry out a routing decision on a new call; a permanent failure marks it ``failed``."""
    kwargs: dict[str, Any] = {
        "decision": decision,
        "request": request,
        "user": user,
        "fail_status": SipCallStatus.FAILED,
    }
    if decision.action == "accept":
        if decision.preset is None:  # a RouteDecision built by hand without a preset
            raise RealtimeConfigurationError("A SIP accept decision needs a preset.")
        return accept(call, decision.preset, **kwargs)
    if decision.action == "refer":
        return refer(call, decision.target_uri, **kwargs)
    return reject(call, decision.status_code, **kwargs)


# --- shared plumbing -------------------------------------------------------------------


def _run(
    call: SipCall,
    action: str,
    attempt: Attempt,
    send: Callable[[], client.CallControlResult],
    *,
    new_status: str,
    detail: str,
    signal: Signal,
    decision: RouteDecision | None = None,
    fail_status: str | None = None,
    preset: SessionPreset | None = None,
) -> ActionResult:
    # Written before the upstream call, finished after: a crash leaves the row
    # ("pending", later "abandoned"), never nothing.
    attempt.begin(call_id=call.call_id)
    try:
        result = send()
    except (UpstreamError, RealtimeConfigurationError) as err:
        return _failed(call, action, attempt, err, decision=decision, fail_status=fail_status)
    attempt.set_upstream(status=result.status_code, request_id=result.request_id)
    audit = attempt.finish(AuditOutcome.SUCCEEDED, call_id=call.call_id)
    _update_call(call, new_status, detail, decision=decision, preset=preset)
    logger.info("SIP call %s: %s", call.call_id, detail)
    signal.send(sender=SipCall, call=call, audit=audit, decision=decision, user=attempt.user)
    return ActionResult(ok=True, action=action, audit=audit)


def _failed(
    call: SipCall,
    action: str,
    attempt: Attempt,
    err: Exception,
    *,
    decision: RouteDecision | None,
    fail_status: str | None,
) -> ActionResult:
    transient = client.is_transient(err)
    if isinstance(err, UpstreamError):
        attempt.set_upstream_error(err)
    outcome = _failure_outcome(err)
    audit = attempt.finish(
        outcome, error_code=type(err).__name__, error_message=str(err), call_id=call.call_id
    )
    # A transient failure of the routing action leaves the call "incoming", so the
    # redelivered webhook routes it again; a permanent one ends its story here.
    status = call.status if transient or fail_status is None else fail_status
    suffix = " Will retry on redelivery." if transient and fail_status else ""
    detail = f"{action} failed: {err}"[: DETAIL_MAX - len(suffix)] + suffix
    _update_call(call, status, detail, decision=decision)
    logger.warning("SIP call %s: %s failed (%s): %s", call.call_id, action, outcome, err)
    call_action_failed.send(
        sender=SipCall,
        call=call,
        action=action,
        audit=audit,
        error=err,
        transient=transient,
        decision=decision,
        user=attempt.user,
    )
    return ActionResult(ok=False, action=action, audit=audit, error=err, transient=transient)


def _update_call(
    call: SipCall,
    status: str,
    detail: str,
    *,
    decision: RouteDecision | None = None,
    preset: SessionPreset | None = None,
) -> None:
    call.status = status
    call.status_detail = detail[:DETAIL_MAX]
    fields = ["status", "status_detail", "updated_at"]
    if decision is not None:
        call.route = decision.route
        fields.append("route")
    if preset is not None:
        call.preset = preset
        fields.append("preset")
    call.save(update_fields=fields)
