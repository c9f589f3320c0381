"""Recording calls for the controller, and asking a call's worker to end it.

Every channel records its call here: relay (:func:`record_relay_call`, from the gate),
SIP (:func:`record_sip_call`, on accept), ephemeral (:func:`attach_ephemeral`, when the
browser reports the call id). A ``realtime_worker`` picks a recorded call up within
``CONTROL_POLL_SECONDS``, or at once on PostgreSQL (:func:`notify_workers`: workers
``LISTEN``). :func:`request_end` is how a beacon or an admin reaches the worker that
owns a call: through a column it polls, woken the same way.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from . import client
from .audit import Attempt
from .control.wakeup import NOTIFY_CHANNEL
from .exceptions import (
    CallTaken,
    InvalidRequest,
    RealtimeConfigurationError,
    UpstreamError,
    UpstreamHTTPError,
)
from .models import AuditAction, AuditLogEntry, AuditOutcome, RealtimeCall, SessionPreset

logger = logging.getLogger(__name__)

#: The shape of a WebRTC call id as the API hands it out in ``Location``.
CALL_ID_RE = re.compile(r"rtc_[A-Za-z0-9_-]{1,124}")
#: A browser reports its call right after the SDP exchange; a secret lives at most 2 h.
MINT_LOOKBACK = timedelta(hours=2)


def _record(call_id: str, origin: str, **fields: Any) -> RealtimeCall:
    preset: SessionPreset | None = fields.get("preset")
    session: dict[str, Any] = fields.get("session") or {}
    defaults = {
        "origin": origin,
        "preset_version": preset.version if preset is not None else None,
        "model": str(session.get("model") or (preset.model if preset else "") or ""),
        **fields,
    }
    call, created = RealtimeCall.objects.get_or_create(call_id=call_id, defaults=defaults)
    if created:
        notify_workers()
    return call


def record_relay_call(
    call_id: str, *, user: Any, preset: SessionPreset, session: dict[str, Any]
) -> RealtimeCall | None:
    """A relayed call (the server saw its id in ``Location``); ``None`` without an id."""
    if not call_id:
        logger.warning("relay call without a call id: the controller cannot follow it")
        return None
    real_user = user if getattr(user, "is_authenticated", False) else None
    return _record(call_id, "relay", user=real_user, preset=preset, session=session)


def record_sip_call(sip_call: Any, preset: SessionPreset, session: dict[str, Any]) -> RealtimeCall:
    """An accepted SIP call; links the sip app's ``SipCall`` to it (one-to-one)."""
    call = _record(sip_call.call_id, "sip", preset=preset, session=session)
    if getattr(sip_call, "realtime_call_id", None) != call.pk:
        sip_call.realtime_call = call
        sip_call.save(update_fields=["realtime_call", "updated_at"])
    return call


def attach_ephemeral(call_id: Any, user: Any) -> tuple[RealtimeCall, bool]:
    """Record the call a browser opened with a client secret: ``(call, created)``.

    The preset and the expected session are those of the user's latest issued mint
    (a call without one is refused). Idempotent for the same user; a call id already
    recorded for someone else is refused (:class:`CallTaken`).
    """
    if not isinstance(call_id, str) or not CALL_ID_RE.fullmatch(call_id):
        raise InvalidRequest("call_id must be a call id of the form rtc_...")
    existing = RealtimeCall.objects.filter(call_id=call_id).first()
    if existing is not None:
        if existing.user_id != user.pk:
            raise CallTaken()
        return existing, False
    mint = (
        AuditLogEntry.objects.filter(
            user=user,
            action=AuditAction.MINT,
            outcome=AuditOutcome.ISSUED,
            created_at__gte=timezone.now() - MINT_LOOKBACK,
        )
        .select_related("preset")
        .order_by("-created_at", "-pk")
        .first()
    )
    if mint is None:
        raise InvalidRequest("No client secret was issued to you recently: nothing to attach.")
    with transaction.atomic():
        call, created = RealtimeCall.objects.get_or_create(
            call_id=call_id,
            defaults={
                "origin": "ephemeral",
                "user": user,
                "preset": mint.preset,
                "preset_version": mint.preset_version,
                "model": mint.model,
                "session": mint.session_payload or {},
            },
        )
    if not created and call.user_id != user.pk:  # lost a race to another user
        raise CallTaken()
    if created:
        notify_workers()
    return call, created


#: A beacon this soon after a call ended "by the peer" explains that end.
BEACON_GRACE = timedelta(seconds=10)


def request_end(call: RealtimeCall, reason: str) -> bool:
    """Ask the worker that owns ``call`` to hang up for ``reason``; ``False`` if the call
    is over (or an end was already asked for).

    The browser closing its connection may end the call before its beacon arrives; a
    beacon within :data:`BEACON_GRACE` of an end by the ``peer`` turns it into ``beacon``.
    """
    changed = (
        RealtimeCall.objects.filter(pk=call.pk, end_requested="")
        .exclude(status="ended")
        .update(end_requested=reason)
    )
    if changed:
        call.end_requested = reason
        notify_workers()
    if reason == "beacon":
        # After the request, not before: a worker marking the call ended by the peer
        # in between either saw the request or left an end this rewrite finds.
        RealtimeCall.objects.filter(
            pk=call.pk,
            status="ended",
            end_reason="peer",
            ended_at__gte=timezone.now() - BEACON_GRACE,
        ).update(end_reason="beacon", end_requested="beacon")
    return bool(changed)


def notify_workers() -> None:
    """Wake the workers at once on PostgreSQL (``NOTIFY``; delivered on commit)."""
    if connection.vendor != "postgresql":
        return  # the workers' poll finds it within CONTROL_POLL_SECONDS
    with connection.cursor() as cursor:
        cursor.execute(f"NOTIFY {NOTIFY_CHANNEL}")


def admin_hangup(call: RealtimeCall, *, request: Any = None, user: Any = None) -> AuditLogEntry:
    """An operator ends ``call`` (reason ``admin``); audited like the SIP actions.

    A call a worker holds is ended by that worker (through :func:`request_end`); a call
    nobody follows is hung up here, with the server key.
    """
    attempt = Attempt(AuditAction.CALL_HANGUP, request=request, user=user)
    if call.preset is not None:
        attempt.set_preset(call.preset)
    now = timezone.now()
    if call.lease_owner and call.lease_expires_at is not None and call.lease_expires_at > now:
        request_end(call, "admin")
        return attempt.finish(AuditOutcome.SUCCEEDED, call_id=call.call_id)
    try:
        result = client.hangup_call(call.call_id)
        attempt.set_upstream(status=result.status_code, request_id=result.request_id)
    except (UpstreamError, RealtimeConfigurationError) as err:
        gone = isinstance(err, UpstreamHTTPError) and err.status_code == 404
        if isinstance(err, UpstreamError):
            attempt.set_upstream_error(err)
        if not gone:  # a 404 means the call is over already: record its end below
            return attempt.finish(
                client.failure_code(err),
                error_code=type(err).__name__,
                error_message=str(err),
                call_id=call.call_id,
            )
    RealtimeCall.objects.filter(pk=call.pk).exclude(status="ended").update(
        status="ended",
        end_reason="admin",
        ended_at=now,
        end_requested="admin",
        lease_owner="",
        lease_expires_at=None,
    )
    return attempt.finish(AuditOutcome.SUCCEEDED, call_id=call.call_id)
