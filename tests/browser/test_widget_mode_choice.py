"""The widget picks relay by itself for a preset with ``require_control``, in real
Chromium against the real endpoints and a worker: the page asks for ephemeral (the
widget's default), ``presets/`` says the preset allows relay only, so no client secret
is ever asked for; the call goes through the site (relay) and a worker follows it as an
active ``RealtimeCall``. Without the ``presets/`` answer, the ``relay_required`` refusal
of the mint turns the session to relay the same way."""

from __future__ import annotations

import pytest

from django_realtime.models import AuditAction, AuditLogEntry, AuditOutcome
from tests.browser.test_call_controller_worker import _status, call_row
from tests.browser.test_widget import wait_until

pytestmark = pytest.mark.browser


def _actions() -> list[tuple[str, str]]:
    return sorted(AuditLogEntry.objects.values_list("action", "outcome"))


def test_a_require_control_preset_connects_via_relay_without_a_mint(
    browser, open_page, realtime_fake, make_preset, worker
):
    make_preset("controlled", require_control=True)
    rt = open_page(browser)
    rt.open(preset="controlled")  # the page asks for ephemeral
    rt.click("start")
    rt.wait_state("connected")
    assert rt.session("s.mode") == "relay"
    call = realtime_fake.wait_for_call()
    wait_until(lambda: _status(call.id) == "active", what="the worker to attach")
    row = call_row(call.id)
    assert row is not None
    assert (row.origin, row.user.username, row.preset.slug) == ("relay", "alice", "controlled")
    # No client secret was asked for: not from the site, not from the API.
    assert realtime_fake.requests_to("/realtime/client_secrets") == []
    assert _actions() == [(AuditAction.CALL, AuditOutcome.ISSUED)]  # one relayed call
    assert rt.recorded()["errors"] == []
    rt.hang_up()


def test_a_relay_required_refusal_turns_the_session_to_relay(
    browser, open_page, realtime_fake, make_preset, worker
):
    make_preset("controlled", require_control=True)
    rt = open_page(browser)
    rt.page.route("**/presets/**", lambda route: route.abort())  # no presets/ answer
    rt.open(preset="controlled")
    rt.click("start")
    rt.wait_state("connected")
    assert rt.session("s.mode") == "relay"
    call = realtime_fake.wait_for_call()
    wait_until(lambda: _status(call.id) == "active", what="the worker to attach")
    assert call_row(call.id).origin == "relay"  # type: ignore[union-attr]
    # The site refused the mint (nothing reached the API), then the relay went through.
    assert realtime_fake.requests_to("/realtime/client_secrets") == []
    assert _actions() == [
        (AuditAction.CALL, AuditOutcome.ISSUED),
        (AuditAction.MINT, AuditOutcome.INVALID),
    ]
    assert rt.recorded()["errors"] == []
    rt.hang_up()
