from __future__ import annotations

import json
import re
import warnings
from unittest import mock

import pytest
from django.http import HttpResponse
from django.template import Context, Template
from django.test import RequestFactory, SimpleTestCase, override_settings
from django.urls import include, path
from django.utils import translation
from django.utils.html import json_script

from django_realtime.templatetags.django_realtime import (
    realtime_config,
    realtime_script_html,
    realtime_widget_html,
    widget_messages,
    widget_status,
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

ENDPOINTS = {
    "presets": "/realtime/presets/",
    "clientSecrets": "/realtime/client-secrets/",
    "calls": "/realtime/calls/",
}


def config_html(**extra: object) -> str:
    """The config element the tag must emit: endpoints, CSRF names, strings, then extras."""
    config = {
        "endpoints": ENDPOINTS,
        "csrfCookieName": "csrftoken",
        "csrfHeaderName": "X-CSRFToken",
        "messages": widget_messages(),
        "status": widget_status(),
        "serverTools": ["spell", "whoami"],  # issue 10: the test app's registered tools
        **extra,
    }
    return str(json_script(config, "django-realtime-config"))


CSS = '<link rel="stylesheet" href="/static/django_realtime/realtime.css">'
JS = '<script src="/static/django_realtime/realtime.js" defer></script>'
JS_NONCE = '<script src="/static/django_realtime/realtime.js" defer nonce="%s"></script>'


def render(source: str, library: str = "django_realtime", **context: object) -> str:
    return Template("{% load " + library + " %}" + source).render(Context(context))


def widget(preset: str, mode: str, label: str, extra: str = "") -> str:
    return (
        f'<section class="realtime-widget" data-realtime-widget data-preset="{preset}" '
        f'data-mode="{mode}"{extra} data-state="idle" aria-label="{label}">\n'
        '  <div class="realtime-widget__controls">\n'
        '    <button type="button" class="realtime-widget__start" data-realtime-start '
        'data-label-start="Start" data-label-stop="Stop" '
        f'data-aria-start="Start: {label}" data-aria-stop="Stop: {label}" '
        f'aria-label="Start: {label}">Start</button>\n'
        '    <button type="button" class="realtime-widget__mute" data-realtime-mute '
        f'aria-pressed="false" aria-label="Mute: {label}" disabled>Mute</button>\n'
        '    <button type="button" class="realtime-widget__sound" data-realtime-sound '
        f'aria-label="Tap to enable sound: {label}" hidden>Tap to enable sound</button>\n'
        "  </div>\n"
        '  <p class="realtime-widget__status" data-realtime-status role="status" '
        'aria-live="polite" aria-atomic="true"></p>\n'
        '  <ol class="realtime-widget__transcript" data-realtime-transcript role="log" '
        f'tabindex="0" aria-label="Transcript: {label}" data-label-user="You" '
        'data-label-assistant="Assistant" data-label-interim="(interim)"></ol>\n'
        '  <div class="realtime-widget__error" data-realtime-error role="alert" hidden>\n'
        '    <p class="realtime-widget__error-message" data-realtime-error-message></p>\n'
        '    <button type="button" class="realtime-widget__retry" data-realtime-retry '
        f'aria-label="Retry: {label}">Retry</button>\n'
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
        assert render("{% realtime_script %}") == config_html() + CSS + JS

    def test_with_request_adds_csrf_token(self):
        request = RequestFactory().get("/")
        with mock.patch(
            "django_realtime.templatetags.django_realtime.get_token", return_value="tok123"
        ) as get_token:
            html = render("{% realtime_script %}", request=request)
        get_token.assert_called_once_with(request)
        assert html == config_html(csrfToken="tok123") + CSS + JS

    def test_csrf_token_is_a_real_token(self):
        request = RequestFactory().get("/")
        token = config_of(render("{% realtime_script %}", request=request))["csrfToken"]
        assert isinstance(token, str)
        assert len(token) == 64
        assert request.META["CSRF_COOKIE_NEEDS_UPDATE"] is True  # the response will set it

    def test_nonce_from_context(self):
        html = render("{% realtime_script %}", csp_nonce="n0nce")
        assert html == config_html() + CSS + JS_NONCE % "n0nce"

    def test_nonce_from_request_django_csp(self):
        request = RequestFactory().get("/")
        request.csp_nonce = "fromrequest"
        with mock.patch("django_realtime.templatetags.django_realtime.get_token", return_value="t"):
            html = render("{% realtime_script %}", request=request)
        assert html == config_html(csrfToken="t") + CSS + JS_NONCE % "fromrequest"

    def test_context_nonce_wins_over_request(self):
        request = RequestFactory().get("/")
        request.csp_nonce = "fromrequest"
        with mock.patch("django_realtime.templatetags.django_realtime.get_token", return_value="t"):
            html = render("{% realtime_script %}", request=request, csp_nonce="fromcontext")
        assert html.endswith(JS_NONCE % "fromcontext")

    def test_empty_nonce_is_no_nonce(self):
        assert render("{% realtime_script %}", csp_nonce="") == config_html() + CSS + JS

    def test_hostile_nonce_is_escaped(self):
        html = render("{% realtime_script %}", csp_nonce='"><script>alert(1)</script>')
        assert html.endswith(
            '<script src="/static/django_realtime/realtime.js" defer '
            'nonce="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"></script>'
        )

    def test_without_css(self):
        assert render("{% realtime_script css=False %}") == config_html() + JS

    @override_settings(
        CSRF_COOKIE_NAME="</script><script>alert(1)</script>",
        CSRF_HEADER_NAME="HTTP_X_XSRF_TOKEN",
    )
    def test_hostile_config_values_stay_inside_json(self):
        html = render("{% realtime_script %}")
        assert html == (
            config_html(
                csrfCookieName="</script><script>alert(1)</script>", csrfHeaderName="X-XSRF-TOKEN"
            )
            + CSS
            + JS
        )
        assert '"csrfCookieName": "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(1)' in html
        assert html.count("</script>") == 2  # the config's and the script tag's, nothing else
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
            "support", "ephemeral", "Voice assistant (support)"
        )

    def test_relay_with_label(self):
        assert render('{% realtime_widget "support" mode="relay" label="Help desk" %}') == widget(
            "support", "relay", "Help desk"
        )

    def test_preset_from_variable(self):
        assert render("{% realtime_widget slug %}", slug="sales-bot") == widget(
            "sales-bot", "ephemeral", "Voice assistant (sales-bot)"
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
            "Voice assistant (support)",
            ' data-overrides="{&quot;voice&quot;:&quot;marin&quot;,&quot;instructions&quot;:'
            '&quot;&lt;/section&gt;\\&quot;&lt;x&gt;&quot;}"',
        )

    def test_invalid_mode(self):
        with pytest.raises(ValueError, match="must be one of: ephemeral, relay"):
            render('{% realtime_widget "support" mode="websocket" %}')

    def test_plain_function(self):
        assert realtime_widget_html(preset="a", mode="relay") == widget(
            "a", "relay", "Voice assistant (a)"
        )
        with pytest.raises(TypeError):
            realtime_widget_html("a")  # type: ignore[misc]  # keyword-only

    def test_accessibility_contract(self):
        html = render('{% realtime_widget "support" %}')
        assert '<section class="realtime-widget"' in html
        assert 'aria-label="Voice assistant (support)"' in html
        assert 'aria-pressed="false"' in html
        assert 'role="status" aria-live="polite"' in html
        assert "<audio" in html
        assert "autoplay playsinline" in html
        assert "style=" not in html  # CSP: no inline styles
        assert not re.search(r"\son\w+=", html)  # CSP: no inline handlers

    def test_max_lines(self):
        html = render('{% realtime_widget "support" label="Help" max_lines=50 %}')
        assert html == widget("support", "ephemeral", "Help", ' data-max-lines="50"')

    def test_two_widgets_have_distinct_accessible_names(self):
        html = render('{% realtime_widget "support" %}{% realtime_widget "sales" %}')
        names = re.findall(r'aria-label="([^"]*)"', html)
        assert len(names) == len(set(names)) == 12, names
        assert "Start: Voice assistant (support)" in names
        assert "Start: Voice assistant (sales)" in names


class LibraryNameTests(SimpleTestCase):
    def test_django_realtime_loads_without_warning(self):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            html = render('{% realtime_widget "support" label="Help" %}')
        assert html == widget("support", "ephemeral", "Help")

    def test_realtime_is_a_deprecated_alias_with_the_same_tags(self):
        with pytest.warns(DeprecationWarning, match=r"use \{% load django_realtime %\}"):
            html = render('{% realtime_widget "support" label="Help" %}', library="realtime")
        assert html == widget("support", "ephemeral", "Help")

    def test_load_from_the_alias_also_warns(self):
        with pytest.warns(DeprecationWarning, match="deprecated"):
            template = Template('{% load realtime_widget from realtime %}{% realtime_widget "a" %}')
        assert template.render(Context()) == widget("a", "ephemeral", "Voice assistant (a)")


@override_settings(ROOT_URLCONF=__name__)
class TranslationTests(SimpleTestCase):
    def test_french_strings_reach_the_config_and_the_markup(self):
        with translation.override("fr"):
            html = render('{% realtime_script %}{% realtime_widget "support" %}')
        config = config_of(html)
        assert config["status"]["idle"] == "Prêt."
        assert config["status"]["connected"] == "Connecté. Parlez maintenant."
        assert config["messages"]["timeout"] == (
            "La connexion a pris trop de temps. Vérifiez votre réseau, puis réessayez."
        )
        assert config["messages"]["second"] == "{n} seconde"
        assert config["messages"]["seconds"] == "{n} secondes"
        assert 'aria-label="Assistant vocal (support)"' in html
        assert 'aria-label="Démarrer : Assistant vocal (support)"' in html
        assert 'data-label-interim="(provisoire)"' in html
        assert ">Démarrer</button>" in html

    def test_every_string_is_translated_to_french(self):
        english = {**widget_messages(), **widget_status()}
        with translation.override("fr"):
            french = {**widget_messages(), **widget_status()}
        assert french.keys() == english.keys()
        untranslated = [key for key in english if french[key] == english[key]]
        assert untranslated == [], untranslated


def _call_end_stub(request, call_id):  # pragma: no cover - never requested, only reversed
    return HttpResponse()


class CallControllerUrlTests(SimpleTestCase):
    def test_absent_names_are_left_out(self):
        with override_settings(ROOT_URLCONF=__name__):
            endpoints = realtime_config()["endpoints"]
        assert endpoints == ENDPOINTS

    def test_present_names_are_passed(self):
        with override_settings(ROOT_URLCONF="tests.testapp.call_urls"):
            endpoints = realtime_config()["endpoints"]
        assert endpoints["callAttach"] == "/realtime/calls/attach/"
        assert endpoints["callEnd"] == "/realtime/calls/{call_id}/end/"


@override_settings(ROOT_URLCONF=__name__)
class TimeoutTests(SimpleTestCase):
    def test_timeouts_in_milliseconds(self):
        config = config_of(render("{% realtime_script mint_timeout=2.5 sdp_timeout=10 %}"))
        assert config["timeouts"] == {"mint": 2500, "sdp": 10000}

    def test_no_timeouts_by_default(self):
        assert "timeouts" not in config_of(render("{% realtime_script %}"))
