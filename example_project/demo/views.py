from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_realtime.models import SessionPreset


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """A widget for each preset this user may use, with a mode switch."""
    mode = request.GET.get("mode", "ephemeral")
    if mode not in ("ephemeral", "relay"):
        mode = "ephemeral"
    api_base = settings.DJANGO_REALTIME.get("API_BASE", "")
    return render(
        request,
        "demo/index.html",
        {
            "presets": SessionPreset.available_to(request.user),
            "mode": mode,
            "offline": api_base.startswith("http://127.0.0.1"),
        },
    )
