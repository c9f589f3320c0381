"""pytest fixtures for the fake's sideband (loaded by ``pytest_plugin``).

- ``realtime_sidebands``: the sideband hub (:class:`~.sideband.FakeSidebands`) of the
  ``realtime_server`` fake, with settings pointing at it; what sidebands sent is
  forgotten before and after each test.
- ``realtime_virtual_call``: a factory of live calls with no media, for a session you
  give (for example your preset's, built the way your site builds it)::

      def test_my_controller(realtime_virtual_call):
          call = realtime_virtual_call({"type": "realtime", "instructions": "Be brief."})
          call.play_in_background([script.turn(usage=script.usage(audio_in=40))])
          ...  # attach your code to call.id; assert on call.sent()
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from . import script
from .server import FakeRealtimeServer
from .sideband import FakeSidebands, sidebands_of
from .state import FakeCall


class ScriptedCall:
    """A fake call with a script API: ``id``, ``call`` (its :class:`FakeCall`),
    :meth:`play`, :meth:`play_in_background`, :meth:`sent` and :meth:`sent_types`."""

    script = script

    def __init__(self, hub: FakeSidebands, call: FakeCall) -> None:
        self.hub = hub
        self.call = call
        self.id = call.id

    def play(self, steps: Iterable[dict[str, Any]], *, wait_attached: float = 5.0) -> None:
        self.hub.play(self.id, steps, wait_attached=wait_attached)

    def play_in_background(self, steps: Iterable[dict[str, Any]]) -> threading.Thread:
        return self.hub.play_in_background(self.id, steps)

    def sent(self) -> list[dict[str, Any]]:
        """Client events the call's sidebands sent, in order."""
        return self.hub.sent(self.id)

    def sent_types(self) -> list[str]:
        return self.hub.sent_types(self.id)


def _forget(hub: FakeSidebands) -> None:
    with hub._lock:
        hub.client_events.clear()
        hub.history.clear()
        hub.attempts.clear()
        hub.answers.clear()
    hub.session_limit_seconds = 3600.0


@pytest.fixture
def realtime_sidebands(realtime_server: FakeRealtimeServer) -> Iterator[FakeSidebands]:
    """The sideband hub of the (reset) session server."""
    hub = sidebands_of(realtime_server.fake)
    _forget(hub)
    yield hub
    _forget(hub)


@pytest.fixture
def realtime_virtual_call(
    realtime_sidebands: FakeSidebands,
) -> Callable[..., ScriptedCall]:
    """``make(session=None, *, call_id=None) -> ScriptedCall``: a live virtual call."""

    def make(session: dict[str, Any] | None = None, *, call_id: str | None = None) -> ScriptedCall:
        return ScriptedCall(
            realtime_sidebands, realtime_sidebands.virtual_call(session, call_id=call_id)
        )

    return make
