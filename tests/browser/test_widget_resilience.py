"""realtime.js under failure: timeouts, a crashed site, leaks, the event queue, the
transcript cap and blocked autoplay, in real headless Chromium."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.test_widget import mints

pytestmark = pytest.mark.browser

WIDGET = "[data-realtime-widget]"


def point_mint_at(rt: Any, path: str) -> None:
    """Send the widget's secret request to one of the test app's stand-ins."""
    rt.page.evaluate(f"DjangoRealtime.config.endpoints.clientSecrets = {path!r}")


def capture_media(rt: Any) -> None:
    """Keep references to the call's tracks and audio element, to inspect after it ends."""
    rt.session(
        "(window.__mic = s.stream.getAudioTracks()[0], window.__remote = s.remoteTrack,"
        " window.__audio = s.audio, window.__s = s, true)"
    )


def assert_media_released(rt: Any) -> None:
    released = rt.page.evaluate(
        "({mic: __mic.readyState, remote: __remote.readyState,"
        " src: __audio.srcObject, stream: __s.stream, track: __s.remoteTrack})"
    )
    assert released == {
        "mic": "ended",
        "remote": "ended",
        "src": None,
        "stream": None,
        "track": None,
    }


def test_mint_that_never_answers_times_out(browser, open_page, make_preset, testapp_received):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open(mint_timeout=0.5)
    point_mint_at(rt, "/rt/hang/")
    rt.click("start")
    assert rt.wait_state("failed", timeout=5_000) == "failed"

    assert rt.session("s.error.code") == "timeout"
    assert rt.session("s.error.timeoutMs") == 500
    assert rt.text("[data-realtime-error-message]") == (
        "The connection took too long. Check your network, then retry."
    )
    assert testapp_received == [{"view": "hang", "method": "POST"}]  # it did ask, and gave up
    assert rt.session("s.stream") is None  # the microphone is released
    assert mints() == 0


def test_sdp_offer_that_never_answers_times_out(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    realtime_fake.timeout_next("/realtime/calls", seconds=30)
    rt = open_page(browser)
    rt.open(sdp_timeout=1)
    rt.click("start")
    assert rt.wait_state("failed", timeout=6_000) == "failed"

    assert rt.session("s.error.code") == "timeout"
    assert rt.session("s.error.timeoutMs") == 1000
    assert len(realtime_fake.requests_to("/realtime/calls", "POST")) == 1
    assert mints("issued") == 1
    assert rt.session("s.pc") is None
    # The hang was one request: a retry connects.
    rt.click("retry")
    assert rt.wait_state("connected", "failed") == "connected"


def test_html_500_from_our_server_is_a_server_error(
    browser, open_page, make_preset, testapp_received
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    point_mint_at(rt, "/rt/html-error/")
    rt.click("start")
    assert rt.wait_state("failed") == "failed"

    assert rt.recorded()["errors"][-1]["code"] == "server_error"
    assert rt.session("s.error.status") == 500
    assert rt.session("s.error.detail") == "<h1>Server Error (500)</h1>"
    assert rt.text("[data-realtime-error-message]") == (
        "This site's server failed (HTTP 500). Try again later."
    )


def test_stop_releases_microphone_and_remote_audio(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    rt.page.wait_for_function(
        f"() => document.querySelector('{WIDGET}').realtimeSession.remoteTrack !== null"
    )
    assert rt.page.evaluate(f"document.querySelector('{WIDGET} audio').srcObject !== null")
    capture_media(rt)
    rt.click("start")  # Stop
    rt.wait_state("closed")
    assert_media_released(rt)


def test_removing_the_widget_hangs_up(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    rt.page.wait_for_function(
        f"() => document.querySelector('{WIDGET}').realtimeSession.remoteTrack !== null"
    )
    capture_media(rt)

    rt.page.evaluate(f"document.querySelector('{WIDGET}').remove()")  # as an htmx swap does
    rt.page.wait_for_function("() => __s.state === 'closed'", timeout=5_000)
    assert_media_released(rt)
    call.wait_for(lambda c: c.connection_state == "closed", timeout=10)


def test_microphone_ending_stops_with_a_clear_error(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    capture_media(rt)
    # A fake device cannot be unplugged; fire the event Chromium fires when one is.
    rt.page.evaluate("__mic.dispatchEvent(new Event('ended'))")
    assert rt.wait_state("failed", timeout=5_000) == "failed"

    assert rt.session("s.error.code") == "microphone_ended"
    assert rt.text("[data-realtime-error-message]") == (
        "The microphone stopped (unplugged, or taken by another app). Retry to continue."
    )
    assert rt.page.evaluate("__mic.readyState") == "ended"
    assert rt.session("s.stream") is None
    call.wait_for(lambda c: c.connection_state == "closed", timeout=10)


def event_ids(call: Any) -> list[str]:
    events = call.client_events
    return [str(e.get("event_id")) for e in events if e.get("type") == "response.create"]


def test_queue_keeps_only_the_newest_events(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    queued = rt.page.evaluate(
        "(() => { const s = window.__s ="
        " DjangoRealtime.connect({preset: 'assistant', maxQueue: 3});"
        " for (let i = 0; i < 10; i++) s.send({type: 'response.create', event_id: 'evt_' + i});"
        " return s._queue.map(e => e.event_id); })()"
    )
    assert queued == ["evt_7", "evt_8", "evt_9"]
    rt.page.wait_for_function("() => __s.state === 'connected'", timeout=15_000)
    call = realtime_fake.wait_for_call()
    rt.page.evaluate("__s.send({type: 'response.create', event_id: 'evt_last'})")
    call.wait_for(lambda c: "evt_last" in event_ids(c), timeout=10)
    assert event_ids(call) == ["evt_7", "evt_8", "evt_9", "evt_last"]


def test_reconnect_does_not_replay_queued_events(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    first = realtime_fake.wait_for_call()
    # The channel is closing: this event is queued, and the loss that follows must drop it.
    queued = rt.session(
        "(s.dc.close(), s.send({type: 'response.create', event_id: 'evt_stale'}), s._queue.length)"
    )
    assert queued == 1
    rt.page.wait_for_function("() => window.__rt.states.includes('reconnecting')")
    assert rt.wait_state("connected", "failed") == "connected"
    second = realtime_fake.wait_for_call()
    assert second.id != first.id
    rt.session("s.send({type: 'response.create', event_id: 'evt_new'})")
    second.wait_for(lambda c: "evt_new" in event_ids(c), timeout=10)  # ordered channel
    assert event_ids(second) == ["evt_new"]
    assert "evt_stale" not in event_ids(first)


def test_transcript_is_capped(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open(max_lines=1)
    rt.click("start")
    rt.wait_state("connected")
    # The fake says the user's line, then the assistant's: the cap keeps the newest.
    rt.page.wait_for_selector(
        "[data-realtime-transcript] li[data-role=assistant][data-final]", timeout=10_000
    )
    roles = rt.page.eval_on_selector_all(
        "[data-realtime-transcript] li", "lis => lis.map(li => li.dataset.role)"
    )
    assert roles == ["assistant"]
    assert rt.page.evaluate("window.__rt.events.filter(t => t.endsWith('.completed')).length") == 1


#: Safari's and Firefox's policy, which Chromium does not apply to WebRTC audio: play()
#: with sound is refused (NotAllowedError) unless it runs inside a real (trusted) click.
GESTURE_ONLY_PLAYBACK = """
(() => {
  const play = HTMLMediaElement.prototype.play;
  window.__playRefused = 0;
  window.__playedInClick = [];
  HTMLMediaElement.prototype.play = function () {
    const e = window.event;
    if (e && e.isTrusted && e.type === "click") {
      window.__playedInClick.push(e.target.getAttribute("class"));
      return play.call(this);
    }
    window.__playRefused++;
    return Promise.reject(new DOMException("play() needs a user gesture", "NotAllowedError"));
  };
})();
"""


def test_blocked_autoplay_offers_a_sound_button(browser, open_page, realtime_fake, make_preset):
    make_preset("assistant")
    rt = open_page(browser)
    rt.page.add_init_script(GESTURE_ONLY_PLAYBACK)
    rt.open()
    sound = f"{WIDGET} [data-realtime-sound]"
    assert rt.page.is_hidden(sound)
    rt.click("start")
    rt.wait_state("connected")
    rt.page.wait_for_selector(sound, state="visible", timeout=10_000)
    assert rt.session("s.soundBlocked") is True
    assert rt.page.evaluate("window.__playRefused") == 1  # the answer's audio, after the click
    assert rt.page.get_attribute(sound, "aria-label") == (
        "Tap to enable sound: Voice assistant (assistant)"
    )

    rt.page.click(sound)  # a real click: play() is allowed now
    rt.page.wait_for_selector(sound, state="hidden", timeout=5_000)
    # Start's click primed the element; the sound button's click played the answer.
    assert rt.page.evaluate("window.__playedInClick") == [
        "realtime-widget__start",
        "realtime-widget__sound",
    ]
    assert rt.page.evaluate(f"document.querySelector('{WIDGET} audio').paused") is False
    assert rt.session("s.soundBlocked") is False
