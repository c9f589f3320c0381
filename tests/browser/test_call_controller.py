"""The browser's half of the call controller: attach after an ephemeral connect, end by
beacon on pagehide. The endpoints are the test app's recording stand-ins, reachable under
the ``django_realtime:call-attach`` / ``call-end`` names (tests/testapp/call_urls.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from tests.browser.test_widget import wait_until

pytestmark = pytest.mark.browser


@pytest.fixture
def call_urls() -> Any:
    with override_settings(ROOT_URLCONF="tests.testapp.call_urls"):
        yield


def received(log: list[dict[str, Any]], view: str) -> list[dict[str, Any]]:
    return [entry for entry in log if entry["view"] == view]


def leave_page(rt: Any) -> None:
    """Navigate away (pagehide), to another page of the same site."""
    rt.page.goto(rt.base_url + "/rt/?preset=assistant")


def test_ephemeral_call_is_attached_then_ended_by_beacon(
    browser, open_page, realtime_fake, make_preset, call_urls, testapp_received
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    assert rt.page.evaluate("DjangoRealtime.config.endpoints.callEnd") == (
        "/realtime/calls/{call_id}/end/"
    )
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    assert call.id.startswith("rtc_")
    wait_until(lambda: received(testapp_received, "attach"), what="the attach POST")
    # JSON with the CSRF header (the stand-in is CSRF-protected), as the signed-in user.
    assert received(testapp_received, "attach") == [
        {
            "view": "attach",
            "content_type": "application/json",
            "body": {"call_id": call.id},
            "user": "alice",
        }
    ]

    leave_page(rt)
    wait_until(lambda: received(testapp_received, "end"), what="the end beacon")
    assert received(testapp_received, "end") == [
        {
            "view": "end",
            "call_id": call.id,
            "content_type": "application/x-www-form-urlencoded",
            "has_token": True,  # the CSRF middleware accepted it, or the view never ran
            "user": "alice",
        }
    ]
    call.wait_for(lambda c: c.connection_state == "closed", timeout=10)


def test_relay_call_is_ended_by_beacon_with_the_header_call_id(
    browser, open_page, realtime_fake, make_preset, call_urls, testapp_received
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open(mode="relay")
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    assert rt.session("s.callId") == call.id  # from X-Realtime-Call-Id
    leave_page(rt)
    wait_until(lambda: received(testapp_received, "end"), what="the end beacon")
    assert [entry["call_id"] for entry in received(testapp_received, "end")] == [call.id]
    # The server created a relay call itself: nothing to attach.
    assert received(testapp_received, "attach") == []


def test_failed_attach_is_logged_not_fatal(
    browser, open_page, realtime_fake, make_preset, call_urls, testapp_received
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.page.evaluate("DjangoRealtime.config.endpoints.callAttach = '/rt/html-error/'")
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    wait_until(
        lambda: any("could not attach call" in message for message in rt.console),
        what="the console warning",
    )
    assert f"django-realtime: could not attach call {call.id}: HTTP 500" in rt.console
    assert rt.state == "connected"
    assert rt.session("s.error") is None


@pytest.fixture
def no_call_urls() -> Any:
    with override_settings(ROOT_URLCONF="tests.testapp.no_call_urls"):
        yield


def test_without_the_controller_urls_nothing_is_sent(
    browser, open_page, realtime_fake, make_preset, testapp_received, no_call_urls
):
    make_preset("assistant")
    rt = open_page(browser)
    requests: list[str] = []
    rt.page.on("request", lambda request: requests.append(request.url))
    rt.open()
    assert rt.page.evaluate("Object.keys(DjangoRealtime.config.endpoints).sort()") == [
        "calls",
        "clientSecrets",
        "presets",
    ]
    rt.click("start")
    rt.wait_state("connected")
    realtime_fake.wait_for_call()
    leave_page(rt)
    assert testapp_received == []
    assert not [url for url in requests if "/end/" in url or "attach" in url]
