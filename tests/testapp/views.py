"""Pages and stand-in endpoints for the browser tests: the widget as a site would embed it."""

from __future__ import annotations

import json
import secrets
import threading
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import translation

from django_realtime.conf import conf

#: What the stand-in call controller endpoints received, in order.
RECEIVED: list[dict[str, Any]] = []
#: Set to let every held ``hang`` request finish (tests set it when they are done).
RELEASE = threading.Event()


def _number(request: HttpRequest, name: str) -> float | None:
    value = request.GET.get(name)
    return float(value) if value else None


def _context(request: HttpRequest) -> dict[str, object]:
    max_lines = _number(request, "max_lines")
    return {
        "preset": request.GET.get("preset", "assistant"),
        "second_preset": request.GET.get("second_preset"),
        "mode": request.GET.get("mode", "ephemeral"),
        "mint_timeout": _number(request, "mint_timeout"),
        "sdp_timeout": _number(request, "sdp_timeout"),
        "max_lines": int(max_lines) if max_lines else None,
        "lang": translation.get_language(),
    }


def realtime_page(request: HttpRequest) -> HttpResponse:
    with translation.override(request.GET.get("lang", "en")):
        return render(request, "testapp/realtime.html", _context(request))


def realtime_csp_page(request: HttpRequest) -> HttpResponse:
    """The same page under a strict CSP: nonce'd scripts only, same-origin styles."""
    nonce = secrets.token_urlsafe(16)
    upstream = urlsplit(conf.CONNECT_URL)
    response = render(request, "testapp/realtime.html", {**_context(request), "csp_nonce": nonce})
    response["Content-Security-Policy"] = (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        "style-src 'self'; "
        f"connect-src 'self' {upstream.scheme}://{upstream.netloc}; "
        "media-src 'self' blob: mediastream:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return response


def hang(request: HttpRequest) -> HttpResponse:
    """A server that never answers in time: holds the request until released (60 s cap)."""
    RECEIVED.append({"view": "hang", "method": request.method})
    RELEASE.wait(60)
    return JsonResponse({"detail": "too late", "code": "late"}, status=504)


def html_error(request: HttpRequest) -> HttpResponse:
    """What a crashed Django (DEBUG off) or a proxy answers: a 500 page, not our JSON."""
    return HttpResponse(
        "<h1>Server Error (500)</h1>", status=500, content_type="text/html; charset=utf-8"
    )


def call_attach(request: HttpRequest) -> HttpResponse:
    """Stand-in for the call controller's attach endpoint (CSRF-protected, like the real)."""
    RECEIVED.append(
        {
            "view": "attach",
            "content_type": request.content_type,
            "body": json.loads(request.body),
            "user": request.user.get_username(),
        }
    )
    return JsonResponse({"attached": True})


def call_end(request: HttpRequest, call_id: str) -> HttpResponse:
    """Stand-in for the end endpoint: a beacon's form POST, CSRF token in a form field."""
    RECEIVED.append(
        {
            "view": "end",
            "call_id": call_id,
            "content_type": request.content_type,
            "has_token": bool(request.POST.get("csrfmiddlewaretoken")),
            "user": request.user.get_username(),
        }
    )
    return HttpResponse(status=204)
