"""The fake's sideband: every kind of call, mirroring, refusals, the end, scripts.

All over a real WebSocket to the fake on 127.0.0.1 (the session ``realtime_server``);
WebRTC calls use a real aiortc peer as the browser.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from django_realtime import client as upstream_client
from django_realtime.control.pricing import Usage, meter_response_done, meter_transcription
from django_realtime.control.sideband import Sideband, WebsocketsConnector, sideband_url
from django_realtime.exceptions import CallNotFound, SidebandError, UpstreamAuthenticationError
from django_realtime.testing import FakeRealtimeServer, script
from django_realtime.testing.pytest_plugin import FAKE_SERVER_KEY
from django_realtime.testing.sideband import FakeSidebands

pytestmark = pytest.mark.anyio

REALTIME = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}


async def _next_of(sideband: Sideband, kind: str, limit: int = 100) -> dict[str, Any]:
    for _ in range(limit):
        event = await asyncio.wait_for(sideband.__anext__(), 10)
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind}")


async def _until_call_over(sideband: Sideband) -> list[dict[str, Any]]:
    """Every event until the sideband reports the call is over (``CallNotFound``)."""
    seen: list[dict[str, Any]] = []
    try:
        async for event in sideband:
            seen.append(event)
    except CallNotFound:
        return seen
    raise AssertionError("the sideband ended without CallNotFound")


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _browser(
    server: FakeRealtimeServer, *, ephemeral: bool
) -> AsyncIterator[tuple[Any, Any, asyncio.Queue[dict[str, Any]], str]]:
    aiortc = pytest.importorskip("aiortc")
    from django_realtime.testing.loopback import loopback_only
    from django_realtime.testing.peer import ToneTrack
    from django_realtime.testing.state import FakeCall

    with loopback_only():
        pc = aiortc.RTCPeerConnection(aiortc.RTCConfiguration(iceServers=[]))
        pc.addTrack(ToneTrack(FakeCall("client", kind="webrtc", session={}), 330))
        channel = pc.createDataChannel("oai-events")
        events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        channel.on("message", lambda message: events.put_nowait(json.loads(message)))
        await pc.setLocalDescription(await pc.createOffer())
        if ephemeral:
            auth = {"Authorization": f"Bearer {FAKE_SERVER_KEY}"}
            async with httpx.AsyncClient(base_url=server.url) as http:
                minted = await http.post(
                    "/realtime/client_secrets", json={"session": REALTIME}, headers=auth
                )
                answer = await http.post(
                    "/realtime/calls",
                    content=pc.localDescription.sdp,
                    headers={
                        "Authorization": f"Bearer {minted.json()['value']}",
                        "Content-Type": "application/sdp",
                    },
                )
            assert answer.status_code == 201, answer.text
            sdp, call_id = answer.text, answer.headers["location"].rsplit("/", 1)[-1]
        else:  # relay: our client, the server key
            relayed = await upstream_client.acreate_call(pc.localDescription.sdp, REALTIME)
            sdp, call_id = relayed.sdp, relayed.call_id
        await pc.setRemoteDescription(aiortc.RTCSessionDescription(sdp=sdp, type="answer"))
        try:
            yield pc, channel, events, call_id
        finally:
            await pc.close()


async def _next_event(events: asyncio.Queue[dict[str, Any]], kind: str) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(events.get(), 10)
        if event["type"] == kind:
            return event


async def test_webrtc_call_mirrors_both_ways_and_hangup_ends_it(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    async for _pc, channel, events, call_id in _browser(realtime_server, ephemeral=True):
        await _next_event(events, "session.created")
        async with Sideband(call_id) as sideband:
            created = await _next_of(sideband, "session.created")
            assert created["session"]["instructions"] == "Be brief."
            # The browser's session.update reaches the sideband as session.updated.
            channel.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {"type": "realtime", "instructions": "Tampered"},
                    }
                )
            )
            updated = await _next_of(sideband, "session.updated")
            assert updated["session"]["instructions"] == "Tampered"
            # ... and the sideband's re-assertion reaches the browser.
            await sideband.send(
                {
                    "type": "session.update",
                    "session": {"type": "realtime", "instructions": "Be brief."},
                }
            )
            while (await _next_event(events, "session.updated"))["session"][
                "instructions"
            ] != "Be brief.":
                pass
            call = realtime_server.fake.get_call(call_id)
            assert call.session["instructions"] == "Be brief."
            await upstream_client.ahangup_call(call_id)
            await _until_call_over(sideband)
        assert realtime_sidebands.sent_types(call_id) == ["session.update"]
        assert realtime_sidebands.attempts[-1] == (call_id, 404)


async def test_relay_call_ends_when_the_browser_goes(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    async for pc, _channel, events, call_id in _browser(realtime_server, ephemeral=False):
        await _next_event(events, "session.created")
        call = realtime_server.fake.get_call(call_id)
        assert call.auth == "server"
        async with Sideband(call_id) as sideband:
            await _next_of(sideband, "session.created")
            await pc.close()  # the peer is gone, no hangup request
            await _until_call_over(sideband)
        assert call.state in ("closed", "failed")
        assert not realtime_server.fake.requests_to("/realtime/calls/*/hangup")


async def test_sip_call_is_attachable_once_accepted(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    call = realtime_server.fake.add_sip_call()
    with pytest.raises(CallNotFound):
        await Sideband(call.id).connect()  # still ringing: no session yet
    await upstream_client.aaccept_call(call.id, REALTIME)
    async with Sideband(call.id) as sideband:
        created = await _next_of(sideband, "session.created")
        assert created["session"]["instructions"] == "Be brief."
        await upstream_client.ahangup_call(call.id)
        await _until_call_over(sideband)


async def test_refusals_like_the_api(realtime_sidebands: FakeSidebands) -> None:
    call = realtime_sidebands.virtual_call()
    connect = WebsocketsConnector()
    url = sideband_url(call.id)
    with pytest.raises(UpstreamAuthenticationError) as info:
        await connect(url, {})
    assert info.value.status_code == 401
    with pytest.raises(UpstreamAuthenticationError) as info:
        await connect(url, {"Authorization": "Bearer wrong"})
    assert info.value.error_code == "invalid_api_key"
    with pytest.raises(CallNotFound):
        await connect(url, {"Authorization": "Bearer ek_0123456789abcdef"})
    with pytest.raises(CallNotFound) as found:
        await connect(sideband_url("rtc_nope"), {"Authorization": f"Bearer {FAKE_SERVER_KEY}"})
    assert found.value.error_code == "call_id_not_found"
    with pytest.raises(SidebandError) as bad:
        await connect(url.split("?")[0], {"Authorization": f"Bearer {FAKE_SERVER_KEY}"})
    assert bad.value.status_code == 400
    assert [status for _, status in realtime_sidebands.attempts] == [401, 401, 404, 404, 400]
    assert call.state == "active"  # refusals change nothing


async def test_session_limit_expires_the_call(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    call = realtime_sidebands.virtual_call()
    async with Sideband(call.id) as sideband:
        await _next_of(sideband, "session.created")
        realtime_server.fake.advance_clock(3600)
        error = await _next_of(sideband, "error")
        assert error["error"]["code"] == "session_expired"
        await _until_call_over(sideband)
    assert call.state == "expired"


async def test_scripted_usage_meters_exactly(realtime_sidebands: FakeSidebands) -> None:
    call = realtime_sidebands.virtual_call()
    turns = [
        script.turn(
            "Hi",
            "Hello",
            usage=script.usage(
                text_in=120, audio_in=400, cached_text=100, text_out=10, audio_out=300
            ),
            transcription_usage=script.transcription_tokens(audio=40, output=3),
        ),
        script.turn(
            "More",
            None,
            usage=script.usage(
                text_in=900, audio_in=800, cached_audio=600, image_in=10, audio_out=50
            ),
            transcription_usage=script.transcription_duration(1.5),
        ),
        script.function_call("lookup", {"order": 42}, usage=script.usage(text_in=5, text_out=7)),
        script.hangup(),
    ]
    total, cost = Usage(), Decimal(0)
    kinds: list[str] = []
    async with Sideband(call.id) as sideband:
        thread = realtime_sidebands.play_in_background(call.id, turns)
        for event in await _until_call_over(sideband):
            kinds.append(event["type"])
            if event["type"] == "response.done":
                metered = meter_response_done(event, "gpt-realtime")
            elif event["type"] == "conversation.item.input_audio_transcription.completed":
                metered = meter_transcription(event, "gpt-4o-transcribe")
            else:
                continue
            total, cost = total + metered.usage, cost + metered.cost_usd
        await asyncio.to_thread(thread.join, 5)
    assert total == Usage(
        input_text_tokens=1025,
        input_audio_tokens=1200,
        input_image_tokens=10,
        cached_input_tokens=700,
        output_text_tokens=17,
        output_audio_tokens=350,
        transcription_tokens=43,
        transcription_seconds=2,
    )
    expected = (
        (20 + 900 + 5) * Decimal(4)
        + 100 * Decimal("0.40")  # text in
        + (400 + 200) * Decimal(32)
        + 600 * Decimal("0.40")  # audio in
        + 10 * Decimal(5)  # image in
        + 17 * Decimal(16)
        + 350 * Decimal(64)  # out
        + 40 * Decimal(6)
        + 3 * Decimal(10)  # transcription tokens
    ) / Decimal(1_000_000)
    assert cost == expected  # gpt-4o-transcribe has no per-minute rate: 1.5 s unpriced
    assert kinds.count("input_audio_buffer.speech_started") == 2
    assert "response.function_call_arguments.done" in kinds


async def test_control_api_virtual_call_script_and_record(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    async with httpx.AsyncClient(base_url=realtime_server.origin) as http:
        made = await http.post("/_fake/virtual_calls", json={"session": REALTIME})
        call_id = made.json()["id"]
        assert made.json()["kind"] == "virtual"
        async with Sideband(call_id) as first, Sideband(call_id) as second:
            await _next_of(first, "session.created")
            await _next_of(second, "session.created")
            await first.send({"type": "response.create", "response": {"instructions": "Hi"}})
            await second.send(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "function_call_output", "call_id": "c1", "output": "{}"},
                }
            )
            await _until(lambda: len(realtime_sidebands.sent(call_id)) == 2)
            steps = [script.tamper(instructions="Evil"), script.expire()]
            played = await http.post(f"/_fake/calls/{call_id}/script", json={"steps": steps})
            assert played.status_code == 200
            for sideband in (first, second):
                assert (await _next_of(sideband, "session.updated"))["session"][
                    "instructions"
                ] == "Evil"
                assert (await _next_of(sideband, "error"))["error"]["code"] == "session_expired"
        record = (await http.get(f"/_fake/calls/{call_id}/sideband")).json()
    # two sockets send at once: the record holds both, in no fixed order between them
    assert sorted(event["type"] for event in record["client_events"]) == [
        "conversation.item.create",
        "response.create",
    ]
    assert record["attempts"] == [101, 101]
    first_sent, second_sent = realtime_sidebands.sent_by_each(call_id)
    assert [event["type"] for event in first_sent] == ["response.create"]
    assert [event["type"] for event in second_sent] == ["conversation.item.create"]
    call = realtime_server.fake.get_call(call_id)
    assert call.client_event_types == ["session.update"]  # the tamper came from "the browser"


async def test_drop_leaves_the_call_and_a_missing_session_type_is_an_error(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call()
    async with Sideband(call.id) as sideband:
        await _next_of(sideband, "session.created")
        realtime_sidebands.drop(call.id, 1001)
        await _next_of(sideband, "session.created")  # re-dialled
        assert sideband.close_codes == [1001]
        sideband._queue.put_nowait(json.dumps({"type": "session.update", "session": {}}))
        error = await _next_of(sideband, "error")
        assert error["error"]["code"] == "missing_required_parameter"
        assert error["error"]["param"] == "session.type"
    assert call.state == "active"


async def test_control_api_refuses_bad_scripts(
    realtime_server: FakeRealtimeServer, realtime_sidebands: FakeSidebands
) -> None:
    call = realtime_sidebands.virtual_call()
    async with httpx.AsyncClient(base_url=realtime_server.origin) as http:
        unknown = await http.post("/_fake/calls/rtc_nope/script", json={"steps": []})
        bad_step = await http.post(
            f"/_fake/calls/{call.id}/script", json={"steps": [{"dance": {}}]}
        )
        no_sideband = await asyncio.to_thread(
            httpx.post,
            f"{realtime_server.origin}/_fake/calls/{call.id}/script",
            json={"steps": [script.silence(0)]},
            timeout=10,
        )
    assert unknown.status_code == 404
    assert bad_step.status_code == 400
    assert no_sideband.status_code == 400
    assert "did not attach" in no_sideband.json()["error"]["message"]
