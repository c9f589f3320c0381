"""The ``realtime.call.incoming`` webhook handler, registered by the app's ``ready()``."""

from __future__ import annotations

import logging
import re
from typing import Any

from django_realtime.webhooks import HandlerResult

from .actions import perform_decision
from .headers import get_header, normalise_headers
from .models import SipCall, SipCallStatus
from .routing import decide
from .signals import call_incoming

__all__ = ["handle_call_incoming"]

logger = logging.getLogger(__name__)

CALL_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,128}")


def handle_call_incoming(event: dict[str, Any], webhook_id: str) -> str:
    """Handle a verified ``realtime.call.incoming``; returns a ``HandlerResult`` value.

    Runs at most once at a time per ``webhook_id`` (the view's claim). The call is
    routed only while its SipCall is ``incoming``, so a redelivery after a transient
    failure routes it again and a redelivery after success does nothing.
    """
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
