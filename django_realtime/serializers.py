"""What the API endpoints read and write: serializers, parsers, content negotiation.

Every answer is JSON (:class:`JSONOnlyNegotiation`: no browsable API, ``Accept`` and
``?format=`` change nothing), and every JSON body is read within the budget of
:mod:`django_realtime.bodies` before anything validates it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import QueryDict
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request, is_form_media_type

from . import quotas
from .bodies import JSON_MAX_BYTES, BodyRefused, declared_length, load_json
from .conf import conf
from .exceptions import BodyTooLarge, InvalidRequest
from .models import SessionPreset


class PresetSerializer(serializers.ModelSerializer[SessionPreset]):
    """What a user may know about a preset: never its instructions or tools."""

    class Meta:
        model = SessionPreset
        fields = [
            "slug",
            "name",
            "description",
            "session_type",
            "allowed_overrides",
            "modes",
            "remaining_minutes",  # issue 10
        ]
        read_only_fields = fields

    #: ``ephemeral`` and ``relay``, or only ``relay`` with ``require_control``.
    modes = serializers.ListField(source="allowed_modes", read_only=True)
    #: Minutes left today under the usage limits (``None``: no minute limit). Issue 10.
    remaining_minutes = serializers.SerializerMethodField()

    def get_remaining_minutes(self, preset: SessionPreset) -> float | None:
        request = self.context.get("request")
        left = quotas.remaining_minutes(getattr(request, "user", None), preset)
        return None if left is None else round(left, 1)


class MintRequestSerializer(serializers.Serializer[Any]):
    preset = serializers.SlugField(required=False, allow_blank=False, max_length=64)
    overrides = serializers.DictField(required=False, default=dict)


class JSONOnlyNegotiation(BaseContentNegotiation):
    """Always the first renderer (JSON), whatever ``Accept`` or ``?format=`` say.

    DRF's default answers ``?format=api`` with the browsable HTML page and an
    unknown ``?format=`` with a 404 of its own; neither is an answer of ours.
    """

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class BudgetJSONParser(JSONParser):
    """DRF's JSON parser held to the size and depth budget (refusals are 400 ``invalid``
    or 413 ``too_large``, never a ``RecursionError``)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read(JSON_MAX_BYTES + 1) if stream is not None else b""
        try:
            return load_json(raw)
        except BodyRefused as err:
            if err.too_large:
                raise BodyTooLarge(str(err)) from err
            raise InvalidRequest(str(err)) from err


class RawOfferParser(BaseParser):
    """Hands the body through unparsed (capped at ``SDP_MAX_BYTES + 1``), whatever its type.

    DRF's session authentication reads ``request.POST`` for the CSRF check, which
    runs the parsers: with the default JSON/form parsers an ``application/sdp`` body
    was refused with 415 before the view ran. Form types parse to an empty
    ``QueryDict`` (the CSRF check looks for a token there); the view refuses every
    type but ``application/sdp`` with our own 400.
    """

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        if is_form_media_type(media_type or ""):
            return QueryDict("")
        return stream.read(conf.SDP_MAX_BYTES + 1) if stream is not None else b""


def body_too_large(meta: Any, limit: int = JSON_MAX_BYTES) -> bool:
    """Whether the declared body is over ``limit`` (a malformed length counts as over)."""
    try:
        return (declared_length(meta) or 0) > limit
    except ValueError:
        return True


class AuthFirstRequest(Request):
    """A DRF request whose CSRF check (``request.POST``) never parses a JSON body.

    DRF's ``Request.POST`` runs the parsers for every content type, so a malformed
    body failed inside authentication and its audit row named no user. Here only
    form bodies within the budget are parsed for the check, and a parse failure is
    kept for :attr:`data` to raise once the user is known.
    """

    body_error: Exception | None = None

    @property
    def POST(self) -> Any:  # type: ignore[override]
        if not is_form_media_type(self.content_type) or body_too_large(self._request.META):
            return QueryDict("")
        try:
            return super().POST
        except ParseError as err:
            self.body_error = err
            return QueryDict("")

    @property
    def data(self) -> Any:
        if self.body_error is not None:
            raise self.body_error
        return super().data
