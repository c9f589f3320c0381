"""SIP call handling: the ``realtime.call.incoming`` handler and the four call actions.

Each action (:func:`accept`, :func:`reject`, :func:`refer`, :func:`hangup`) calls the
Realtime API once through :mod:`django_realtime.client`, writes exactly one
:class:`~django_realtime.models.AuditLogEntry` (``sip.accept`` ... ``sip.hangup``),
updates the :class:`~django_realtime.models.SipCall` and sends a signal
(``call_accepted`` ... ``call_hung_up``, or ``call_action_failed``). Failures are
returned as an :class:`ActionResult`, never raised: the caller (the webhook view,
an admin action) decides what to answer.

Which action to take for a new call is decided by :mod:`django_realtime.sip_routing`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.dispatch import Signal

from . import client, sessions
from .audit import Attempt
from .exceptions import (
    RealtimeConfigurationError,
    SessionConfigError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from .models import AuditAction, AuditLogEntry, AuditOutcome, SipCall, SipCallStatus
from .signals import (
    call_accepted,
    call_action_failed,
    call_hung_up,
    call_incoming,
    call_referred,
    call_rejected,
)
from .sip_headers import get_header, normalise_headers
from .sip_routing import DEFAULT_REJECT_STATUS, RouteDecision, decide

if TYPE_CHECKING:
    from django.http import HttpRequest

    from .models import SessionPreset

__all__ = [
    "ActionResult",
    "accept",
    "handle_call_incoming",
    "hangup",
    "is_transient",
    "perform_decision",
    "refer",
    "reject",
]

logger = logging.getLogger("django_realtime.sip")

CALL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")
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


def is_transient(err: Exception) -> bool:
    """Whether retrying could help: transport failures, 408/409/429, 5xx, and 401/403
    (the operator can fix the key; until then a redelivery should keep failing loudly)."""
    if isinstance(err, RealtimeConfigurationError):
        return True
    if isinstance(err, UpstreamTimeout | UpstreamConnectionError):
        return True
    if isinstance(err, UpstreamError):
        status = err.status_code
        return status is not None and (status in (401, 403, 408, 409, 429) or status >= 500)
    return False


def _failure_outcome(err: Exception) -> str:
    if isinstance(err, RealtimeConfigurationError):
        return AuditOutcome.NOT_CONFIGURED
    if isinstance(err, SessionConfigError):
        return AuditOutcome.INVALID
    if isinstance(err, UpstreamTimeout):
        return AuditOutcome.UPSTREAM_TIMEOUT
    if is_transient(err):
        return AuditOutcome.UPSTREAM_UNAVAILABLE
    return AuditOutcome.UPSTREAM_ERROR


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
        session = sessions.build_sip_accept_session(preset)
    except SessionConfigError as err:
        return _failed(call, "accept", attempt, err, decision=decision, fail_status=fail_status)
    attempt.session_payload = session
    return _run(
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
        signal=call_hung_up,
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
    transient = is_transient(err)
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


# --- the webhook handler ----------------------------------------------------------------


def handle_call_incoming(event: dict[str, Any], webhook_id: str) -> str:
    """Handle a verified ``realtime.call.incoming``; returns a ``HandlerResult`` value.

    Runs at most once at a time per ``webhook_id`` (the view's claim). The call is
    routed only while its SipCall is ``incoming``, so a redelivery after a transient
    failure routes it again and a redelivery after success does nothing.
    """
    from .webhooks import HandlerResult  # the view imports this module lazily

    data = event.get("data")
    if not isinstance(data, dict):
        data = {}
    call_id = data.get("call_id")
    if not isinstance(call_id, str) or not CALL_ID_RE.fullmatch(call_id):
        # Signed by OpenAI yet unusable: a redelivery would be just as unusable.
        logger.error("realtime.call.incoming %s has no usable data.call_id.", webhook_id)
        return HandlerResult.DONE
    headers = normalise_headers(data.get("sip_headers"))
    call, created = SipCall.objects.get_or_create(
        call_id=call_id,
        defaults={
            "webhook_id": webhook_id,
            "from_header": get_header(headers, "from"),
            "to_header": get_header(headers, "to"),
            "sip_headers": headers,
        },
    )
    if created:
        call_incoming.send(sender=SipCall, call=call, event=event)
    if call.status != SipCallStatus.INCOMING:
        logger.info("SIP call %s is already %s; nothing to do.", call_id, call.status)
        return HandlerResult.DONE
    decision = decide(call, event)
    result = perform_decision(call, decision)
    if not result.ok and result.transient:
        return HandlerResult.RETRY
    return HandlerResult.DONE
