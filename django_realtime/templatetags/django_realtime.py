"""``{% load django_realtime %}``: the browser bootstrap.

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
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join, json_script
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext

from ..tools import registry

register = template.Library()

CONFIG_ELEMENT_ID = "django-realtime-config"
MODES = ("ephemeral", "relay")
#: realtime.js replaces this in ``endpoints.callEnd`` with the call id.
CALL_ID_PLACEHOLDER = "{call_id}"
# Reversed in place of a call id, then swapped for the placeholder: it matches a
# ``<str:...>``, ``<slug:...>`` or ``rtc_\w+`` converter.
_CALL_ID_SENTINEL = "rtc_0call0id0"


def csrf_header_name() -> str:
    """The header name the browser sends, from ``settings.CSRF_HEADER_NAME`` (a META key)."""
    meta = str(settings.CSRF_HEADER_NAME)
    if meta == "HTTP_X_CSRFTOKEN":  # Django's default, spelt as Django's docs spell it
        return "X-CSRFToken"
    return meta.removeprefix("HTTP_").replace("_", "-")


def widget_messages() -> dict[str, str]:
    """The error sentences realtime.js shows, in the active language (keys: error codes)."""
    return {
        "unsupported": gettext(
            "This browser cannot make voice calls here (WebRTC and a secure https page are needed)."
        ),
        "microphone_denied": gettext(
            "Microphone access is blocked. Allow the microphone for this site, then retry."
        ),
        "microphone_missing": gettext("No microphone was found. Connect one, then retry."),
        "microphone_error": gettext(
            "The microphone could not be started. Close other apps using it, then retry."
        ),
        "microphone_ended": gettext(
            "The microphone stopped (unplugged, or taken by another app). Retry to continue."
        ),
        "not_authenticated": gettext("You are signed out. Sign in, then retry."),
        "permission_denied": gettext("You may not use this voice assistant."),
        "preset_not_found": gettext("This voice assistant is not available."),
        "rate_limited": gettext("Too many attempts. Try again in a moment."),
        "rate_limited_in": gettext("Too many attempts. Try again in {s}."),
        "second": ngettext("{n} second", "{n} seconds", 1),
        "seconds": ngettext("{n} second", "{n} seconds", 2),
        "not_configured": gettext("Voice calls are not configured on this site."),
        "server_error": gettext("This site's server failed (HTTP {status}). Try again later."),
        "upstream_error": gettext("The voice service failed. Try again in a moment."),
        "upstream_unavailable": gettext("The voice service is unavailable. Try again in a moment."),
        "upstream_timeout": gettext("The voice service took too long to answer. Try again."),
        "timeout": gettext("The connection took too long. Check your network, then retry."),
        "sdp_rejected": gettext("The voice service refused the call: {m}"),
        "ice_failed": gettext(
            "The audio connection failed. Check your network or firewall, then retry."
        ),
        "network_error": gettext("Network error. Check your connection, then retry."),
        "invalid": gettext("The request was refused."),
        "failed": gettext("Could not connect."),
    }


def widget_status() -> dict[str, str]:
    """The widget's status line per session state, in the active language."""
    return {
        "idle": gettext("Ready."),
        "connecting": gettext("Connecting…"),
        "connected": gettext("Connected. Speak now."),
        "reconnecting": gettext("Connection lost. Reconnecting…"),
        "closed": gettext("Call ended."),
        "failed": gettext("Not connected."),
    }


def _optional_url(name: str, **kwargs: str) -> str | None:
    # The call controller's endpoints are optional: a site (or an older release)
    # without them still gets a working widget.
    try:
        return reverse(f"django_realtime:{name}", kwargs=kwargs or None)
    except NoReverseMatch:
        return None


def realtime_config(
    *,
    request: HttpRequest | None = None,
    mint_timeout: float | None = None,
    sdp_timeout: float | None = None,
) -> dict[str, Any]:
    """The configuration realtime.js reads from the page.

    ``mint_timeout`` / ``sdp_timeout`` (seconds) bound the secret request and the SDP
    offer; realtime.js defaults to 15 s each and reports ``timeout`` when one runs out.
    """
    endpoints: dict[str, str] = {
        name: reverse(f"django_realtime:{url_name}")
        for name, url_name in (
            ("presets", "presets"),
            ("clientSecrets", "client-secrets"),
            ("calls", "calls"),
        )
    }
    attach = _optional_url("call-attach")
    if attach:
        endpoints["callAttach"] = attach
    end = _optional_url("call-end", call_id=_CALL_ID_SENTINEL)
    if end:
        endpoints["callEnd"] = end.replace(_CALL_ID_SENTINEL, CALL_ID_PLACEHOLDER)
    config: dict[str, Any] = {
        "endpoints": endpoints,
        "csrfCookieName": settings.CSRF_COOKIE_NAME,
        "csrfHeaderName": csrf_header_name(),
        "messages": widget_messages(),
        "status": widget_status(),
        # issue 10: function calls of these tools are the server's (realtime.js ignores them)
        "serverTools": sorted(registry),
    }
    timeouts = {
        key: round(seconds * 1000)
        for key, seconds in (("mint", mint_timeout), ("sdp", sdp_timeout))
        if seconds is not None
    }
    if timeouts:
        config["timeouts"] = timeouts
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
    return format_html_join("", "{}", ((part,) for part in parts))


def realtime_widget_html(
    *,
    preset: str | None,
    mode: str = "ephemeral",
    label: str | None = None,
    overrides: dict[str, Any] | None = None,
    max_lines: int | None = None,
    remaining_minutes: float | None = None,
) -> SafeString:
    """The widget markup (template ``django_realtime/widget.html``); realtime.js wires it.

    ``label`` names the widget for assistive technology and is part of every button's
    accessible name, so several widgets on one page stay distinguishable; without it the
    preset's slug tells them apart. ``max_lines`` caps the transcript (default 200).
    """
    if mode not in MODES:
        raise ValueError(
            f"Unsupported realtime widget mode {mode!r}, must be one of: " + ", ".join(MODES)
        )
    if label is None:
        label = (
            gettext("Voice assistant (%(preset)s)") % {"preset": preset}
            if preset
            else gettext("Voice assistant")
        )
    context = {
        "preset": _data(preset or ""),
        "mode": mode,
        "label": _data(label),
        "overrides": json.dumps(overrides, separators=(",", ":")) if overrides else "",
        "max_lines": int(max_lines) if max_lines else "",
        # issue 10: shown when the user has a minute limit with this preset
        "remaining_minutes": None if remaining_minutes is None else int(remaining_minutes),
        **_quota_labels(remaining_minutes),
    }
    # Already a SafeString: the template autoescaped the data.
    return render_to_string("django_realtime/widget.html", context)


def _quota_labels(minutes: float | None) -> dict[str, str]:
    """What realtime.js needs to count the minutes down: the exact figure (unlocalized,
    for ``parseFloat``) and the sentence for one and for several, ``{n}`` the number
    (the same messages as the template's)."""
    if minutes is None:
        return {}
    singular, plural = "%(minutes)s minute left today", "%(minutes)s minutes left today"
    return {
        "quota_exact": str(round(max(0.0, minutes), 1)),
        "quota_one": ngettext(singular, plural, 1) % {"minutes": "{n}"},
        "quota_other": ngettext(singular, plural, 5) % {"minutes": "{n}"},
    }


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
def realtime_script(
    context: template.Context,
    *,
    css: bool = True,
    mint_timeout: float | None = None,
    sdp_timeout: float | None = None,
) -> SafeString:
    """The page's realtime.js bootstrap: config (in the active language), CSS and script."""
    request = context.get("request")
    return realtime_script_html(
        config=realtime_config(
            request=request if isinstance(request, HttpRequest) else None,
            mint_timeout=mint_timeout,
            sdp_timeout=sdp_timeout,
        ),
        nonce=_nonce(context),
        css=css,
    )


@register.simple_tag(takes_context=True)
def realtime_widget(
    context: template.Context,
    preset: str | None = None,
    *,
    mode: str = "ephemeral",
    label: str | None = None,
    overrides: dict[str, Any] | None = None,
    max_lines: int | None = None,
) -> SafeString:
    """A voice widget for ``preset``; see :func:`realtime_widget_html`."""
    return realtime_widget_html(
        preset=preset,
        mode=mode,
        label=label,
        overrides=overrides,
        max_lines=max_lines,
        remaining_minutes=_remaining_minutes(context, preset),
    )


def _remaining_minutes(context: template.Context, slug: str | None) -> float | None:
    """The signed-in user's minutes left today with the preset (``None``: no limit)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if not slug or not getattr(user, "is_authenticated", False):
        return None
    from ..models import SessionPreset  # the tag library loads before the app registry
    from ..quotas import remaining_minutes

    preset = SessionPreset.objects.filter(slug=slug, is_active=True).first()
    return None if preset is None else remaining_minutes(user, preset)
