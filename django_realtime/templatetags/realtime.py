"""``{% load realtime %}``: the browser bootstrap.

The tags are thin: they read the context (request, CSP nonce) and call the plain,
keyword-only functions below, which Jinja2 users can call directly.
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.conf import settings
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, json_script
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

register = template.Library()

CONFIG_ELEMENT_ID = "django-realtime-config"
MODES = ("ephemeral", "relay")


def csrf_header_name() -> str:
    """The header name the browser sends, from ``settings.CSRF_HEADER_NAME`` (a META key)."""
    meta = str(settings.CSRF_HEADER_NAME)
    if meta == "HTTP_X_CSRFTOKEN":  # Django's default, spelt as Django's docs spell it
        return "X-CSRFToken"
    return meta.removeprefix("HTTP_").replace("_", "-")


def realtime_config(*, request: HttpRequest | None = None) -> dict[str, Any]:
    """The configuration realtime.js reads from the page."""
    config: dict[str, Any] = {
        "endpoints": {
            name: reverse(f"django_realtime:{url_name}")
            for name, url_name in (
                ("presets", "presets"),
                ("clientSecrets", "client-secrets"),
                ("calls", "calls"),
            )
        },
        "csrfCookieName": settings.CSRF_COOKIE_NAME,
        "csrfHeaderName": csrf_header_name(),
    }
    if request is not None:
        # Also covers CSRF_COOKIE_HTTPONLY / CSRF_USE_SESSIONS, where JS can't read a cookie.
        config["csrfToken"] = get_token(request)
    return config


def realtime_script_html(
    *, config: dict[str, Any], nonce: str | None = None, css: bool = True
) -> SafeString:
    """The config as ``json_script``, the stylesheet and the deferred script tag."""
    parts = [json_script(config, CONFIG_ELEMENT_ID)]
    if css:
        parts.append(
            format_html('<link rel="stylesheet" href="{}">', static("django_realtime/realtime.css"))
        )
    src = static("django_realtime/realtime.js")
    if nonce:
        parts.append(format_html('<script src="{}" defer nonce="{}"></script>', src, nonce))
    else:
        parts.append(format_html('<script src="{}" defer></script>', src))
    return mark_safe("".join(parts))  # noqa: S308 - every part is escaped above


def realtime_widget_html(
    *,
    preset: str | None,
    mode: str = "ephemeral",
    label: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> SafeString:
    """The widget markup (template ``django_realtime/widget.html``); realtime.js wires it."""
    if mode not in MODES:
        raise ValueError(
            f"Unsupported realtime widget mode {mode!r}, must be one of: " + ", ".join(MODES)
        )
    context = {
        "preset": _data(preset or ""),
        "mode": mode,
        "label": _data(label or gettext("Voice assistant")),
        "overrides": json.dumps(overrides, separators=(",", ":")) if overrides else "",
    }
    return mark_safe(render_to_string("django_realtime/widget.html", context))  # noqa: S308


def _data(value: str) -> str:
    # A plain ``str`` so autoescape applies: string literals in a template arrive as
    # SafeString, but a slug or a label is data, never markup.
    return str.__str__(str(value))


def _nonce(context: template.Context) -> str | None:
    # Django 6's csp context processor and hand-rolled views put ``csp_nonce`` in the
    # context; django-csp puts a lazy ``csp_nonce`` on the request.
    nonce = context.get("csp_nonce")
    if not nonce:
        nonce = getattr(context.get("request"), "csp_nonce", None)
    return str(nonce) if nonce else None


@register.simple_tag(takes_context=True)
def realtime_script(context: template.Context, *, css: bool = True) -> SafeString:
    request = context.get("request")
    return realtime_script_html(
        config=realtime_config(request=request if isinstance(request, HttpRequest) else None),
        nonce=_nonce(context),
        css=css,
    )


@register.simple_tag
def realtime_widget(
    preset: str | None = None,
    *,
    mode: str = "ephemeral",
    label: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> SafeString:
    return realtime_widget_html(preset=preset, mode=mode, label=label, overrides=overrides)
