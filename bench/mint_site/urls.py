"""The example project's URLs; under ASGI (``BENCH_ASYNC_VIEWS``) the realtime endpoints
come from ``django_realtime.async_urls``, as an ASGI site would mount them."""

from __future__ import annotations

import os

from django.urls import include, path
from example_project.urls import urlpatterns as _example

urlpatterns = list(_example)
if os.environ.get("BENCH_ASYNC_VIEWS"):
    urlpatterns = [
        path("realtime/", include("django_realtime.async_urls")),
        *[p for p in _example if not str(p.pattern).startswith("realtime/")],
    ]
