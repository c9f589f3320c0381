"""The base of every API view: settings-driven authentication, JSON only, one error
shape (``{"detail", "code"}``), ``Cache-Control: no-store``, and no ATOMIC_REQUESTS."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, transaction
from django.http import Http404, HttpRequest
from django.utils.module_loading import import_string
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import (
    APIException,
    ParseError,
    ValidationError,
)
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import gate
from .conf import conf
from .exceptions import (
    BodyTooLarge,
    InternalError,
    InvalidRequest,
    Unavailable,
)
from .serializers import (
    AuthFirstRequest,
    BudgetJSONParser,
    JSONOnlyNegotiation,
)

logger = logging.getLogger(__name__)


def normalise_exception(exc: Exception) -> Exception:
    """Any failure as one of the errors our table documents (``{detail, code}``)."""
    if isinstance(exc, RequestDataTooBig):
        return BodyTooLarge()
    if isinstance(exc, ParseError):
        return InvalidRequest(gate.detail_text(exc.detail))
    if isinstance(exc, APIException | Http404 | DjangoPermissionDenied):
        return exc
    if isinstance(exc, DatabaseError):
        logger.error("Database unavailable in a realtime endpoint: %s", type(exc).__name__)
        return Unavailable()
    logger.error("Unexpected error in a realtime endpoint.", exc_info=exc)
    return InternalError()


class RealtimeAPIView(APIView):
    """Settings-driven auth, JSON only, our error body shape, and no caching of answers."""

    renderer_classes = [JSONRenderer]
    parser_classes = [BudgetJSONParser, FormParser, MultiPartParser]
    content_negotiation_class = JSONOnlyNegotiation

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # The audit row of an attempt (written before the upstream call, finished after)
        # must commit on its own: with ATOMIC_REQUESTS, an error answer rolls the
        # request's transaction back, and the record of a secret minted upstream with it.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [import_string(path)() for path in conf.AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[BasePermission]:
        return [import_string(path)() for path in conf.PERMISSION_CLASSES]

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        return AuthFirstRequest(
            request,
            parsers=self.get_parsers(),
            authenticators=self.get_authenticators(),
            negotiator=self.get_content_negotiator(),
            parser_context=self.get_parser_context(request),
        )

    def handle_exception(self, exc: Exception) -> Response:
        exc = normalise_exception(exc)
        response = super().handle_exception(exc)
        if isinstance(exc, APIException):
            # DRF's handler has already set Retry-After from ``exc.wait``.
            code = gate.error_code(exc) if not isinstance(exc, ValidationError) else "invalid"
            response.data = {"detail": gate.detail_text(exc.detail), "code": code}
        return response

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        # Also receives CallView's plain HttpResponse (SDP), which DRF passes through.
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Cache-Control"] = "no-store"
        return response
