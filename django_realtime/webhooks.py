"""The OpenAI webhook receiver: a plain Django view, verified before anything is parsed.

Order of work for each delivery (``POST realtime/webhooks/openai/``):

1. refuse bodies larger than ``WEBHOOK_MAX_BYTES`` from ``Content-Length`` before
   reading them (413 ``too_large``);
2. verify the Standard Webhooks signature over the raw bytes
   (:func:`django_realtime.signing.verify`); any failure is a
   :class:`~django_realtime.exceptions.WebhookVerificationError`, answered here with
   our own plain 400 JSON (``webhook_refused``) and logged on ``django.security``,
   whatever ``DEBUG`` says: Django's technical error page would show the frames;
3. parse the JSON (a non-JSON body is a 400 too). Nothing has touched the
   database up to here;
4. claim the ``webhook-id`` in :class:`~django_realtime.models.WebhookEvent`
   (see :func:`claim_event`): a redelivery of a handled event answers 200 and does
   nothing, a concurrent delivery of an event being handled answers 409 so OpenAI
   retries it later;
5. send :data:`~django_realtime.signals.webhook_received`, run the handler
   registered for the event type (:func:`register_handler`; the opt-in app
   :mod:`django_realtime.sip` registers ``realtime.call.incoming``), and record
   the event ``done`` (200) or, when the handler asks for a retry (a transient
   upstream failure), ``failed`` (503) so OpenAI's redelivery completes it.

Every answer carries ``Cache-Control: no-store``; errors are ``{detail, code}``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib.auth import decorators as auth_decorators
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_variables

from . import signing
from .bodies import declared_length
from .conf import conf
from .exceptions import WebhookVerificationError
from .models import WebhookEvent, WebhookEventStatus
from .signals import webhook_received

# Django 5.1+: exempt from LoginRequiredMiddleware; older versions have no such middleware.
login_not_required: Callable[[Any], Any] = getattr(
    auth_decorators, "login_not_required", lambda view_func: view_func
)

__all__ = [
    "EVENT_HANDLERS",
    "Handler",
    "HandlerResult",
    "OpenAIWebhookView",
    "claim_event",
    "finish_event",
    "processing_lease",
    "register_handler",
    "verified_body",
]

logger = logging.getLogger(__name__)
#: Django's own logger for a SuspiciousOperation of this class.
security_logger = logging.getLogger(f"django.security.{WebhookVerificationError.__name__}")


def processing_lease() -> timedelta:
    """How long a ``processing`` claim is honoured: ``PROCESSING_TIMEOUT``.

    A worker that died mid-event leaves its row ``processing``; once the longest
    processing (one upstream call with its retries) is over, a redelivery takes it
    over. The system check E016 keeps the setting above that.
    """
    return timedelta(seconds=conf.PROCESSING_TIMEOUT)


MAX_EVENT_TYPE_LENGTH = 100  # WebhookEvent.event_type


class HandlerResult:
    """What an event handler asks the view to answer."""

    DONE = "done"  #: handled (successfully or permanently failed): 200, never again
    RETRY = "retry"  #: transient failure: 503, the event stays re-processable


#: ``handler(event, webhook_id) -> HandlerResult value``.
Handler = Callable[[dict[str, Any], str], str]

#: ``event type -> handler``, filled by :func:`register_handler` (from apps' ``ready()``).
#: An event type without a handler is recorded, signalled and answered 200.
EVENT_HANDLERS: dict[str, Handler] = {}


def register_handler(event_type: str, handler: Handler) -> None:
    """Run ``handler`` for every verified ``event_type`` delivery (one handler per type;
    registering again replaces it, so a re-run ``ready()`` is harmless)."""
    EVENT_HANDLERS[event_type] = handler


# --- idempotency -------------------------------------------------------------------


def claim_event(webhook_id: str, event_type: str) -> bool:
    """Take the right to process ``webhook_id``; ``False`` if someone else has it or had it.

    Safe across threads and processes without holding a lock while the handler runs:

    * the first delivery inserts the row (``processing``); the unique constraint on
      ``webhook_id`` makes every concurrent insert but one fail;
    * a later delivery may take the row over only with one conditional ``UPDATE``
      (``failed``, or ``processing`` past :func:`processing_lease`, to ``processing``):
      the database applies it to one of the racing deliveries, the others see 0 rows.
    """
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                webhook_id=webhook_id,
                event_type=event_type[:MAX_EVENT_TYPE_LENGTH],
                status=WebhookEventStatus.PROCESSING,
            )
        return True
    except IntegrityError:
        pass
    now = timezone.now()
    retryable = Q(status=WebhookEventStatus.FAILED) | Q(
        status=WebhookEventStatus.PROCESSING, updated_at__lt=now - processing_lease()
    )
    # update() skips auto_now, hence the explicit updated_at (it restarts the lease).
    taken = WebhookEvent.objects.filter(retryable, webhook_id=webhook_id).update(
        status=WebhookEventStatus.PROCESSING, attempts=F("attempts") + 1, updated_at=now
    )
    return taken == 1


def finish_event(webhook_id: str, status: str) -> None:
    """Record the end of processing (``done`` or ``failed``)."""
    WebhookEvent.objects.filter(webhook_id=webhook_id).update(
        status=status, updated_at=timezone.now()
    )


def _event_state(webhook_id: str) -> str | None:
    return (
        WebhookEvent.objects.filter(webhook_id=webhook_id).values_list("status", flat=True).first()
    )


# --- the view ----------------------------------------------------------------------


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
# The claim must be committed before the upstream call and survive a 503; a site
# with ATOMIC_REQUESTS would otherwise wrap all of it in one transaction.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class OpenAIWebhookView(View):
    """Receives OpenAI project webhooks of every type; see :func:`register_handler`.

    Class attributes can be overridden with ``as_view(...)``, e.g. to serve two
    OpenAI projects from two URLs: ``OpenAIWebhookView.as_view(secrets=[...])``.
    ``None`` means "read the setting at request time".
    """

    http_method_names = ["post"]
    #: ``whsec_...`` secrets; default ``DJANGO_REALTIME["WEBHOOK_SECRETS"]``.
    secrets: list[str] | None = None
    #: Seconds of clock skew allowed either way; default ``WEBHOOK_TOLERANCE``.
    tolerance: int | None = None
    #: Largest body accepted; default ``WEBHOOK_MAX_BYTES``.
    max_bytes: int | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response: HttpResponseBase
        try:
            response = super().dispatch(request, *args, **kwargs)
        except WebhookVerificationError as err:
            # Our own answer: Django's would be the technical page under DEBUG.
            security_logger.error("%s", err)
            response = refusal(400, "webhook_refused", str(err))
        except Exception:
            logger.exception("Webhook processing failed.")
            response = refusal(500, "error", "Internal error.")
        response["Cache-Control"] = "no-store"
        return response

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        max_bytes = self.max_bytes if self.max_bytes is not None else conf.WEBHOOK_MAX_BYTES
        if _declared_length(request) > max_bytes:
            # Refused unread: the declared size is enough to know.
            logger.warning("Webhook refused: body larger than %s bytes.", max_bytes)
            return refusal(413, "too_large", f"The body is larger than {max_bytes} bytes.")
        body = request.body
        if len(body) > max_bytes:  # chunked bodies declare no length
            logger.warning("Webhook refused: body larger than %s bytes.", max_bytes)
            return refusal(413, "too_large", f"The body is larger than {max_bytes} bytes.")
        verified_body(body, request.headers, self.secrets, self.tolerance)
        event = _parse_event(body)
        webhook_id = request.headers[signing.HEADER_ID]
        return self.handle_event(event, webhook_id)

    def handle_event(self, event: dict[str, Any], webhook_id: str) -> HttpResponse:
        """Dedupe, signal, run the handler, record the result. ``event`` is verified."""
        event_type = event["type"]
        if not claim_event(webhook_id, event_type):
            state = _event_state(webhook_id)
            if state == WebhookEventStatus.DONE:
                logger.info("Webhook %s (%s) already handled.", webhook_id, event_type)
                return HttpResponse(status=200)
            # Another delivery of this id is being processed right now: answer
            # non-2xx so that, should that one fail, OpenAI redelivers.
            logger.info(
                "Webhook %s (%s) is being handled by another delivery.", webhook_id, event_type
            )
            return refusal(409, "webhook_in_progress", "This event is being handled; retry later.")
        result = HandlerResult.DONE
        try:
            webhook_received.send(
                sender=type(self), event=event, event_type=event_type, webhook_id=webhook_id
            )
            handler = EVENT_HANDLERS.get(event_type)
            if handler is not None:
                result = handler(event, webhook_id)
        except BaseException:
            # Leave the event re-processable, then let Django answer 500 and log it.
            finish_event(webhook_id, WebhookEventStatus.FAILED)
            raise
        if result == HandlerResult.RETRY:
            finish_event(webhook_id, WebhookEventStatus.FAILED)
            response = refusal(503, "webhook_retry", "Handling failed for now; deliver it again.")
            response["Retry-After"] = "5"
            return response
        finish_event(webhook_id, WebhookEventStatus.DONE)
        return HttpResponse(status=200)


def refusal(status: int, code: str, detail: str) -> HttpResponse:
    """A plain ``{detail, code}`` JSON answer (never a page, never a frame)."""
    return JsonResponse({"detail": detail, "code": code}, status=status)


@sensitive_variables()
def verified_body(
    body: bytes, headers: Any, secrets: list[str] | None, tolerance: int | None
) -> None:
    """Verify ``body`` with the view's secrets or ``WEBHOOK_SECRETS`` (every local of
    this frame is hidden from error reports: it holds the secrets)."""
    signing.verify(
        body,
        headers,
        secrets if secrets is not None else conf.WEBHOOK_SECRETS,
        tolerance=tolerance if tolerance is not None else conf.WEBHOOK_TOLERANCE,
    )


def _declared_length(request: HttpRequest) -> int:
    try:
        return declared_length(request.META) or 0
    except ValueError as err:
        raise WebhookVerificationError("Webhook refused: malformed Content-Length.") from err


def _parse_event(body: bytes) -> dict[str, Any]:
    """The event object; only called on a verified body."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise WebhookVerificationError("Webhook refused: the body is not JSON.") from err
    if not isinstance(event, dict) or not isinstance(event.get("type"), str) or not event["type"]:
        raise WebhookVerificationError("Webhook refused: the body is not an event object.")
    return event
