"""DRF views: list presets, mint a client secret, relay an SDP offer.

Authentication and permission classes come from ``DJANGO_REALTIME`` at request
time. Every POST attempt writes exactly one audit row (see :mod:`.audit`), failures
included, and answers errors as ``{"detail": ..., "code": ...}``.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.db import DatabaseError
from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from rest_framework import status
from rest_framework.exceptions import (
    APIException,
    PermissionDenied,
)
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from . import gate, preset_cache, signals, throttling
from .audit import Attempt, count_refused
from .base_views import RealtimeAPIView, normalise_exception
from .bodies import BodyRefused, check_text, declared_length, load_json
from .client import CallAnswer, ClientSecret
from .conf import conf
from .exceptions import (
    BodyTooLarge,
    InvalidRequest,
    PresetNotFound,
    RateLimited,
    Unavailable,
)
from .models import AuditAction, AuditLogEntry, AuditOutcome, SessionPreset
from .serializers import (
    MintRequestSerializer,
    PresetSerializer,
    RawOfferParser,
    body_too_large,
)

logger = logging.getLogger(__name__)

CALL_ID_HEADER = "X-Realtime-Call-Id"
#: A preset slug, the whole string (``SessionPreset.slug`` is a 64-character SlugField).
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,64}")


class PresetListView(RealtimeAPIView, ListAPIView[SessionPreset]):
    """``GET presets/``: the presets this user may use."""

    serializer_class = PresetSerializer
    pagination_class = None

    def get_queryset(self) -> QuerySet[SessionPreset]:
        return SessionPreset.available_to(self.request.user).order_by("name")


class _GateView(RealtimeAPIView):
    """Shared gate: preset lookup and access, overrides, rate limit, audit on failure."""

    action_name: str = AuditAction.MINT

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Created before authentication so auth failures are audited too.
        self.attempt = Attempt(self.action_name, request=request._request)
        super().initial(request, *args, **kwargs)
        self.attempt.user = request.user

    def handle_exception(self, exc: Exception) -> Response:
        exc = normalise_exception(exc)
        try:
            refused = self._record_failure(exc)
        except DatabaseError as err:
            # Nothing half-written: the row could not be written at all; say so.
            logger.error("Could not write the audit row: %s", type(err).__name__)
            refused = Unavailable()
        return super().handle_exception(refused or exc)

    def _record_failure(self, exc: Exception) -> APIException | None:
        """Write the failure's audit row (or count it, when anonymous and over budget:
        then the error to answer instead is returned)."""
        attempt: Attempt | None = getattr(self, "attempt", None)
        if attempt is None or attempt.finished:
            return None
        if self._is_anonymous():
            refused = self._anonymous_refusal()
            if refused is not None:
                return refused  # counted, no audit row
        code = gate.error_code(exc) if isinstance(exc, APIException) else "error"
        entry = gate.finish_failure(attempt, exc)
        signals.secret_failed.send(
            sender=type(self),
            request=self.request,
            user=getattr(self.request, "_user", None),
            preset=attempt.preset,
            audit=entry,
            outcome=entry.outcome,
            code=code,
            error=exc,
        )
        return None

    def _is_anonymous(self) -> bool:
        user = getattr(self.request, "_user", None)  # never re-runs authentication
        return not getattr(user, "is_authenticated", False)

    def _anonymous_refusal(self) -> APIException | None:
        """Count an anonymous / failed-auth attempt per address; the error to answer
        without an audit row when it is over ``ANONYMOUS_RATE`` (or the cache is down)."""
        django_request = self.request._request
        try:
            wait = throttling.anonymous_wait(django_request)
        except Unavailable as err:
            count_refused(django_request)
            return err
        if wait is None:
            return None
        count_refused(django_request)
        return RateLimited(wait=wait)

    def read_body(self, request: Request) -> Any:
        """``request.data`` within the budget, text checked (after authentication)."""
        if body_too_large(request._request.META):
            raise BodyTooLarge()
        data = request.data
        try:
            check_text(dict(data.lists()) if isinstance(data, QueryDict) else data)
        except BodyRefused as err:
            raise InvalidRequest(str(err)) from err
        return data

    def succeed(self, preset: SessionPreset, *, call_id: str = "") -> AuditLogEntry:
        """Write the ``issued`` audit row and send ``secret_issued``."""
        entry = self.attempt.finish(AuditOutcome.ISSUED, call_id=call_id)
        signals.secret_issued.send(
            sender=type(self),
            request=self.request,
            user=self.request.user,
            preset=preset,
            audit=entry,
            expires_at=entry.secret_expires_at,
            call_id=call_id or None,
        )
        return entry

    def resolve_preset(self, slug: str | None) -> SessionPreset:
        slug = slug or conf.DEFAULT_PRESET
        self.attempt.preset_slug = (slug or "")[:64]
        if not slug:
            raise InvalidRequest("No preset given and no DEFAULT_PRESET configured.")
        if not SLUG_RE.fullmatch(slug):
            raise InvalidRequest("preset must be a slug (letters, digits, - and _).")
        preset, self.attempt.usage_limits_exist = preset_cache.preset_and_limits(slug)
        if preset is None:
            raise PresetNotFound(f"No active preset {slug[:64]!r}.")
        self.attempt.set_preset(preset)
        if not preset.is_available_to(self.request.user):
            raise PermissionDenied("You may not use this preset.")
        return preset


class ClientSecretView(_GateView):
    """``POST client-secrets/`` ``{preset?, overrides?}`` -> 201 with a short-lived secret."""

    action_name = AuditAction.MINT

    def post(self, request: Request) -> Response:
        preset, payload = self.before_upstream(request)
        return self.after_upstream((preset, payload), gate.call_mint(payload, self.attempt))

    def before_upstream(self, request: Request) -> tuple[SessionPreset, dict[str, Any]]:
        """Everything up to the upstream call: body, preset, limits, the pending row."""
        body = MintRequestSerializer(data=self.read_body(request))
        body.is_valid(raise_exception=True)
        preset = self.resolve_preset(body.validated_data.get("preset"))
        overrides = gate.validated_overrides(preset, body.validated_data.get("overrides"))
        throttling.check(request._request, preset)
        return preset, gate.begin_mint(preset, overrides, self.attempt)

    def after_upstream(
        self, ready: tuple[SessionPreset, dict[str, Any]], secret: ClientSecret
    ) -> Response:
        preset, payload = ready
        minted = gate.end_mint(preset, payload, secret, self.attempt)
        entry = self.succeed(preset)
        return Response(
            {
                "value": secret.value,
                "expires_at": secret.expires_at,
                "preset": preset.slug,
                "session_type": preset.session_type,
                "model": entry.model,
                "connect_url": conf.CONNECT_URL,
                "session": secret.session or minted.session_sent,
                "remaining_minutes": self.attempt.remaining_minutes,  # issue 10
            },
            status=status.HTTP_201_CREATED,
        )


class CallView(_GateView):
    """``POST calls/?preset=slug`` with an ``application/sdp`` offer (relay mode).

    The server posts the offer with its own key, so the browser never holds one.
    Answers 201 with the answer SDP and the call id in ``X-Realtime-Call-Id``.
    """

    action_name = AuditAction.CALL
    parser_classes = [RawOfferParser]

    def post(self, request: Request) -> HttpResponse:
        ready = self.before_upstream(request)
        return self.after_upstream(ready, gate.call_relay(ready[1], ready[2], self.attempt))

    def before_upstream(self, request: Request) -> tuple[SessionPreset, str, dict[str, Any]]:
        preset = self.resolve_preset(request.query_params.get("preset"))
        overrides = gate.validated_overrides(preset, _query_overrides(request))
        sdp = _read_offer(request)
        throttling.check(request._request, preset)
        return preset, sdp, gate.begin_relay(preset, overrides, self.attempt)

    def after_upstream(
        self, ready: tuple[SessionPreset, str, dict[str, Any]], answer: CallAnswer
    ) -> HttpResponse:
        preset, _sdp, session = ready
        relayed = gate.end_relay(preset, session, answer, self.attempt)
        call_id = relayed.answer.call_id or ""
        self.succeed(preset, call_id=call_id)
        response = HttpResponse(
            relayed.answer.sdp, status=status.HTTP_201_CREATED, content_type="application/sdp"
        )
        if call_id:
            response[CALL_ID_HEADER] = call_id
        return response


def _query_overrides(request: Request) -> Any:
    raw = request.query_params.get("overrides")
    if not raw:
        return {}
    try:
        return load_json(raw)
    except BodyRefused as err:
        raise InvalidRequest(f"overrides must be URL-encoded JSON: {err}") from err


def _read_offer(request: Request) -> str:
    """The raw SDP offer, size-capped, checked to have an audio section."""
    content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if content_type != "application/sdp":
        raise InvalidRequest("Send the SDP offer with Content-Type: application/sdp.")
    limit = conf.SDP_MAX_BYTES
    try:
        declared = declared_length(request.META) or 0
    except ValueError:
        declared = 0  # read what came; the cap below still holds
    if declared > limit:
        raise InvalidRequest(f"The SDP offer is larger than {limit} bytes.")
    data: Any = request.data  # RawOfferParser: the body's first SDP_MAX_BYTES + 1 bytes
    raw = data if isinstance(data, bytes) else b""
    if len(raw) > limit:
        raise InvalidRequest(f"The SDP offer is larger than {limit} bytes.")
    try:
        sdp = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InvalidRequest("The SDP offer is not UTF-8 text.") from err
    if "\x00" in sdp:
        raise InvalidRequest("The SDP offer contains a NUL byte.")
    lines = sdp.replace("\r\n", "\n").split("\n")
    if (
        not lines
        or lines[0].strip() != "v=0"
        or not any(line.startswith("m=audio ") for line in lines)
    ):
        raise InvalidRequest("The body is not an SDP offer with an audio section.")
    return sdp
