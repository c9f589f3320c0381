from __future__ import annotations

import json
import re
from unittest import mock

import pytest
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory, SimpleTestCase, override_settings
from django.urls import include, path

from django_realtime.templatetags.realtime import (
    realtime_config,
    realtime_script_html,
    realtime_widget_html,
)


def _stub(request):  # pragma: no cover - never requested, only reversed
    return HttpResponse()


# The tags only reverse URL names, so these tests don't depend on the views module.
urlpatterns = [
    path(
        "realtime/",
        include(
            (
                [
                    path("presets/", _stub, name="presets"),
                    path("client-secrets/", _stub, name="client-secrets"),
                    path("calls/", _stub, name="calls"),
                ],
                "django_realtime",
            )
        ),
    )
]

CONFIG = (
    '<script id="django-realtime-config" type="application/json">'
    '{"endpoints": {"presets": "/realtime/presets/", "clientSecrets": "/realtime/client-secrets/", '
    '"calls": "/realtime/calls/"}, "csrfCookieName": "csrftoken", "csrfHeaderName": "X-CSRFToken"'
    "%s}</script>"
)
CSS = '<link rel="stylesheet" href="/static/django_realtime/realtime.css">'
JS = '<script src="/static/django_realtime/realtime.js" defer></script>'
JS_NONCE = '<script src="/static/django_realtime/realtime.js" defer nonce="%s"></script>'


def render(source: str, **context: object) -> str:
    return Template("{% load realtime %}" + source).render(Context(context))


def widget(preset: str, mode: str, label: str, extra: str = "") -> str:
    return (
        f'<section class="realtime-widget" data-realtime-widget data-preset="{preset}" '
        f'data-mode="{mode}"{extra} data-state="idle" aria-label="{label}">\n'
        '  <div class="realtime-widget__controls">\n'
        '    <button type="button" class="realtime-widget__start" data-realtime-start '
        'data-label-start="Start" data-label-stop="Stop">Start</button>\n'
        '    <button type="button" class="realtime-widget__mute" data-realtime-mute '
        'aria-pressed="false" disabled>Mute</button>\n'
        "  </div>\n"
        '  <p class="realtime-widget__status" data-realtime-status role="status" '
        'aria-live="polite"></p>\n'
        '  <ol class="realtime-widget__transcript" data-realtime-transcript '
        'aria-label="Transcript" data-label-user="You" data-label-assistant="Assistant"></ol>\n'
        '  <div class="realtime-widget__error" data-realtime-error role="alert" hidden>\n'
        '    <p class="realtime-widget__error-message" data-realtime-error-message></p>\n'
        '    <button type="button" class="realtime-widget__retry" data-realtime-retry>'
        "Retry</button>\n"
        "  </div>\n"
        '  <audio class="realtime-widget__audio" data-realtime-audio autoplay playsinline>'
        "</audio>\n"
        "</section>\n"
    )


def config_of(html: str) -> dict[str, object]:
    match = re.search(
        r'<script id="django-realtime-config" type="application/json">(.*?)</script>', html
    )
    assert match
    return json.loads(match.group(1))


@override_settings(ROOT_URLCONF=__name__)
class RealtimeScriptTests(SimpleTestCase):
    def test_without_request(self):
        assert render("{% realtime_script %}") == CONFIG % "" + CSS + JS

    def test_with_request_adds_csrf_token(self):
        request = RequestFactory().get("/")
        with mock.patch(
            "django_realtime.templatetags.realtime.get_token", return_value="tok123"
        ) as get_token:
            html = render("{% realtime_script %}", request=request)
        get_token.assert_called_once_with(request)
        assert html == CONFIG % ', "csrfToken": "tok123"' + CSS + JS

    def test_csrf_token_is_a_real_token(self):
        request = RequestFactory().get("/")
        token = config_of(render("{% realtime_script %}", request=request))["csrfToken"]
        assert isinstance(token, str)
        assert len(token) == 64
        assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True  # the response will set it

    def test_nonce_from_context(self):
        html = render("{% realtime_script %}", csp_nonce="n0nce")
        assert html == CONFIG % "" + CSS + JS_NONCE % "n0nce"

    def test_nonce_from_request_django_csp(self):
        request = RequestFactory().get("/")
        request.csp_nonce = "fromrequest"
        with mock.patch("django_realtime.templatetags.realtime.get_token", return_value="t"):
            html = render("{% realtime_script %}", request=request)
        assert html == CONFIG % ', "csrfToken": "t"' + CSS + JS_NONCE % "fromrequest"

    def test_context_nonce_wins_over_request(self):
        request = RequestFactory().get("/")
        request.csp_nonce = "fromrequest"
        with mock.patch("django_realtime.templatetags.realtime.get_token", return_value="t"):
            html = render("{% realtime_script %}", request=request, csp_nonce="fromcontext")
        assert html.endswith(JS_NONCE % "fromcontext")

    def test_empty_nonce_is_no_nonce(self):
        assert render("{% realtime_script %}", csp_nonce="") == CONFIG % "" + CSS + JS

    def test_hostile_nonce_is_escaped(self):
        html = render("{% realtime_script %}", csp_nonce='"><script>alert(1)</script>')
        assert html.endswith(
            '<script src="/static/django_realtime/realtime.js" defer '
            'nonce="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"></script>'
        )

    def test_without_css(self):
        assert render("{% realtime_script css=False %}") == CONFIG % "" + JS

    @override_settings(
        CSRF_COOKIE_NAME="</script><script>alert(1)</script>",
        CSRF_HEADER_NAME="HTTP_X_XSRF_TOKEN",
    )
    def test_hostile_config_values_stay_inside_json(self):
        html = render("{% realtime_script %}")
        assert html == (
            '<script id="django-realtime-config" type="application/json">'
            '{"endpoints": {"presets": "/realtime/presets/", "clientSecrets": '
            '"/realtime/client-secrets/", "calls": "/realtime/calls/"}, "csrfCookieName": '
            '"\\u003C/script\\u003E\\u003Cscript\\u003Ealert(1)\\u003C/script\\u003E", '
            '"csrfHeaderName": "X-XSRF-TOKEN"}</script>' + CSS + JS
        )
        assert config_of(html)["csrfCookieName"] == "</script><script>alert(1)</script>"

    def test_config_content(self):
        request = RequestFactory().get("/")
        config = realtime_config(request=request)
        assert config["endpoints"] == {
            "presets": "/realtime/presets/",
            "clientSecrets": "/realtime/client-secrets/",
            "calls": "/realtime/calls/",
        }
        assert config["csrfCookieName"] == "csrftoken"
        assert config["csrfHeaderName"] == "X-CSRFToken"
        assert isinstance(config["csrfToken"], str)
        assert "csrfToken" not in realtime_config()

    @override_settings(CSRF_COOKIE_NAME="my_csrf", CSRF_HEADER_NAME="HTTP_X_MY_TOKEN")
    def test_config_follows_settings(self):
        config = realtime_config()
        assert config["csrfCookieName"] == "my_csrf"
        assert config["csrfHeaderName"] == "X-MY-TOKEN"

    def test_plain_function(self):
        html = realtime_script_html(config={"a": "<b>"}, nonce="x", css=False)
        assert html == (
            '<script id="django-realtime-config" type="application/json">{"a": "\\u003Cb\\u003E"}'
            "</script>" + JS_NONCE % "x"
        )
        with pytest.raises(TypeError):
            realtime_script_html({"a": 1})  # type: ignore[misc]  # keyword-only


class RealtimeWidgetTests(SimpleTestCase):
    def test_default(self):
        assert render('{% realtime_widget "support" %}') == widget(
            "support", "ephemeral", "Voice assistant"
        )

    def test_relay_with_label(self):
        assert render('{% realtime_widget "support" mode="relay" label="Help desk" %}') == widget(
            "support", "relay", "Help desk"
        )

    def test_preset_from_variable(self):
        assert render("{% realtime_widget slug %}", slug="sales-bot") == widget(
            "sales-bot", "ephemeral", "Voice assistant"
        )

    def test_no_preset_uses_server_default(self):
        assert render("{% realtime_widget %}") == widget("", "ephemeral", "Voice assistant")

    def test_hostile_values_from_variables_are_escaped(self):
        html = render(
            "{% realtime_widget slug label=label %}",
            slug='x" onmouseover="alert(1)',
            label="<img src=x onerror=alert(1)>",
        )
        assert html == widget(
            "x&quot; onmouseover=&quot;alert(1)",
            "ephemeral",
            "&lt;img src=x onerror=alert(1)&gt;",
        )

    def test_hostile_literals_are_escaped(self):
        # Template string literals are SafeStrings; the tag must still treat them as data.
        html = render("{% realtime_widget '\"><script>x</script>' label='a&b' %}")
        assert html == widget("&quot;&gt;&lt;script&gt;x&lt;/script&gt;", "ephemeral", "a&amp;b")

    def test_overrides(self):
        html = render(
            "{% realtime_widget 'support' overrides=o %}",
            o={"voice": "marin", "instructions": '</section>"<x>'},
        )
        assert html == widget(
            "support",
            "ephemeral",
            "Voice assistant",
            ' data-overrides="{&quot;voice&quot;:&quot;marin&quot;,&quot;instructions&quot;:'
            '&quot;&lt;/section&gt;\\&quot;&lt;x&gt;&quot;}"',
        )

    def test_invalid_mode(self):
        with pytest.raises(ValueError, match="must be one of: ephemeral, relay"):
            render('{% realtime_widget "support" mode="websocket" %}')

    def test_plain_function(self):
        assert realtime_widget_html(preset="a", mode="relay") == widget(
            "a", "relay", "Voice assistant"
        )
        with pytest.raises(TypeError):
            realtime_widget_html("a")  # type: ignore[misc]  # keyword-only

    def test_accessibility_contract(self):
        html = render('{% realtime_widget "support" %}')
        assert '<section class="realtime-widget"' in html
        assert 'aria-label="Voice assistant"' in html
        assert 'aria-pressed="false"' in html
        assert 'role="status" aria-live="polite"' in html
        assert "<audio" in html
        assert "autoplay playsinline" in html
        assert "style=" not in html  # CSP: no inline styles
        assert not re.search(r"\son\w+=", html)  # CSP: no inline handlers
