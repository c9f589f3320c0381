"""Signals a site can connect to. Receivers run in the request; keep them quick.

The telephony signals (``call_incoming``, ``call_accepted``...) are in
:mod:`django_realtime.sip.signals`.

Every signal is sent with ``sender`` = the view or handler class.
"""

from __future__ import annotations

import inspect
from typing import Any

from asgiref.sync import sync_to_async
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

# --- the call controller (sent from the ``realtime_worker`` process) ---------------
# Sender: ``RealtimeCall``. Receivers run in the worker's database thread: keep them quick.

#: A controller attached to a call for the first time.
#: kwargs: ``call`` (RealtimeCall).
call_started = Signal()

#: A call ended. kwargs: ``call`` (RealtimeCall, with its final counters and cost),
#: ``reason`` (an end reason: beacon, peer, max_duration, idle, quota,
#: config_violation, admin, expired), ``usage`` (dict of the eight counters).
call_ended = Signal()

#: The browser changed a locked session field. kwargs: ``call`` (RealtimeCall),
#: ``fields`` (list of field names), ``action`` ("revert" or "hangup").
call_violation = Signal()

#: One finished transcript line of a preset with ``store_transcripts`` (issue 10), sent
#: after its ``transcript`` event is stored. kwargs: ``call_id`` (the API's call id),
#: ``role`` ("user" or "assistant"), ``text``, ``item_id`` (the conversation item).
transcript_line = Signal()


async def send_from_async(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` from async code to its sync and ``async def`` receivers alike.

    Django 5.0+ has ``Signal.asend`` (sync receivers in a thread, async ones awaited).
    Django 4.2 only has ``send``, which calls every receiver as a function: an async
    receiver just returns its coroutine, never run. So on 4.2 ``send`` runs in a thread
    (sync receivers may use the ORM) and the coroutines it returns are awaited here.
    """
    asend: Any = getattr(signal, "asend", None)  # None on Django 4.2
    if asend is not None:
        await asend(sender=sender, **kwargs)
        return
    responses: list[tuple[Any, Any]] = await sync_to_async(signal.send)(sender=sender, **kwargs)
    for _receiver, response in responses:
        if inspect.isawaitable(response):
            await response
