"""The fake's real WebRTC peer (aiortc), one per call, on one background event loop.

Needs the ``testing`` extra (aiortc); importing this module without it raises
:class:`~.errors.MissingExtraError` naming the extra. The HTTP side of the fake
imports it only when an SDP offer actually has to be answered.

Network hygiene (nothing may leave the machine): every peer uses
``RTCConfiguration(iceServers=[])`` (aiortc's default is Google's public STUN
server), gathers host candidates on 127.0.0.1 only (:mod:`.loopback`), and ignores
the offer's mDNS (``.local``) candidates, whose resolution would multicast on the LAN.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from . import loopback
from .effective import deep_merge
from .errors import APIError, MissingExtraError
from .media import ToneTrack, is_silent, strip_mdns_candidates
from .state import FakeCall, PeerOptions
from .validation import validate_session
from .wire import new_id

try:
    from aiortc import (
        RTCConfiguration,
        RTCPeerConnection,
        RTCSessionDescription,
    )
    from aiortc.mediastreams import MediaStreamError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingExtraError("aiortc", "The fake Realtime API's WebRTC peer") from exc

logger = logging.getLogger(__name__)

T = TypeVar("T")

ANSWER_TIMEOUT = 10.0
CLOSE_TIMEOUT = 5.0


class CallPeer:
    """One ``RTCPeerConnection`` answering one call, recording into its :class:`FakeCall`."""

    def __init__(self, call: FakeCall, options: PeerOptions) -> None:
        self.call = call
        self.options = options
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.channel: Any = None
        self.tone: ToneTrack | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transcript_due = False
        self.pc.on("connectionstatechange", self._on_connection_state)
        self.pc.on("datachannel", self._on_datachannel)
        self.pc.on("track", self._on_track)

    async def answer(self, offer_sdp: str) -> str:
        """Set the offer, add the outgoing tone (realtime only), return the answer SDP."""
        offer = RTCSessionDescription(sdp=strip_mdns_candidates(offer_sdp), type="offer")
        await self.pc.setRemoteDescription(offer)
        if self.call.session_type == "realtime":
            # A transcription session never speaks: no outgoing track, so the answer's
            # audio m-line is recvonly, as the real API's would be.
            self.tone = ToneTrack(self.call, self.options.tone_hz)
            self.pc.addTrack(self.tone)  # reuses the offer's sendrecv audio transceiver
        await self.pc.setLocalDescription(await self.pc.createAnswer())  # gathers ICE
        return str(self.pc.localDescription.sdp)

    async def close(self) -> None:
        """Hang up: stop the tone, the audio reader and the connection."""
        for task in list(self._tasks):
            task.cancel()
        if self.tone is not None:
            self.tone.stop()
        await self.pc.close()

    # --- events -------------------------------------------------------------------

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        self.call.connection_state = state
        self.call.connection_states.append(state)
        if state == "connected" and self.call.state == "connecting":
            self.call.state = "active"
        if state in ("failed", "closed") and self.call.state in ("connecting", "active"):
            # Ended from the browser's side (or ICE failed); hangup/drop set theirs first.
            self.call.state = state
        if state == "failed":
            await self.pc.close()

    def _on_datachannel(self, channel: Any) -> None:
        self.channel = channel
        self.call.data_channel_label = channel.label
        self.call.data_channel_open = True
        channel.on("message", self._on_message)
        channel.on("close", self._on_channel_close)
        self.send({"type": "session.created", "session": self.call.session})
        loop = asyncio.get_running_loop()  # sideband hook: events from the fake's sideband
        self.call.data_channel_sender = lambda event: loop.call_soon_threadsafe(self.send, event)
        if self._transcript_due:
            self._send_transcripts()

    def _on_channel_close(self) -> None:
        self.call.data_channel_open = False
        self.call.data_channel_sender = None  # sideband hook

    def _on_track(self, track: Any) -> None:
        if track.kind == "audio":
            self._spawn(self._consume(track))

    def _on_message(self, message: Any) -> None:
        try:
            event = json.loads(message)
        except (TypeError, ValueError):
            event = None
        if not isinstance(event, dict):
            event = {"type": "<not a JSON object>", "raw": str(message)[:200]}
            self.call.record_client_event(event)
            self._send_error("invalid_json", "The event is not a JSON object.", event)
            return
        self.call.record_client_event(event)
        if event.get("type") == "session.update":
            self._session_update(event)

    def _session_update(self, event: dict[str, Any]) -> None:
        update = event.get("session")
        try:
            validate_session(update, "session", types=(self.call.session_type,))
        except APIError as err:
            self._send_error(err.code or "invalid_value", err.message, event, param=err.param)
            return
        assert isinstance(update, dict)
        self.call.session = deep_merge(self.call.session, update)
        self.send({"type": "session.updated", "session": self.call.session})

    # --- audio in -------------------------------------------------------------------

    async def _consume(self, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                self.call.audio_frames_received += 1
                if self.call.first_audio_frame_at is None:
                    self.call.first_audio_frame_at = time.time()
                if not is_silent(frame):
                    self.call.nonsilent_frames_received += 1
                    if self.call.nonsilent_frames_received == self.options.transcript_after_frames:
                        self._transcript_due = True
                        if self.call.data_channel_open:
                            self._send_transcripts()
        except MediaStreamError:
            pass

    # --- events out -------------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> None:
        """Send a server event on the data channel (dropped if it is not open)."""
        event = {"type": event["type"], "event_id": new_id("event"), **event}
        for listener in list(self.call.server_event_listeners):  # sideband hook: mirror
            listener(event)
        if self.channel is None or self.channel.readyState != "open":
            return
        self.channel.send(json.dumps(event))
        self.call.record_server_event(event["type"])

    def _send_error(
        self, code: str, message: str, cause: dict[str, Any], *, param: str | None = None
    ) -> None:
        self.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": param,
                    "event_id": cause.get("event_id"),
                },
            }
        )

    def _send_transcripts(self) -> None:
        if self.call.transcripts_sent:
            return
        self.call.transcripts_sent = True
        self._transcript_due = False
        self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": new_id("item"),
                "content_index": 0,
                "transcript": self.options.user_transcript,
            }
        )
        if self.call.session_type != "realtime":
            return
        response_id, item_id = new_id("resp"), new_id("item")
        where = {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": 0,
            "content_index": 0,
        }
        words = self.options.assistant_transcript.split(" ")
        for index, word in enumerate(words):
            delta = word if index == 0 else " " + word
            self.send({"type": "response.output_audio_transcript.delta", **where, "delta": delta})
        self.send(
            {
                "type": "response.output_audio_transcript.done",
                **where,
                "transcript": self.options.assistant_transcript,
            }
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class PeerHost:
    """One daemon thread running one asyncio loop that hosts every peer of a fake.

    Started lazily on the first offer; :meth:`stop` hangs up everything and ends the
    thread. All methods are called from other threads and block until done.
    """

    def __init__(self, options: PeerOptions) -> None:
        self.options = options
        self._peers: dict[str, CallPeer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()
                thread = threading.Thread(
                    target=self._run, args=(loop, ready), name="fake-realtime-peers", daemon=True
                )
                thread.start()
                ready.wait(5)
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        loopback.restrict_current_thread()
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        try:
            loop.run_forever()
        finally:
            # As asyncio.run does: close what the loop's async generators hold (a pooled
            # client of this loop, for one) on the loop, not in the garbage collector.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        loop = self._ensure_loop()
        if threading.current_thread() is self._thread:
            raise RuntimeError("PeerHost methods must not be called from its own loop thread")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def answer(self, call: FakeCall, offer_sdp: str) -> str:
        """Create the peer for ``call`` and return its answer SDP."""

        async def create() -> str:
            peer = CallPeer(call, self.options)
            self._peers[call.id] = peer
            try:
                return await peer.answer(offer_sdp)
            except BaseException:
                self._peers.pop(call.id, None)
                await peer.close()
                raise

        return self._call(create(), ANSWER_TIMEOUT)

    def close_call(self, call_id: str) -> bool:
        """Close one call's peer; ``False`` if it had none (or it is already closed)."""
        if self._loop is None:
            return False

        async def close() -> bool:
            peer = self._peers.pop(call_id, None)
            if peer is None:
                return False
            await peer.close()
            return True

        return self._call(close(), CLOSE_TIMEOUT)

    def close_all(self) -> int:
        """Hang up every peer; returns how many were open."""
        if self._loop is None:
            return 0

        async def close_all() -> int:
            peers = list(self._peers.values())
            self._peers.clear()
            await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)
            return len(peers)

        return self._call(close_all(), CLOSE_TIMEOUT)

    def stop(self) -> None:
        """Hang up everything and end the loop thread (a new one starts if used again)."""
        if self._loop is None:
            return
        try:
            self.close_all()
        except Exception:  # the thread must still stop
            logger.exception("closing the fake's peers failed")
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(CLOSE_TIMEOUT)
