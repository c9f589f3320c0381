"""``GET schema/``: the OpenAPI 3 description of this app's endpoints.

The document is written by hand and shipped as package data (``openapi.json``); a test
holds it to the views (every route, method, status and error code). The served copy
names the prefix the site mounted the app under in ``servers``, so tools such as
Swagger UI or Schemathesis can call the endpoints it describes.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views import View

SCHEMA_FILE = "openapi.json"
URL_NAME = "django_realtime:openapi-schema"
#: The schema view's own path inside ``django_realtime.urls``.
SCHEMA_PATH = "schema/"


@functools.cache
def _load() -> dict[str, Any]:
    text = resources.files("django_realtime").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def load_schema() -> dict[str, Any]:
    """A fresh copy of the shipped document (callers may change it)."""
    return copy.deepcopy(_load())


def mount_prefix() -> str:
    """Where ``django_realtime.urls`` is mounted, e.g. ``/realtime`` (no trailing slash)."""
    own = reverse(URL_NAME)
    return own.removesuffix(SCHEMA_PATH).rstrip("/")


class OpenAPISchemaView(View):
    """Serves :func:`load_schema` with ``servers`` set to the mount prefix."""

    http_method_names = ["get", "head"]

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        document = load_schema()
        document["servers"] = [{"url": mount_prefix() or "/"}]
        return JsonResponse(document, json_dumps_params={"indent": 2})
