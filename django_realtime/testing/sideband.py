"""The fake's sideband: ``/v1/realtime?call_id=...`` WebSockets, and virtual calls.

:func:`sidebands_of` gives a fake's :class:`FakeSidebands` hub, which

- serves the sideband (through :mod:`.sideband_server`, mounted by the fake's ASGI app) for
  every call the fake knows that is live: WebRTC (relay or ephemeral), accepted SIP,
  and **virtual calls** (:meth:`FakeSidebands.virtual_call`, no media);
- refuses a missing or wrong key (HTTP 401 on the upgrade) and an ``ek_`` secret
  (HTTP 404, as the API has answered ephemeral keys since 2026-09), and answers
  ``404 call_id_not_found`` for an unknown or ended call;
- sends ``session.created`` on attach and mirrors the call's server events to every
  sideband (a browser's ``session.update`` on the data channel arrives as
  ``session.updated``); a sideband's ``session.update`` reaches the browser the same way;
- closes the call's sidebands when it ends (REST hangup, peer gone, reset, or the
  60-minute limit, announced with an ``error`` ``session_expired``);
- plays scripts (:mod:`.script`) and records, in order, what each sideband sent.

Sidebands live on the ASGI server's loop; everything else here is thread-safe.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .effective import deep_merge, effective_session
from .script_player import STEPS, play_step
from .state import FakeCall
from .validation import validate_session
from .wire import new_id

if TYPE_CHECKING:
    from .wire import FakeCore

Message = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[Message], Any]

#: States in which a call has a live session a sideband may attach to.
LIVE_STATES = ("connecting", "active", "accepted")
SESSION_LIMIT_SECONDS = 3600.0
WATCH_INTERVAL = 0.05
#: The outbox item that closes a sideband: ``(CLOSE, code, reason)``.
CLOSE = object()


class SidebandPeer:
    """One attached sideband (server side): an outbox and what it sent, in order."""

    def __init__(self, call_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.call_id = call_id
        self.loop = loop
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []
        self.close_code: int | None = None

    def push(self, item: Any) -> None:
        """Queue a server event (or a close) from any thread."""
        self.loop.call_soon_threadsafe(self.outbox.put_nowait, item)

    def close(self, code: int, reason: str = "") -> None:
        self.push((CLOSE, code, reason))


class FakeSidebands:
    """The sideband hub of one :class:`~.fake.FakeCore` (see the module doc)."""

    def __init__(self, fake: FakeCore) -> None:
        self.fake = fake
        self.session_limit_seconds = SESSION_LIMIT_SECONDS
        self.peers: dict[str, list[SidebandPeer]] = {}
        #: Every client event any sideband of a call sent, in arrival order.
        self.client_events: dict[str, list[dict[str, Any]]] = {}
        #: Every sideband ever attached to a call, in order of attachment.
        self.history: dict[str, list[SidebandPeer]] = {}
        #: Upgrade attempts: ``(call_id, status)``; 101 when accepted.
        self.attempts: list[tuple[str | None, int]] = []
        #: Armed answers: call id -> ``(template, spoken)`` (see ``answer_next_response``).
        self.answers: dict[str, list[tuple[str, threading.Event]]] = {}
        self._lock = threading.Lock()
        self._watchers: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}

    # --- calls --------------------------------------------------------------------------

    def virtual_call(
        self, session: dict[str, Any] | None = None, *, call_id: str | None = None
    ) -> FakeCall:
        """A live call with no media: only its sidebands and scripts drive it."""
        request = validate_session(session or {"type": "realtime"}, "session")
        call = FakeCall(
            call_id or new_id("rtc"), kind="virtual", session=effective_session(request)
        )
        call.state = "active"
        self.fake.calls[call.id] = call  # one dict store: atomic under the GIL
        return call

    def is_live(self, call: FakeCall | None) -> bool:
        return call is not None and call.state in LIVE_STATES and not self._expired(call)

    def _expired(self, call: FakeCall) -> bool:
        return self.fake.now() - call.created_at >= self.session_limit_seconds

    def attached(self, call_id: str) -> int:
        with self._lock:
            return len(self.peers.get(call_id, ()))

    def sent(self, call_id: str) -> list[dict[str, Any]]:
        """What the call's sidebands sent (client events), in order."""
        with self._lock:
            return list(self.client_events.get(call_id, ()))

    def sent_by_each(self, call_id: str) -> list[list[dict[str, Any]]]:
        """What each sideband of the call sent, one list per socket, in attach order."""
        with self._lock:
            return [list(peer.received) for peer in self.history.get(call_id, ())]

    def sent_types(self, call_id: str) -> list[str]:
        return [str(event.get("type")) for event in self.sent(call_id)]

    def wait_attached(self, call_id: str, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``count`` sidebands are attached to the call."""
        deadline = time.monotonic() + timeout
        while self.attached(call_id) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{count} sideband(s) did not attach to {call_id}")
            time.sleep(0.01)

    def wait_sent(self, call_id: str, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Block until the call's sidebands sent ``count`` client events; return them."""
        deadline = time.monotonic() + timeout
        while len(self.sent(call_id)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{call_id}: sidebands sent {self.sent_types(call_id)}")
            time.sleep(0.01)
        return self.sent(call_id)

    # --- events -----------------------------------------------------------------------------

    def emit(self, call: FakeCall, event: dict[str, Any]) -> None:
        """A server event of the call, to the browser's data channel and every sideband."""
        event = {"type": event["type"], "event_id": new_id("event"), **event}
        sender = call.data_channel_sender
        if sender is not None:
            sender(event)  # the peer sends it and mirrors it to the listeners
            return
        call.record_server_event(event["type"])
        self._deliver(call.id, event)

    def _deliver(self, call_id: str, event: dict[str, Any]) -> None:
        with self._lock:
            peers = list(self.peers.get(call_id, ()))
        for peer in peers:
            peer.push(event)

    def _listen(self, call: FakeCall) -> None:
        def mirror(event: dict[str, Any], call_id: str = call.id) -> None:
            if event.get("type") != "session.created":  # each socket gets its own
                self._deliver(call_id, event)

        mirror.hub = self  # type: ignore[attr-defined]
        if not any(getattr(f, "hub", None) is self for f in call.server_event_listeners):
            call.server_event_listeners.append(mirror)

    def update_session(self, call: FakeCall, update: Any) -> None:
        """``session.update`` (from a sideband or a script): merge, then ``session.updated``."""
        validate_session(update, "session", types=(call.session_type,))
        call.session = deep_merge(call.session, update)
        self.emit(call, {"type": "session.updated", "session": copy.deepcopy(call.session)})

    def drop(self, call_id: str, code: int = 1001, reason: str = "going away") -> int:
        """Close the call's sidebands with ``code`` (the call goes on); how many.

        They are detached at once: events sent before a re-dial attaches are lost,
        as they are on the API.
        """
        with self._lock:
            peers = self.peers.pop(call_id, [])
        for peer in peers:
            peer.close(code, reason)
        return len(peers)

    def end_call(self, call_id: str, state: str = "closed") -> None:
        """The call ends without a REST hangup (the peer is gone)."""
        call = self.fake.calls.get(call_id)
        if call is not None:
            call.state = state
            if call.kind == "webrtc":
                self.fake.close_peer(call.id)
        self.drop(call_id, 1000, "call ended")

    def expire(self, call_id: str) -> None:
        """The session limit: ``error`` ``session_expired`` to every peer, then the end."""
        call = self.fake.calls[call_id]
        self.emit(call, _expired_error())
        self.end_call(call_id, "expired")

    def answer_next_response(self, call_id: str, template: str) -> threading.Event:
        """The call's next sideband ``response.create`` says ``template`` (``{output}``:
        the latest ``function_call_output`` its sidebands added); set once it was said."""
        spoken = threading.Event()
        with self._lock:
            self.answers.setdefault(call_id, []).append((template, spoken))
        return spoken

    def disarm(self, call_id: str, spoken: threading.Event) -> None:
        """Forget an armed answer that was never said."""
        with self._lock:
            armed = self.answers.get(call_id, [])
            armed[:] = [answer for answer in armed if answer[1] is not spoken]

    def take_answer(self, call_id: str) -> tuple[str, threading.Event] | None:
        """The armed answer for a ``response.create`` just sent, filled in (or ``None``)."""
        with self._lock:
            armed = self.answers.get(call_id)
            if not armed:
                return None
            template, spoken = armed.pop(0)
            outputs = [
                str(event["item"].get("output", ""))
                for event in self.client_events.get(call_id, ())
                if event.get("type") == "conversation.item.create"
                and isinstance(event.get("item"), dict)
                and event["item"].get("type") == "function_call_output"
            ]
        return template.replace("{output}", outputs[-1] if outputs else ""), spoken

    # --- scripts ----------------------------------------------------------------------------

    def play(
        self, call_id: str, steps: Iterable[dict[str, Any]], *, wait_attached: float = 5.0
    ) -> None:
        """Run ``steps`` (see :mod:`.script`) in order, blocking; waits for a sideband first.

        Every step is checked before anything is played (``ValueError``).
        """
        steps = list(steps)
        for step in steps:
            if not isinstance(step, dict) or len(step) != 1 or next(iter(step)) not in STEPS:
                raise ValueError(f"a script step is {{kind: arguments}} with a kind of {STEPS}")
        call = self.fake.calls[call_id]
        if wait_attached:
            self.wait_attached(call_id, 1, wait_attached)
        for step in steps:
            play_step(self, call, *next(iter(step.items())))

    def play_in_background(self, call_id: str, steps: Iterable[dict[str, Any]]) -> threading.Thread:
        """:meth:`play` in a daemon thread (join it to wait for the end)."""
        thread = threading.Thread(target=self.play, args=(call_id, list(steps)), daemon=True)
        thread.start()
        return thread

    # --- attached sidebands ------------------------------------------------------------

    def attach(self, call: FakeCall, peer: SidebandPeer) -> None:
        """Register an accepted sideband; it gets the call's events from now on."""
        self._listen(call)
        with self._lock:
            self.peers.setdefault(call.id, []).append(peer)
            self.history.setdefault(call.id, []).append(peer)
        self._ensure_watcher()

    def detach(self, peer: SidebandPeer) -> None:
        with self._lock:
            peers = self.peers.get(peer.call_id, [])
            if peer in peers:
                peers.remove(peer)

    def record_sent(self, call: FakeCall, peer: SidebandPeer, event: dict[str, Any]) -> None:
        """A client event a sideband sent, kept in order."""
        peer.received.append(event)
        with self._lock:
            self.client_events.setdefault(call.id, []).append(event)

    def _ensure_watcher(self) -> None:
        # One per loop: the server's, and a test's own with the in-memory connector.
        loop = asyncio.get_running_loop()
        watcher = self._watchers.get(loop)
        if watcher is None or watcher.done():
            self._watchers[loop] = loop.create_task(self._watch(loop))

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close this loop's sidebands of calls that ended (hangup, peer gone, reset,
        limit); ends when the loop has none left (``attach`` starts it again)."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            with self._lock:
                call_ids = [
                    cid for cid, peers in self.peers.items() if any(p.loop is loop for p in peers)
                ]
                if not call_ids:
                    self._watchers.pop(loop, None)
                    return
            for call_id in call_ids:
                call = self.fake.calls.get(call_id)
                if call is not None and call.state in LIVE_STATES and self._expired(call):
                    self.emit(call, _expired_error())
                    call.state = "expired"
                if call is None or call.state not in LIVE_STATES:
                    self.drop(call_id, 1000, "call ended")


def _expired_error() -> dict[str, Any]:
    return {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "session_expired",
            "message": "Your session hit the maximum duration of 60 minutes.",
            "param": None,
        },
    }


_HUBS: weakref.WeakKeyDictionary[Any, FakeSidebands] = weakref.WeakKeyDictionary()
_HUBS_LOCK = threading.Lock()


def sidebands_of(fake: FakeCore) -> FakeSidebands:
    """The sideband hub of ``fake`` (one per fake, created on first use)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(fake)
        if hub is None:
            hub = _HUBS[fake] = FakeSidebands(fake)
        return hub
