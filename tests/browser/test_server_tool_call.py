"""The widget in real Chromium, the worker beside the live server and the fake API
(issue 10): the model calls a server tool, the worker runs it as the signed-in user and
answers through the sideband, and the model's answer reaches the page's transcript."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import OperationalError

from django_realtime.call_models import CallEvent
from django_realtime.testing import script
from django_realtime.testing.sideband import FakeSidebands
from tests.browser.test_widget import wait_until

pytestmark = pytest.mark.browser


def events_of(call_id: str, kind: str) -> list[dict[str, Any]]:
    # The worker thread writes the same shared-cache SQLite database, whose table locks
    # refuse at once instead of waiting: a refused read is "not yet", read again.
    for _ in range(50):
        try:
            rows = CallEvent.objects.filter(call__call_id=call_id, kind=kind).order_by("pk")
            return [dict(row.data) for row in rows]
        except OperationalError:
            time.sleep(0.02)
    return []


def test_the_model_calls_a_server_tool_and_the_transcript_shows_the_answer(
    browser, open_page, realtime_fake, realtime_sidebands: FakeSidebands, make_preset, worker
):
    make_preset("assistant", server_tools=["spell"], store_transcripts=True)
    rt = open_page(browser)
    rt.open()
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    call.wait_for(lambda c: c.data_channel_sender is not None, timeout=10)
    realtime_sidebands.wait_attached(call.id, 1, timeout=15)  # the worker follows the call

    realtime_sidebands.play(
        call.id,
        [
            script.answered_function_call(
                "spell", {"word": "cat"}, answer="Cat is spelled {output}.", call_id="call_cat"
            )
        ],
    )

    wait_until(lambda: rt.transcript("assistant") != [], what="the answer on the page")
    assert rt.transcript("assistant") == ['Cat is spelled "C-A-T".']
    assert "Cat is spelled" in rt.text("[data-realtime-transcript]")
    # The server tool's call never reached the page's listeners; the answer did.
    seen = rt.recorded()["events"]
    assert "response.function_call_arguments.done" not in seen
    assert "response.output_audio_transcript.done" in seen

    # What the fake received from the worker's sideband: the output, then one response.
    answers = [
        event
        for event in realtime_sidebands.sent(call.id)
        if event["type"] in ("conversation.item.create", "response.create")
    ]
    assert answers == [
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_cat", "output": '"C-A-T"'},
        },
        {"type": "response.create"},
    ]

    tool_calls = events_of(call.id, "tool_call")
    assert len(tool_calls) == 1
    assert tool_calls[0]["name"] == "spell"
    assert tool_calls[0]["outcome"] == "ok"
    assert tool_calls[0]["arguments"] == {"word": "cat"}
    assert tool_calls[0]["output"] == '"C-A-T"'
    assert tool_calls[0]["call_id"] == "call_cat"
    wait_until(lambda: events_of(call.id, "transcript") != [], what="the stored transcript")
    assert [(e["role"], e["text"]) for e in events_of(call.id, "transcript")] == [
        ("assistant", 'Cat is spelled "C-A-T".')
    ]
