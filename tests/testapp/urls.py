from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("rt/", views.realtime_page, name="realtime-page"),
    path("rt/csp/", views.realtime_csp_page, name="realtime-csp-page"),
    path("rt/hang/", views.hang, name="hang"),
    path("rt/html-error/", views.html_error, name="html-error"),
]
