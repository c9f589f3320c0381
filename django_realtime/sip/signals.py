"""Telephony signals, all sent with ``sender=SipCall``. Receivers run in the request."""

from __future__ import annotations

from django.dispatch import Signal

__all__ = [
    "call_accepted",
    "call_action_failed",
    "call_hangup",
    "call_incoming",
    "call_referred",
    "call_rejected",
]

#: A ``realtime.call.incoming`` created a SipCall (sent once per call, before routing).
#: kwargs: ``call`` (SipCall), ``event`` (dict).
call_incoming = Signal()

#: A call action succeeded. kwargs: ``call`` (SipCall, already updated), ``audit``
#: (AuditLogEntry), ``decision`` (a routing ``RouteDecision``, ``None`` for admin
#: actions), ``user`` (the admin user, ``None`` for webhook-driven actions).
call_accepted = Signal()
call_rejected = Signal()
call_referred = Signal()
call_hangup = Signal()

#: A call action failed. kwargs: ``call``, ``action`` ("accept", "reject", "refer" or
#: "hangup"), ``audit``, ``error`` (the exception), ``transient`` (bool: a redelivery or
#: a retry may succeed), ``decision`` (or ``None``), ``user`` (or ``None``).
call_action_failed = Signal()
