"""The test site with the ASGI endpoints (``django_realtime.async_urls``)."""

from __future__ import annotations

from django.urls import include, path

from tests.urls import urlpatterns as _sync_urlpatterns

urlpatterns = [
    path("realtime/", include("django_realtime.async_urls")),
    *[p for p in _sync_urlpatterns if not str(p.pattern).startswith("realtime/")],
]
