"""One live call on a leash, independent of the database.

A :class:`CallController` follows one call through its :class:`~.sideband.Sideband`
and a :class:`CallStore` (the worker's database adapter, or anything else):

- **metering**: each ``response.done`` and input transcription adds its usage and cost
  (:mod:`.pricing`) to the store as it arrives;
- **maximum duration**: a spoken warning (``response.create`` with the leash's words)
  ``warning_seconds`` before the limit, then a hang-up; without a limit of its own a
  call gets the API's 60 minutes;
- **idle timeout**: no ``input_audio_buffer.speech_started`` for that long -> hang up;
- **config lock**: a ``session.updated`` whose instructions, tools, tool choice, model,
  voice or output limit differ from the expected session is re-asserted (``revert``)
  or ends the call (``hangup``); either way a ``config_violation`` event is recorded;
- **greeting**: the first ``response.create`` once attached;
- **the end**: every end has a reason (:data:`END_REASONS`). ``request_end`` is how
  the worker passes on a beacon, an admin's hang-up or a quota.

Time comes from an injectable clock (``now()`` + ``await sleep()``), so tests move it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from ..exceptions import CallNotFound, SidebandClosed, UpstreamError, UpstreamHTTPError
from .leash import (
    API_SESSION_LIMIT,
    CONFIG_LOCK_MODES,
    DEFAULT_WARNING,
    END_REASONS,
    LOCKED_FIELDS,
    CallStore,
    Clock,
    Leash,
    SystemClock,
    as_update,
    locked_values,
)
from .pricing import Metered, meter_response_done, meter_transcription
from .quota_watch import QuotaWatch
from .sideband import Sideband
from .tool_dispatch import ARGUMENTS_DONE, ITEM_EVENTS, ToolDispatcher
from .transcripts import record_line

__all__ = [
    "API_SESSION_LIMIT",
    "CONFIG_LOCK_MODES",
    "DEFAULT_WARNING",
    "END_REASONS",
    "HANDLED_EVENTS",
    "LOCKED_FIELDS",
    "CallController",
    "CallStore",
    "Clock",
    "Leash",
    "SystemClock",
    "locked_values",
]

logger = logging.getLogger(__name__)

HANGUP_RETRY_SECONDS = 5.0
TRANSCRIPTION_DONE = "conversation.item.input_audio_transcription.completed"
#: The server events a controller (and its tool dispatcher) reads; its sideband skips
#: the others (audio and text deltas, ...) before parsing them.
HANDLED_EVENTS = frozenset(
    {
        "response.done",
        TRANSCRIPTION_DONE,
        "response.output_audio_transcript.done",
        "input_audio_buffer.speech_started",
        "session.created",
        "session.updated",
        ARGUMENTS_DONE,
        "error",
        *ITEM_EVENTS,
    }
)


class CallController:
    """Follow ``call_id`` to its end under ``leash``; :meth:`run` returns the end reason."""

    def __init__(
        self,
        call_id: str,
        leash: Leash,
        store: CallStore,
        *,
        sideband: Sideband | None = None,
        hangup: Callable[[str], Awaitable[Any]] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if leash.config_lock not in CONFIG_LOCK_MODES:
            raise ValueError(f"config_lock must be one of {CONFIG_LOCK_MODES}")
        self.call_id = call_id
        self.leash = leash
        self.store = store
        self.sideband = sideband or Sideband(call_id, types=HANDLED_EVENTS)
        self._hangup = hangup
        self.clock = clock or SystemClock()
        self.end_reason: str | None = None
        self._hung_up = False
        self._ending = False
        self._hangup_retry_at: float | None = None
        self._warned = False
        self._expired = False
        self._baseline: dict[str, Any] = locked_values(leash.session)
        self._baseline_complete = False
        self._started_at = leash.started_at
        self._last_speech_at = 0.0
        self._pending: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self.tools = ToolDispatcher(self.sideband, store, leash, pending=self._pending)  # issue 10
        self.quota = QuotaWatch(self)  # issue 10: daily budget -> warning, end reason "quota"

    # --- the run -----------------------------------------------------------------------

    async def run(self) -> str:
        """Attach, follow the call, record its end; returns the end reason.

        The sideband is closed however the run ends, a cancellation (the worker
        stopping, a lost lease) included: an open socket is never left to the
        garbage collector, and the API sees a clean close.
        """
        try:
            await self._follow()
        except CallNotFound:  # on (re)connect: the call is over
            pass
        finally:
            await self.sideband.close(flush_timeout=None)
        return await self._finish(self.end_reason or ("expired" if self._expired else "peer"))

    async def _follow(self) -> None:
        await self.sideband.connect()
        self._started_at = self._started_at if self._started_at is not None else self.clock.now()
        self._last_speech_at = self.clock.now()
        await self.store.mark_active()
        if self.leash.greeting:
            await self.sideband.send(
                {"type": "response.create", "response": {"instructions": self.leash.greeting}}
            )
        timers = asyncio.ensure_future(self._timers())
        self.quota.start()  # issue 10
        try:
            async for event in self.sideband:
                await self._handle(event)
        except SidebandClosed as err:
            # The call may still be live: say so; a worker may attach again later.
            await self.store.record_event("error", {"message": "sideband lost", "detail": str(err)})
            raise
        finally:
            timers.cancel()
            self.quota.stop()  # issue 10
            await asyncio.gather(timers, *self._pending, return_exceptions=True)

    async def _finish(self, reason: str) -> str:
        self.end_reason = reason
        await self.store.mark_ended(reason)
        return reason

    def request_end(self, reason: str) -> None:
        """End the call for ``reason`` (``beacon``, ``admin``, ``quota``...): hang up."""
        if reason not in END_REASONS:
            raise ValueError(f"unknown end reason {reason!r}")
        task = asyncio.ensure_future(self._end(reason))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _end(self, reason: str) -> None:
        if self._hung_up or self._ending:
            return
        self.end_reason = self.end_reason or reason
        self._ending = True
        try:
            if self._hangup is None:
                from .. import client

                await client.ahangup_call(self.call_id)
            else:
                await self._hangup(self.call_id)
        except UpstreamHTTPError as err:
            if err.status_code != 404:  # 404: the call is already over
                return await self._hangup_failed(err)
        except UpstreamError as err:
            return await self._hangup_failed(err)
        finally:
            self._ending = False
        self._hung_up = True
        await self.sideband.close(flush_timeout=None)

    async def _hangup_failed(self, err: UpstreamError) -> None:
        logger.warning("call %s: hang-up failed (%s); retrying", self.call_id, err)
        await self.store.record_event("error", {"message": "hangup failed", "detail": str(err)})
        self._hangup_retry_at = self.clock.now() + HANGUP_RETRY_SECONDS
        self._wake.set()  # the timers re-plan with the retry

    # --- timers ------------------------------------------------------------------------

    def _limit(self) -> float:
        own = self.leash.max_duration_seconds
        return float(min(own, API_SESSION_LIMIT) if own else API_SESSION_LIMIT)

    async def _timers(self) -> None:
        assert self._started_at is not None
        while not self._hung_up:
            now = self.clock.now()
            due: list[tuple[float, Callable[[], Awaitable[None]]]] = []
            if self.end_reason is not None:  # ending: only a failed hang-up is retried
                if self._hangup_retry_at is None or self._ending:
                    await self._nap(HANGUP_RETRY_SECONDS)
                    continue
                due.append((self._hangup_retry_at, self._retry_end))
            else:
                end_at = self._started_at + self._limit()
                due.append((end_at, lambda: self._end("max_duration")))
                if not self._warned and self.leash.warning_seconds > 0:
                    due.append((end_at - self.leash.warning_seconds, self._warn))
                if self.leash.idle_timeout_seconds:
                    idle_at = self._last_speech_at + self.leash.idle_timeout_seconds
                    due.append((idle_at, lambda: self._end("idle")))
            at, action = min(due, key=lambda item: item[0])
            if at <= now:
                await action()
            else:
                await self._nap(at - now)

    async def _nap(self, seconds: float) -> None:
        """Sleep on the clock until ``seconds`` pass or the plan changes (``_wake``)."""
        self._wake.clear()
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    async def _retry_end(self) -> None:
        self._hangup_retry_at = None
        await self._end(self.end_reason or "admin")

    async def _warn(self) -> None:
        self._warned = True
        await self.sideband.send(
            {
                "type": "response.create",
                "response": {"instructions": self.leash.warning_instructions},
            }
        )
        await self.store.record_event(
            "warning",
            {"message": "maximum duration near", "seconds_left": self.leash.warning_seconds},
        )

    # --- events ------------------------------------------------------------------------

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if await self.tools.handle(event):  # issue 10: a server tool's call, answered there
            return
        if kind == "response.done":
            await self._meter(meter_response_done(event, self.leash.model))
        elif kind == TRANSCRIPTION_DONE:
            await self._meter(meter_transcription(event, self.leash.transcription_model))
            if self.leash.store_transcripts:
                await record_line(self, "user", event)  # issue 10
        elif kind == "response.output_audio_transcript.done" and self.leash.store_transcripts:
            await record_line(self, "assistant", event)  # issue 10
        elif kind == "input_audio_buffer.speech_started":
            self._last_speech_at = self.clock.now()
        elif kind in ("session.created", "session.updated"):
            await self._check_session(event.get("session"), first=kind == "session.created")
        elif kind == "response.function_call_arguments.done":
            await self.store.record_event(
                "tool_call", {k: event.get(k) for k in ("call_id", "name", "arguments")}
            )
        elif kind == "error":
            error = event.get("error") or {}
            if isinstance(error, dict) and error.get("code") == "session_expired":
                self._expired = True
            await self.store.record_event("error", {"error": error})

    async def _meter(self, metered: Metered) -> None:
        if metered.usage or metered.cost_usd != Decimal(0):
            await self.store.add_usage(metered)

    async def _check_session(self, session: Any, *, first: bool) -> None:
        if not isinstance(session, dict):
            return
        current = locked_values(session)
        if first and not self._baseline_complete:
            # Fields the expected session leaves to the API's defaults: as first seen.
            for name, value in current.items():
                self._baseline.setdefault(name, value)
            self._baseline_complete = True
        if self.leash.config_lock == "off":
            return
        drifted = {
            name: expected
            for name, expected in self._baseline.items()
            if name not in self.leash.unlocked and current.get(name, expected) != expected
        }
        if not drifted:
            return
        action = self.leash.config_lock
        await self.store.record_event(
            "config_violation", {"fields": sorted(drifted), "action": action}
        )
        if action == "revert":
            session_type = str(session.get("type") or self.leash.session.get("type", "realtime"))
            await self.sideband.send(as_update(session_type, drifted))
        else:
            await self._end("config_violation")
