"""realtime.js in real Chromium leaves the server tools' function calls to the server
(issue 10): the page never sees them, while a browser-side tool's calls still arrive."""

from __future__ import annotations

import pytest

from django_realtime.testing.sideband import FakeSidebands

from .test_widget import wait_until

pytestmark = pytest.mark.browser


def test_server_tool_calls_never_reach_the_page(
    browser, open_page, realtime_fake, realtime_sidebands: FakeSidebands, make_preset
):
    make_preset("assistant", server_tools=["spell"])
    rt = open_page(browser)
    rt.open()
    assert "spell" in rt.page.evaluate("DjangoRealtime.config.serverTools")
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    # The page's channel may open before the fake's side of it: events emitted earlier
    # would never reach the page.
    call.wait_for(lambda c: c.data_channel_sender is not None, timeout=10)
    for name, call_id in (("spell", "c_server"), ("lookup", "c_page")):
        realtime_sidebands.emit(
            call,
            {
                "type": "response.function_call_arguments.done",
                "response_id": "resp_1",
                "item_id": "item_" + call_id,
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": "{}",
            },
        )
    realtime_sidebands.emit(call, {"type": "response.created", "response": {"id": "resp_x"}})
    wait_until(
        lambda: "response.created" in rt.recorded()["events"], what="the last event on the page"
    )
    seen = rt.recorded()["events"]
    assert seen.count("response.function_call_arguments.done") == 1  # lookup's only
