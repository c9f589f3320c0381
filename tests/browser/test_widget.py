"""The widget and realtime.js in real headless Chromium against the fake Realtime API."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from django_realtime.models import AuditLogEntry
from django_realtime.testing import FakeRealtimeAPI, PeerOptions

pytestmark = pytest.mark.browser

USER_SAID = PeerOptions().user_transcript
ASSISTANT_SAID = PeerOptions().assistant_transcript


def mints(outcome: str | None = None) -> int:
    rows = AuditLogEntry.objects.filter(action="mint")
    return (rows.filter(outcome=outcome) if outcome else rows).count()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def assert_call_flows(rt: Any, fake: FakeRealtimeAPI, *, remote_audio: bool = True) -> Any:
    """session.created, audio both ways, transcripts; returns the fake's call."""
    rt.wait_state("connected")
    rt.page.wait_for_function("() => window.__rt.events.includes('session.created')")
    call = fake.wait_for_call()
    assert call.data_channel_label == "oai-events"
    call.wait_for(lambda c: c.nonsilent_frames_received > 0, timeout=10)
    rt.page.wait_for_selector(
        "[data-realtime-transcript] li[data-role=user][data-final]", timeout=10_000
    )
    assert rt.transcript("user") == [USER_SAID]
    if remote_audio:
        assert rt.session("s.remoteTrack && s.remoteTrack.kind") == "audio"
        wait_until(lambda: rt.inbound_audio_packets() > 5, what="inbound audio packets")
        rt.page.wait_for_selector(
            "[data-realtime-transcript] li[data-role=assistant][data-final]", timeout=10_000
        )
        assert rt.transcript("assistant") == [ASSISTANT_SAID]
    return call


def stop_and_check(rt: Any, call: Any) -> None:
    rt.click("start")  # now labelled Stop
    assert rt.wait_state("closed") == "closed"
    assert rt.text("[data-realtime-start]") == "Start"
    call.wait_for(lambda c: c.connection_state == "closed", timeout=10)


def test_ephemeral_call(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    assert rt.text("[data-realtime-status]") == "Ready."
    rt.click("start")
    call = assert_call_flows(rt, realtime_fake)

    assert call.auth == "ephemeral"
    assert call.key_was_minted
    # The GA interface: the offer as application/sdp, and no beta header.
    (offer,) = realtime_fake.requests_to("/realtime/calls", "POST")
    assert offer.headers["content-type"] == "application/sdp"
    assert not [name for name in offer.headers if name.lower() == "openai-beta"]
    assert offer.text is not None
    assert offer.text.startswith("v=0")
    # Location is exposed by CORS, so the page knows the call id.
    assert rt.session("s.callId") == call.id
    assert rt.text("[data-realtime-status]") == "Connected. Speak now."
    assert rt.text("[data-realtime-start]") == "Stop"
    assert rt.recorded()["states"] == ["connecting", "connected"]

    # Mute is a toggle button: aria-pressed and the track's enabled flag follow it.
    rt.click("mute")
    assert rt.page.get_attribute("[data-realtime-mute]", "aria-pressed") == "true"
    assert rt.session("s.stream.getAudioTracks()[0].enabled") is False
    rt.click("mute")
    assert rt.page.get_attribute("[data-realtime-mute]", "aria-pressed") == "false"

    # send() goes over oai-events.
    rt.session("s.send({type: 'response.create'}), true")
    call.wait_for(lambda c: "response.create" in c.client_event_types)

    stop_and_check(rt, call)
    assert mints("issued") == 1
    assert rt.session("s.stream") is None  # the microphone is released


def test_relay_call_never_exposes_a_secret(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    responses: list[Any] = []
    requests: list[str] = []
    rt.page.on("response", lambda response: responses.append(response))
    rt.page.on("request", lambda request: requests.append(request.url))
    rt.open(mode="relay")
    rt.click("start")
    call = assert_call_flows(rt, realtime_fake)

    assert call.auth == "server"
    assert rt.session("s.callId") == call.id  # from X-Realtime-Call-Id
    assert realtime_fake.requests_to("/realtime/client_secrets") == []
    assert AuditLogEntry.objects.filter(action="call", outcome="issued").count() == 1
    assert mints() == 0
    stop_and_check(rt, call)

    # The page only ever talked to our site, and nothing it got holds an ek_ value.
    assert requests
    assert all(url.startswith(rt.base_url + "/") for url in requests), requests
    for response in responses:
        headers = response.all_headers()
        assert not any("ek_" in value for value in headers.values()), response.url
        try:
            body = response.body()
        except Exception:  # bodies of redirects etc. are unavailable
            continue
        assert b"ek_" not in body, response.url


def test_microphone_denied_mints_nothing(
    browser_without_mic, open_page, realtime_fake, make_preset
):
    make_preset("assistant")
    rt = open_page(browser_without_mic)
    rt.open()
    rt.click("start")
    assert rt.wait_state("failed") == "failed"

    assert rt.recorded()["errors"][0]["code"] == "microphone_denied"
    message = rt.text("[data-realtime-error-message]")
    assert "Microphone access is blocked" in message
    assert rt.page.is_visible("[data-realtime-error]")
    assert rt.page.is_visible("[data-realtime-retry]")
    assert rt.text("[data-realtime-status]") == "Not connected."
    # No secret minted: neither a request at the fake nor an audit row.
    assert realtime_fake.requests_to("/realtime/client_secrets") == []
    assert not realtime_fake.secrets
    assert mints() == 0


def test_rate_limited_shows_retry_time(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant", rate="1/m")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    stop_and_check(rt, call)

    rt.click("start")
    assert rt.wait_state("failed") == "failed"
    error = rt.recorded()["errors"][-1]
    assert error["code"] == "rate_limited"
    retry_after = rt.session("s.error.retryAfter")
    assert 0 < retry_after <= 60
    unit = "second" if retry_after == 1 else "seconds"
    assert rt.text("[data-realtime-error-message]") == (
        f"Too many attempts. Try again in {retry_after} {unit}."
    )
    assert mints("issued") == 1
    assert mints("rate_limited") == 1
    assert len(realtime_fake.secrets) == 1


def test_refused_offer_shows_the_api_message(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    realtime_fake.refuse_next_offer("Invalid SDP offer (fake): the audio section is malformed.")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    assert rt.wait_state("failed") == "failed"
    assert rt.session("s.error.code") == "sdp_rejected"
    assert rt.session("s.error.upstreamCode") == "invalid_offer"
    assert rt.text("[data-realtime-error-message]") == (
        "The voice service refused the call: "
        "Invalid SDP offer (fake): the audio section is malformed."
    )
    # Retry works once the API accepts offers again.
    rt.click("retry")
    assert rt.wait_state("connected", "failed") == "connected"
    assert not rt.page.is_visible("[data-realtime-error]")


def test_dropped_call_reconnects_with_a_fresh_secret(
    browser, open_page, realtime_fake, make_preset
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    first = realtime_fake.wait_for_call()
    first.wait_for(lambda c: c.connection_state == "connected")

    realtime_fake.drop_call(first.id)
    rt.page.wait_for_function("() => window.__rt.states.includes('reconnecting')", timeout=10_000)
    assert rt.wait_state("connected", "failed") == "connected"
    assert rt.recorded()["states"] == ["connecting", "connected", "reconnecting", "connected"]

    second = realtime_fake.wait_for_call()
    assert second.id != first.id
    assert rt.session("s.callId") == second.id
    assert second.client_secret != first.client_secret  # a fresh secret, not a reused one
    assert mints("issued") == 2
    assert len(realtime_fake.secrets) == 2
    second.wait_for(lambda c: c.nonsilent_frames_received > 0)
    stop_and_check(rt, second)


def test_transcription_preset(browser, open_page, realtime_fake, make_preset):
    make_preset("dictation", session_type="transcription", transcription_model="gpt-4o-transcribe")
    rt = open_page(browser)
    rt.open(preset="dictation")
    rt.click("start")
    call = assert_call_flows(rt, realtime_fake, remote_audio=False)
    assert call.session_type == "transcription"
    assert rt.session("s.sessionType") == "transcription"
    assert rt.session("s.remoteTrack === null") is True
    assert call.audio_frames_sent == 0
    assert rt.transcript("assistant") == []
    stop_and_check(rt, call)


def test_strict_csp_with_nonce(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    response = rt.open(path="/rt/csp/")
    policy = response.headers["content-security-policy"]
    assert re.search(r"script-src 'nonce-[^']+';", policy)
    assert "'unsafe-inline'" not in policy
    assert rt.text("[data-realtime-status]") == "Ready."  # the nonce'd script ran
    # The stylesheet applied (style-src 'self'), so the widget is laid out by it.
    assert (
        rt.page.eval_on_selector("[data-realtime-widget]", "el => getComputedStyle(el).display")
        == "flex"
    )

    rt.click("start")
    call = assert_call_flows(rt, realtime_fake)
    rt.click("mute")
    assert rt.page.get_attribute("[data-realtime-mute]", "aria-pressed") == "true"
    stop_and_check(rt, call)
    assert rt.recorded()["csp"] == []
    assert not [m for m in rt.console if "Content Security Policy" in m], rt.console
