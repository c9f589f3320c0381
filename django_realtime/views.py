"""DRF views: list presets, mint a client secret, relay an SDP offer.

Authentication and permission classes come from ``DJANGO_REALTIME`` at request
time. Every POST attempt writes exactly one audit row (see :mod:`.audit`), failures
included, and answers errors as ``{"detail": ..., "code": ...}``.
"""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse, QueryDict
from django.utils.module_loading import import_string
from rest_framework import status
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.parsers import BaseParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request, is_form_media_type
from rest_framework.response import Response
from rest_framework.views import APIView

from . import minting, signals, throttling
from .audit import Attempt
from .conf import conf
from .exceptions import InvalidRequest, PresetNotFound
from .models import AuditAction, AuditLogEntry, AuditOutcome, SessionPreset
from .serializers import MintRequestSerializer, PresetSerializer

CALL_ID_HEADER = "X-Realtime-Call-Id"


class RealtimeAPIView(APIView):
    """Settings-driven auth, our error body shape, and no caching of answers."""

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [import_string(path)() for path in conf.AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[BasePermission]:
        return [import_string(path)() for path in conf.PERMISSION_CLASSES]

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        if isinstance(exc, APIException):
            code = minting.error_code(exc) if not isinstance(exc, ValidationError) else "invalid"
            response.data = {"detail": _flatten(exc.detail), "code": code}
            wait = getattr(exc, "wait", None)
            if wait:
                response["Retry-After"] = str(int(wait))
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Also receives CallView's plain HttpResponse (SDP), which DRF passes through.
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response


def _flatten(detail: Any) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


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
        attempt: Attempt | None = getattr(self, "attempt", None)
        if attempt is not None and not attempt.finished:
            code = minting.error_code(exc) if isinstance(exc, APIException) else "error"
            entry = attempt.finish(
                minting.outcome_for(exc), error_code=code, error_message=_message(exc)
            )
            signals.secret_failed.send(
                sender=type(self),
                request=self.request,
                user=getattr(self.request, "user", None),
                preset=attempt.preset,
                audit=entry,
                outcome=entry.outcome,
                code=code,
                error=exc,
            )
        return super().handle_exception(exc)

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
        preset = (
            SessionPreset.objects.filter(slug=slug, is_active=True)
            .prefetch_related("allowed_groups")
            .first()
        )
        if preset is None:
            raise PresetNotFound(f"No active preset {slug[:64]!r}.")
        self.attempt.set_preset(preset)
        if not preset.is_available_to(self.request.user):
            raise PermissionDenied("You may not use this preset.")
        return preset


def _message(exc: Exception) -> str:
    if isinstance(exc, APIException):
        return _flatten(exc.detail)
    return type(exc).__name__


class ClientSecretView(_GateView):
    """``POST client-secrets/`` ``{preset?, overrides?}`` -> 201 with a short-lived secret."""

    action_name = AuditAction.MINT

    def post(self, request: Request) -> Response:
        body = MintRequestSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        preset = self.resolve_preset(body.validated_data.get("preset"))
        overrides = minting.validated_overrides(preset, body.validated_data.get("overrides"))
        throttling.check(request._request, preset)
        minted = minting.mint(preset, overrides, self.attempt)
        entry = self.succeed(preset)
        secret = minted.secret
        return Response(
            {
                "value": secret.value,
                "expires_at": secret.expires_at,
                "preset": preset.slug,
                "session_type": preset.session_type,
                "model": entry.model,
                "connect_url": conf.CONNECT_URL,
                "session": secret.session or minted.session_sent,
            },
            status=status.HTTP_201_CREATED,
        )


class RawOfferParser(BaseParser):
    """Hands the body through unparsed (capped at ``SDP_MAX_BYTES + 1``), whatever its type.

    DRF's session authentication reads ``request.POST`` for the CSRF check, which
    runs the parsers: with the default JSON/form parsers an ``application/sdp`` body
    was refused with 415 before the view ran. Form types parse to an empty
    ``QueryDict`` (the CSRF check looks for a token there); :func:`_read_offer`
    refuses every type but ``application/sdp`` with our own 400.
    """

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        if is_form_media_type(media_type or ""):
            return QueryDict("")
        return stream.read(conf.SDP_MAX_BYTES + 1) if stream is not None else b""


class CallView(_GateView):
    """``POST calls/?preset=slug`` with an ``application/sdp`` offer (relay mode).

    The server posts the offer with its own key, so the browser never holds one.
    Answers 201 with the answer SDP and the call id in ``X-Realtime-Call-Id``.
    """

    action_name = AuditAction.CALL
    parser_classes = [RawOfferParser]

    def post(self, request: Request) -> HttpResponse:
        preset = self.resolve_preset(request.query_params.get("preset"))
        overrides = minting.validated_overrides(preset, _query_overrides(request))
        sdp = _read_offer(request)
        throttling.check(request._request, preset)
        relayed = minting.relay(preset, overrides, sdp, self.attempt)
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
        return json.loads(raw)
    except ValueError as err:
        raise InvalidRequest("overrides must be URL-encoded JSON.") from err


def _read_offer(request: Request) -> str:
    """The raw SDP offer, size-capped, checked to have an audio section."""
    content_type = (request.content_type or "").split(";", 1)[0].strip().lower()
    if content_type != "application/sdp":
        raise InvalidRequest("Send the SDP offer with Content-Type: application/sdp.")
    limit = conf.SDP_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
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
    lines = sdp.replace("\r\n", "\n").split("\n")
    if (
        not lines
        or lines[0].strip() != "v=0"
        or not any(line.startswith("m=audio ") for line in lines)
    ):
        raise InvalidRequest("The body is not an SDP offer with an audio section.")
    return sdp
