"""Pages for the browser tests: the widget as a site would embed it."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from django_realtime.conf import conf


def _context(request: HttpRequest) -> dict[str, object]:
    return {
        "preset": request.GET.get("preset", "assistant"),
        "mode": request.GET.get("mode", "ephemeral"),
    }


def realtime_page(request: HttpRequest) -> HttpResponse:
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
