"""The fake's scripted model answers a function call once it is given the output
(``script.answered_function_call``), over a real WebSocket to the fake on 127.0.0.1."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from django_realtime.control.sideband import Sideband
from django_realtime.testing import script
from django_realtime.testing.sideband import FakeSidebands

pytestmark = pytest.mark.anyio


async def _next_of(sideband: Sideband, kind: str) -> dict[str, Any]:
    for _ in range(100):
        event = await asyncio.wait_for(sideband.__anext__(), 10)
        if event["type"] == kind:
            return event
    raise AssertionError(f"no {kind}")


async def test_the_next_response_create_speaks_the_latest_output(
    realtime_sidebands: FakeSidebands,
) -> None:
    call = realtime_sidebands.virtual_call()
    step = script.answered_function_call(
        "spell", {"word": "ox"}, answer="That is {output}.", call_id="call_ox"
    )
    async with Sideband(call.id) as sideband:
        thread = realtime_sidebands.play_in_background(call.id, [step])
        asked = await _next_of(sideband, "response.function_call_arguments.done")
        assert (asked["call_id"], asked["name"], asked["arguments"]) == (
            "call_ox",
            "spell",
            '{"word": "ox"}',
        )
        await _next_of(sideband, "response.done")
        assert thread.is_alive()  # waits for the output
        await sideband.send(
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": "call_ox", "output": "O-X"},
            }
        )
        await sideband.send({"type": "response.create"})
        spoken = await _next_of(sideband, "response.output_audio_transcript.done")
        assert spoken["transcript"] == "That is O-X."
        done = await _next_of(sideband, "response.done")
        assert done["response"]["output"][0]["content"][0]["transcript"] == "That is O-X."
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive()
        # Armed once: a second response.create is the plain, empty one again.
        await sideband.send({"type": "response.create"})
        empty = await _next_of(sideband, "response.done")
        assert empty["response"]["output"] == []
    assert realtime_sidebands.answers[call.id] == []


def test_the_step_fails_loudly_when_no_output_comes(realtime_sidebands: FakeSidebands) -> None:
    call = realtime_sidebands.virtual_call()
    step = script.answered_function_call("spell", {"word": "ox"}, timeout=0.1)
    with pytest.raises(TimeoutError, match="no function_call_output"):
        realtime_sidebands.play(call.id, [step], wait_attached=0)
    assert realtime_sidebands.answers[call.id] == []  # disarmed
