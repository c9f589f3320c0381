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

#: A verified webhook is being processed. Sender: ``OpenAIWebhookView``.
#: kwargs: ``event`` (dict, the parsed body), ``event_type`` (str), ``webhook_id`` (str).
#: Sent once per processed delivery of every verified event, handled or not; not for
#: a redelivery of an event already done. A receiver that raises makes the delivery
#: answer 500 and leaves the event re-processable.
webhook_received = Signal()

# The call signals below are sent with ``sender=SipCall``.

#: A ``realtime.call.incoming`` created a SipCall (sent once per call, before routing).
#: kwargs: ``call`` (SipCall), ``event`` (dict).
call_incoming = Signal()

#: A call action succeeded. kwargs: ``call`` (SipCall, already updated), ``audit``
#: (AuditLogEntry), ``decision`` (sip_routing.RouteDecision, ``None`` for admin actions),
#: ``user`` (the admin user, ``None`` for webhook-driven actions).
call_accepted = Signal()
call_rejected = Signal()
call_referred = Signal()
call_hung_up = Signal()

#: A call action failed. kwargs: ``call``, ``action`` ("accept", "reject", "refer" or
#: "hangup"), ``audit``, ``error`` (the exception), ``transient`` (bool: a redelivery or
#: a retry may succeed), ``decision`` (or ``None``), ``user`` (or ``None``).
call_action_failed = Signal()
