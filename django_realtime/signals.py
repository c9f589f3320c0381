"""Signals a site can connect to. Receivers run in the request; keep them quick.

Every signal is sent with ``sender`` = the view or handler class.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A client secret was minted (or a relayed call created).
#: kwargs: ``request``, ``user``, ``preset`` (SessionPreset), ``audit`` (AuditLogEntry),
#: ``expires_at`` (aware datetime), ``call_id`` (str | None, relay mode only).
#: The secret value itself is never sent.
secret_issued = Signal()

#: A mint or relay attempt failed for any reason.
#: kwargs: ``request``, ``user``, ``preset`` (SessionPreset | None), ``audit``
#: (AuditLogEntry), ``outcome`` (str, an AuditOutcome value), ``code`` (the error code
#: answered to the client), ``error`` (the exception).
secret_failed = Signal()

#: A verified webhook arrived. kwargs: ``event`` (dict), ``event_type`` (str),
#: ``webhook_id`` (str). Sent for every verified event, handled or not.
webhook_received = Signal()

#: A ``realtime.call.incoming`` created a SipCall. kwargs: ``call`` (SipCall), ``event`` (dict).
call_incoming = Signal()

#: A call action succeeded. kwargs: ``call`` (SipCall), ``audit`` (AuditLogEntry).
call_accepted = Signal()
call_rejected = Signal()
call_referred = Signal()
call_hung_up = Signal()

#: A call action failed upstream. kwargs: ``call``, ``action`` (str), ``audit``, ``error``.
call_action_failed = Signal()
