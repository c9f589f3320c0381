from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("rt/", views.realtime_page, name="realtime-page"),
    path("rt/csp/", views.realtime_csp_page, name="realtime-csp-page"),
]
