"""What the fake remembers: minted secrets, calls (with per-call stats), faults, the log.

Plain data, shared between the HTTP handling (any thread) and the WebRTC peers
(the fake's event-loop thread). Counters are plain ints written by one thread and
read by others, which is safe in CPython; lists are copied under a lock when read.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class MintedSecret:
    """A client secret the fake issued. The value is the fake's own ``ek_``, not a real key."""

    value: str
    created_at: float
    expires_at: int
    session: dict[str, Any]
    uses: int = 0


@dataclass
class LoggedRequest:
    """One request as the fake saw it, with credentials cut to a short prefix."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    parts: dict[str, Any] | None = None
    text: str | None = None
    status: int | None = None
    request_id: str | None = None
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "headers": dict(self.headers),
            "json": self.json,
            "parts": self.parts,
            "text": self.text,
            "status": self.status,
            "request_id": self.request_id,
            "at": self.at,
        }


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``method`` + ``path`` (fnmatch) this way."""

    path: str
    status: int = 500
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    method: str | None = "POST"
    timeout: float | None = None  # seconds: simulate a hang instead of answering

    def matches(self, method: str, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return fnmatch.fnmatchcase(path, self.path)


@dataclass
class PeerOptions:
    """How the fake's peers behave; set on ``FakeRealtimeAPI`` and shared by all calls."""

    tone_hz: int = 440
    #: Non-silent 20 ms frames heard before transcripts are sent (25 = 0.5 s of sound).
    transcript_after_frames: int = 25
    user_transcript: str = "Hello from the fake microphone."
    assistant_transcript: str = "Hello! This is the fake Realtime model speaking."


class FakeCall:
    """One call (WebRTC or SIP) and everything the fake observed about it.

    Attributes tests read: ``id``, ``kind`` (``webrtc`` / ``sip``), ``state``,
    ``connection_state`` (aiortc's), ``session`` (effective, updated by
    ``session.update``), ``session_type``, ``auth`` (``ephemeral`` / ``server``),
    ``client_secret`` + ``key_was_minted``, ``data_channel_label``,
    ``audio_frames_received``, ``nonsilent_frames_received``, ``audio_frames_sent``,
    ``client_events`` / ``client_event_types``, ``server_event_types``,
    ``transcripts_sent``, and for SIP ``actions``, ``reject_status``, ``refer_target``.
    """

    def __init__(
        self,
        call_id: str,
        *,
        kind: str,
        session: dict[str, Any],
        auth: str | None = None,
        client_secret: str | None = None,
        key_was_minted: bool = False,
        sip_headers: list[dict[str, str]] | None = None,
    ) -> None:
        self.id = call_id
        self.kind = kind
        self.session = session
        self.auth = auth
        self.client_secret = client_secret
        self.key_was_minted = key_was_minted
        self.sip_headers = list(sip_headers or [])
        self.created_at = time.time()
        self.state = "incoming" if kind == "sip" else "connecting"
        self.connection_state = "new"
        self.connection_states: list[str] = []
        self.data_channel_label: str | None = None
        self.data_channel_open = False
        self.audio_frames_received = 0
        self.nonsilent_frames_received = 0
        self.audio_frames_sent = 0
        self.first_audio_frame_at: float | None = None
        self.client_events: list[dict[str, Any]] = []
        self.server_event_types: list[str] = []
        self.transcripts_sent = False
        self.actions: list[dict[str, Any]] = []
        self.reject_status: int | None = None
        self.refer_target: str | None = None
        # Sideband hooks (testing/sideband.py): called with every server event of the
        # call; and, while a data channel is open, a thread-safe way to send on it.
        self.server_event_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.data_channel_sender: Callable[[dict[str, Any]], object] | None = None
        self._lock = threading.Lock()

    @property
    def session_type(self) -> str:
        return str(self.session.get("type", "realtime"))

    @property
    def client_event_types(self) -> list[str]:
        """The ``type`` of every event the client sent on the data channel, in order."""
        with self._lock:
            return [str(event.get("type")) for event in self.client_events]

    def record_client_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            self.client_events.append(event)

    def record_server_event(self, event_type: str) -> None:
        with self._lock:
            self.server_event_types.append(event_type)

    def record_action(self, action: str, body: Any) -> None:
        with self._lock:
            self.actions.append({"action": action, "body": body, "at": time.time()})

    def stats(self) -> dict[str, Any]:
        """A JSON-able snapshot of everything above."""
        with self._lock:
            return {
                "id": self.id,
                "kind": self.kind,
                "state": self.state,
                "connection_state": self.connection_state,
                "connection_states": list(self.connection_states),
                "session_type": self.session_type,
                "session": self.session,
                "auth": self.auth,
                "key_was_minted": self.key_was_minted,
                "client_secret": self.client_secret,
                "data_channel_label": self.data_channel_label,
                "data_channel_open": self.data_channel_open,
                "audio_frames_received": self.audio_frames_received,
                "nonsilent_frames_received": self.nonsilent_frames_received,
                "audio_frames_sent": self.audio_frames_sent,
                "client_events": list(self.client_events),
                "client_event_types": [str(e.get("type")) for e in self.client_events],
                "server_event_types": list(self.server_event_types),
                "transcripts_sent": self.transcripts_sent,
                "sip_headers": list(self.sip_headers),
                "actions": list(self.actions),
                "reject_status": self.reject_status,
                "refer_target": self.refer_target,
            }

    def wait_for(
        self, predicate: Callable[[FakeCall], bool], timeout: float = 5.0, interval: float = 0.02
    ) -> FakeCall:
        """Block until ``predicate(self)`` holds; ``TimeoutError`` with the stats otherwise."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() > deadline:
                raise TimeoutError(f"call {self.id} did not reach the condition: {self.stats()}")
            time.sleep(interval)
        return self

    def __repr__(self) -> str:
        return f"<FakeCall {self.id} {self.kind} {self.state}>"
