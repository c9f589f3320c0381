"""The widget in real Chromium against the real controller endpoints and a worker:
a relay call appears as an active ``RealtimeCall``, and leaving the page ends it with
reason ``beacon`` (the worker hangs up); an ephemeral call is attached the same way."""

from __future__ import annotations

import time

import pytest
from django.db import OperationalError

from django_realtime.models import RealtimeCall
from tests.browser.test_call_controller import leave_page
from tests.browser.test_widget import wait_until

pytestmark = pytest.mark.browser


def call_row(call_id: str) -> RealtimeCall | None:
    # The worker thread writes the same shared-cache SQLite database, whose table locks
    # refuse at once instead of waiting: a refused read is "not yet", read again.
    for _ in range(50):
        try:
            return RealtimeCall.objects.filter(call_id=call_id).first()
        except OperationalError:
            time.sleep(0.02)
    return RealtimeCall.objects.filter(call_id=call_id).first()


def _status(call_id: str) -> str | None:
    row = call_row(call_id)
    return row.status if row is not None else None


@pytest.mark.parametrize("mode", ["relay", "ephemeral"])
def test_a_call_is_followed_and_the_page_unload_ends_it_by_beacon(
    browser, open_page, realtime_fake, make_preset, worker, mode
):
    make_preset("assistant")
    rt = open_page(browser)
    rt.open(mode=mode) if mode == "relay" else rt.open()
    rt.click("start")
    rt.wait_state("connected")
    call = realtime_fake.wait_for_call()
    wait_until(lambda: _status(call.id) == "active", what="the worker to attach")
    row = call_row(call.id)
    assert row is not None
    assert (row.origin, row.user.username, row.preset.slug) == (mode, "alice", "assistant")
    assert row.lease_owner == "browser-test"

    leave_page(rt)
    # The fake may end the call (peer gone) a moment before the beacon lands; the
    # beacon then explains that end, so wait for the reason, not only the status.
    wait_until(
        lambda: (
            (_status(call.id), getattr(call_row(call.id), "end_reason", None))
            == ("ended", "beacon")
        ),
        what="the beacon to end the call",
    )
    # The worker hangs up, unless the browser closing its peer connection ended the call
    # first (the fake ends it at once); never twice.
    assert len(realtime_fake.requests_to(f"/realtime/calls/{call.id}/hangup")) <= 1
    call.wait_for(lambda c: c.connection_state == "closed", timeout=10)
