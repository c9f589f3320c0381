"""The sideband: the server's own WebSocket into a live Realtime call.

``wss://api.openai.com/v1/realtime?call_id=rtc_...`` with the server's standard key
receives the call's server events (what the browser's data channel receives) and may
send client events (``session.update``, ``response.create``, ...). This is the only
module of the app that speaks WebSocket; it uses the ``websockets`` library (the one
openai-python uses), whose keepalive pings close a dead socket.

The end of a call is not signalled reliably on this socket: a browser closing its
peer connection may leave the sideband silent, and a clean close (1000/1001) may be a
proxy restart while the call goes on. So :class:`Sideband` re-dials on **any** close,
with exponential backoff and jitter, and only ``404 call_id_not_found`` on (re)connect
means the call is over (:class:`~django_realtime.exceptions.CallNotFound`)::

    async with Sideband(call_id) as sideband:
        await sideband.send({"type": "response.create"})
        try:
            async for event in sideband:
                ...
        except CallNotFound:
            ...  # the call has ended

Delivery of sent events is at least once: an event whose write failed is written
again on the next connection, in order, before anything queued after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed

from ...exceptions import (
    CallNotFound,
    RealtimeConfigurationError,
    SendQueueFull,
    SidebandClosed,
    UpstreamAuthenticationError,
)
from ..endpoint import encode_event, sideband_headers, sideband_url
from .connector import Connection, Connector, WebsocketsConnector, refusal_error

__all__ = [
    "Connection",
    "Connector",
    "Sideband",
    "WebsocketsConnector",
    "encode_event",
    "refusal_error",
    "sideband_headers",
    "sideband_url",
]

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 256
#: Failed dials in a row before giving up (:class:`SidebandClosed`).
DEFAULT_MAX_REDIALS = 8
BACKOFF_INITIAL = 0.25
BACKOFF_MAX = 8.0
#: A server event that starts with its ``type`` (the API's events do): read without
#: parsing the rest. An escaped character, or another first key, means a full parse.
LEADING_TYPE = re.compile(r'\{\s*"type"\s*:\s*"([^"\\]*)"')


class Sideband:
    """One call's sideband: an async context manager and an async iterator of events.

    - ``async for event in sideband`` yields server events (dicts) across re-dials;
      it ends when :meth:`close` is called and raises ``CallNotFound`` when the call is
      over, ``SidebandClosed`` when ``max_redials`` dials in a row failed.
    - :meth:`send` queues a client event (waiting while the bounded queue is full);
      :meth:`send_nowait` raises ``SendQueueFull`` instead. A writer task drains the
      queue into the current connection; events wait out a re-dial in the queue.
    - ``connector`` (a :data:`Connector`) is the test seam; ``sleep`` and ``jitter``
      (returning a float in [0, 1)) make the backoff observable.
    - ``types``: only these server events are yielded; any other whose ``type`` leads
      the message is skipped unparsed (a call's sideband carries many deltas a reader
      may not need). ``None``: every event.
    """

    def __init__(
        self,
        call_id: str,
        *,
        connector: Connector | None = None,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        max_redials: int = DEFAULT_MAX_REDIALS,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        types: frozenset[str] | None = None,
    ) -> None:
        self.call_id = call_id
        self.types = types
        self.url = sideband_url(call_id)
        self._connector: Connector = connector or WebsocketsConnector()
        self.max_redials = max_redials
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._jitter = jitter
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self._inflight: str | None = None
        self._conn: Connection | None = None
        self._connected = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._failure: BaseException | None = None
        self._received_on_conn = 0
        self._flaps = 0
        #: Observability: dials made, connections opened, close codes seen, backoffs slept.
        self.dials = 0
        self.connections = 0
        self.close_codes: list[int | None] = []
        self.delays: list[float] = []
        self.sent = 0
        #: Server events not yielded (``types``).
        self.skipped = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def connect(self) -> Sideband:
        """Dial (with the re-dial policy) and start the writer; idempotent."""
        if self._closed:
            raise SidebandClosed("The sideband was closed.", attempts=self.dials)
        if self._conn is None:
            await self._dial()
        if self._closed:  # closed while we dialled
            raise SidebandClosed("The sideband was closed.", attempts=self.dials)
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"sideband-{self.call_id}")
        return self

    async def close(self, *, flush_timeout: float | None = 1.0) -> None:
        """Write what is queued (up to ``flush_timeout`` s), then close with 1000."""
        if self._closed:
            return
        if flush_timeout and self._conn is not None and self._failure is None:
            try:
                await asyncio.wait_for(self._queue.join(), flush_timeout)
            except asyncio.TimeoutError:
                logger.warning("sideband %s: closing with %d unsent", self.call_id, self.unsent)
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._discard(conn)

    async def _discard(self, conn: Connection) -> None:
        """Close ``conn`` with 1000 (bounded by the connector's close timeout)."""
        try:
            await conn.close(1000, "")
        except Exception:  # already gone: nothing to tell the server
            logger.debug("sideband %s: close failed", self.call_id, exc_info=True)

    async def __aenter__(self) -> Sideband:
        return await self.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def unsent(self) -> int:
        """Events queued or in flight and not yet written."""
        return self._queue.qsize() + (self._inflight is not None)

    # --- receiving -----------------------------------------------------------------------

    def __aiter__(self) -> Sideband:
        return self

    async def __anext__(self) -> dict[str, Any]:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._conn is None:
                await self.connect()
            conn = self._conn
            assert conn is not None
            try:
                raw = await conn.recv()
            except (ConnectionClosed, OSError) as err:
                if self._closed:
                    raise StopAsyncIteration from None
                # The server's close code; ours (1011: keepalive timeout) if it sent none.
                frame = (err.rcvd or err.sent) if isinstance(err, ConnectionClosed) else None
                code = frame.code if frame is not None else None
                await self._redial(conn, code)
                continue
            self._received_on_conn += 1
            if self.types is not None and isinstance(raw, str):
                lead = LEADING_TYPE.match(raw)
                if lead is not None and lead.group(1) not in self.types:
                    self.skipped += 1
                    continue
            try:
                event = json.loads(raw)
            except ValueError:
                event = None
            if isinstance(event, dict) and (self.types is None or event.get("type") in self.types):
                return event
            if isinstance(event, dict):
                self.skipped += 1
                continue
            logger.warning("sideband %s: skipped a message that is not a JSON object", self.call_id)

    async def _redial(self, conn: Connection, code: int | None) -> None:
        if self._conn is conn:
            self._conn = None
            self._connected.clear()
        self.close_codes.append(code)
        # A socket that closes before it delivered anything is flapping: back off.
        self._flaps = self._flaps + 1 if self._received_on_conn == 0 else 0
        logger.info("sideband %s closed (code %s); re-dialling", self.call_id, code)
        try:
            if self._flaps:
                await self._backoff(self._flaps)
            await self._dial()
        except BaseException as err:
            self._failure = err
            self._connected.set()  # wake the writer so senders see the failure
            raise

    async def _dial(self) -> None:
        failures = self._flaps
        while not self._closed:
            if failures > self.max_redials:
                raise SidebandClosed(
                    f"The sideband of {self.call_id} could not be re-opened.",
                    close_code=self.close_codes[-1] if self.close_codes else None,
                    attempts=self.dials,
                )
            self.dials += 1
            try:
                conn = await self._connector(self.url, sideband_headers())
            except (CallNotFound, UpstreamAuthenticationError, RealtimeConfigurationError):
                raise
            except Exception as err:  # transient: network, 5xx, timeout
                failures += 1
                logger.info("sideband %s: dial failed (%s)", self.call_id, type(err).__name__)
                await self._backoff(failures)
                continue
            if self.closed:  # close() ran while we dialled: nobody will read this socket
                await self._discard(conn)
                return
            self._conn = conn
            self.connections += 1
            self._received_on_conn = 0
            self._connected.set()
            return

    async def _backoff(self, failures: int) -> None:
        ceiling = min(self.backoff_max, self.backoff_initial * 2 ** (failures - 1))
        delay = ceiling * (0.5 + self._jitter() / 2)  # "equal jitter": never zero
        self.delays.append(delay)
        await self._sleep(delay)

    # --- sending ---------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise SidebandClosed("The sideband has failed.") from self._failure
        if self._closed:
            raise SidebandClosed("The sideband was closed.", attempts=self.dials)

    async def send(self, event: Mapping[str, Any]) -> None:
        """Queue a client event; waits while the queue is full."""
        message = encode_event(event)
        self._check_usable()
        await self._queue.put(message)

    def send_nowait(self, event: Mapping[str, Any]) -> None:
        """Queue a client event or raise ``SendQueueFull`` (nothing is queued then)."""
        message = encode_event(event)
        self._check_usable()
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull as err:
            raise SendQueueFull(
                f"The sideband send queue of {self.call_id} is full ({self._queue.maxsize})."
            ) from err

    async def drain(self) -> None:
        """Wait until every queued event has been written."""
        await self._queue.join()

    async def _write_loop(self) -> None:
        while True:
            if self._inflight is None:
                self._inflight = await self._queue.get()
            await self._connected.wait()
            if self._failure is not None:
                return
            conn = self._conn
            if conn is None:
                await asyncio.sleep(0)
                continue
            try:
                await conn.send(self._inflight)
            except (ConnectionClosed, OSError):
                # The reader re-dials; keep this event for the next connection.
                if self._conn is conn:
                    self._connected.clear()
                continue
            self._inflight = None
            self.sent += 1
            self._queue.task_done()
