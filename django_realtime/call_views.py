"""The browser's side of the call controller: report an ephemeral call, end a call.

- ``POST calls/attach/`` ``{"call_id": "rtc_..."}``: a browser that connected with a
  client secret tells the server which call it holds (202); the controller attaches.
- ``POST calls/<call_id>/end/``: the page is going away (``navigator.sendBeacon`` on
  ``pagehide``, CSRF token as the ``csrfmiddlewaretoken`` form field); the worker that
  follows the call hangs up with reason ``beacon`` (202). The call's own user only.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from . import calls
from .base_views import RealtimeAPIView
from .models import RealtimeCall


def _answer(call: RealtimeCall) -> Response:
    return Response(
        {"call_id": call.call_id, "status": call.status, "end_requested": call.end_requested},
        status=status.HTTP_202_ACCEPTED,
    )


class CallAttachView(RealtimeAPIView):
    """``POST calls/attach/`` ``{call_id}`` -> 202 (idempotent for the same user)."""

    parser_classes = [JSONParser, FormParser]

    def post(self, request: Request) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        call, _ = calls.attach_ephemeral(data.get("call_id"), request.user)
        return _answer(call)


class CallEndView(RealtimeAPIView):
    """``POST calls/<call_id>/end/`` -> 202; the controller hangs up (reason ``beacon``)."""

    # A beacon's URLSearchParams body is form-encoded; the CSRF token rides in it.
    parser_classes = [FormParser, MultiPartParser, JSONParser]

    def post(self, request: Request, call_id: str) -> Response:
        user_pk: Any = request.user.pk if request.user.is_authenticated else -1
        call = RealtimeCall.objects.filter(call_id=call_id, user__pk=user_pk).first()
        if call is None:  # someone else's call looks exactly like no call
            raise NotFound("No such call of yours.", code="call_not_found")
        calls.request_end(call, "beacon")
        return _answer(call)
