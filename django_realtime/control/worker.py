"""A worker: one asyncio loop following many calls, shared with other workers by leases.

Every ``CONTROL_POLL_SECONDS``, and at once on PostgreSQL when the site's ``NOTIFY``
reaches the worker's ``LISTEN`` (:mod:`.wakeup`), the worker passes on end requests (a
beacon, an admin's hang-up) to the calls it holds and claims calls nobody holds (new
ones, and those of a worker that died: its leases lapse after
``CONTROL_LEASE_SECONDS``); a heartbeat renews its leases three times per lease. Each
call runs a :class:`~.controller.CallController` with a
:class:`~.store.DatabaseCallStore`. The database is only touched from the worker's one
database thread (``sync_to_async``), never from the loop. :meth:`Worker.stop` (SIGTERM)
gives every call up at once, so another worker re-attaches them on its next poll.
``manage.py realtime_worker`` runs it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import DatabaseError

from ..call_models import RealtimeCall
from ..calls import notify_workers
from ..conf import conf
from ..exceptions import RealtimeConfigurationError, SidebandError
from . import leases
from .controller import HANDLED_EVENTS, CallController
from .leash import DEFAULT_WARNING, LOCKED_FIELDS, Clock, Leash
from .sideband import Connector, Sideband
from .store import DatabaseCallStore, UsageBatcher
from .wakeup import can_listen, listen

logger = logging.getLogger(__name__)

#: After a failed attach (the sideband could not be opened) a call waits this long.
UNATTACHED_RETRY_SECONDS = 10.0
#: How long a usage write waits for others to share its transaction.
USAGE_LINGER_SECONDS = 0.03
#: On stop, how long the cancelled calls may take to close their sidebands (each
#: close is itself bounded by the connector's close timeout) before a second cancel.
SHUTDOWN_GRACE_SECONDS = 5.0


def default_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def leash_for(call: RealtimeCall) -> Leash:
    """The leash of ``call``: its expected session and its preset's limits."""
    preset = call.preset
    if preset is None:  # the preset was deleted: meter only, with the API's limit
        return Leash(session=call.session or {}, started_at=call.created_at.timestamp())
    unlocked = frozenset(preset.allowed_overrides or ()) & frozenset(LOCKED_FIELDS)
    return Leash(
        session=call.session or {},
        max_duration_seconds=preset.max_duration_seconds,
        warning_instructions=preset.max_duration_warning or DEFAULT_WARNING,
        idle_timeout_seconds=preset.idle_timeout_seconds,
        config_lock=preset.config_lock,
        unlocked=unlocked,
        # A call re-attached after a handover has been greeted already.
        greeting=preset.greeting if call.attached_at is None else "",
        store_transcripts=preset.store_transcripts,
        started_at=call.created_at.timestamp(),
    )


class Worker:
    """Claims calls and runs their controllers until :meth:`stop`.

    ``connector``, ``hangup`` and ``clock`` are handed to each controller (test
    seams); the other arguments default to the ``CONTROL_*`` settings. ``listen``:
    wake on PostgreSQL's ``NOTIFY`` (default: where the database can, see
    :func:`.wakeup.can_listen`); polling goes on either way.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        max_calls: int | None = None,
        lease_seconds: float | None = None,
        poll_seconds: float | None = None,
        connector: Connector | None = None,
        hangup: Callable[[str], Awaitable[Any]] | None = None,
        clock: Clock | None = None,
        listen: bool | None = None,
    ) -> None:
        self.name = name or default_name()
        self.max_calls = max_calls or conf.CONTROL_MAX_CALLS_PER_WORKER
        self.lease_seconds = lease_seconds or conf.CONTROL_LEASE_SECONDS
        self.poll_seconds = poll_seconds or conf.CONTROL_POLL_SECONDS
        self.connector = connector
        self.hangup = hangup
        self.clock = clock
        self.batcher = UsageBatcher(USAGE_LINGER_SECONDS)  # one trip for many calls' usage
        self.controllers: dict[str, CallController] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._asked: set[str] = set()
        self._stopping: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._last_renew = 0.0
        self._listen = listen
        self._notified = False
        #: Set while the ``LISTEN`` is in place (observability, and tests wait on it).
        self.listening = asyncio.Event()
        #: Observability: calls claimed, calls given up (lost lease or stop).
        self.claimed = 0
        self.lost = 0

    # --- the loop ------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll, claim, follow; returns once stopped and every call is given up."""
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        logger.info("worker %s: started (up to %d calls)", self.name, self.max_calls)
        listener = self._start_listening()
        try:
            while not self._stopping.is_set():
                self._wake.clear()  # before the tick: a NOTIFY during it polls again
                try:
                    await self.tick()
                except DatabaseError:  # a database restart, a lock: the next poll retries
                    logger.exception("worker %s: poll failed", self.name)
                waits = [self._stopping.wait(), self._wake.wait()]
                _, pending = await asyncio.wait(
                    [asyncio.ensure_future(w) for w in waits],
                    timeout=self.poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                for task in pending:
                    task.cancel()
        finally:
            if listener is not None:
                listener.cancel()
                await asyncio.gather(listener, return_exceptions=True)
                self.listening.clear()
            await self.shutdown()

    def _start_listening(self) -> asyncio.Task[None] | None:
        wanted = self._listen if self._listen is not None else can_listen()
        if not wanted:
            return None

        def listening() -> None:
            logger.info("worker %s: listening for new calls (LISTEN)", self.name)
            self.listening.set()
            self.wake()  # what was recorded while nobody listened

        return asyncio.create_task(
            listen(self.wake, on_listening=listening), name=f"listen-{self.name}"
        )

    def stop(self) -> None:
        """Stop soon (safe from a signal handler on the loop)."""
        if self._stopping is not None:
            self._stopping.set()

    def wake(self) -> None:
        """Poll now, end requests included (a NOTIFY arrived)."""
        self._notified = True
        if self._wake is not None:
            self._wake.set()

    async def tick(self) -> None:
        """One poll: heartbeat when due, end requests, then claims.

        While the worker LISTENs, an end request arrives as a NOTIFY, so end requests
        are read on one (and with each heartbeat, the fallback); claims are polled
        whatever happens: a lapsed lease sends no NOTIFY.
        """
        heartbeat = time.monotonic() - self._last_renew >= self.lease_seconds / 3
        if heartbeat:
            await self._renew()
        notified, self._notified = self._notified, False
        if self.controllers and (notified or heartbeat or not self.listening.is_set()):
            await self._pass_on_end_requests()
        room = self.max_calls - len(self.tasks)
        if room > 0 and not (self._stopping and self._stopping.is_set()):
            for call in await sync_to_async(leases.claim)(self.name, room, self.lease_seconds):
                self._follow(call)

    async def shutdown(self) -> None:
        """Give every call up now (no hang-up: the calls go on with another worker)."""
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()  # each controller closes its sideband as it unwinds
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                logger.warning("worker %s: %s slow to stop", self.name, task.get_name())
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.lost += len(tasks)
        released = await sync_to_async(leases.release)(self.name)
        if released:  # the other workers LISTEN: they take the calls over at once
            await sync_to_async(notify_workers)()
        logger.info("worker %s: stopped, %d call(s) given up", self.name, released)

    # --- calls ---------------------------------------------------------------------------

    def _follow(self, call: RealtimeCall) -> None:
        store = DatabaseCallStore(call, self.name, self.batcher)
        controller = CallController(
            call.call_id,
            leash_for(call),
            store,
            sideband=Sideband(call.call_id, connector=self.connector, types=HANDLED_EVENTS),
            hangup=self.hangup,
            clock=self.clock,
        )
        self.controllers[call.call_id] = controller
        task = asyncio.create_task(self._run(controller), name=f"call-{call.call_id}")
        self.tasks[call.call_id] = task
        self.claimed += 1
        logger.info("worker %s: following %s", self.name, call.call_id)

    async def _run(self, controller: CallController) -> None:
        call_id = controller.call_id
        try:
            reason = await controller.run()
            logger.info("worker %s: %s ended (%s)", self.name, call_id, reason)
        except asyncio.CancelledError:
            raise  # handed over: the lease is released by whoever cancelled us
        except (SidebandError, RealtimeConfigurationError) as err:
            # The call may still be live: leave it for another try (by anyone).
            logger.warning("worker %s: cannot follow %s: %s", self.name, call_id, err)
            await controller.store.record_event("error", {"message": str(err)[:500]})
            await sync_to_async(leases.mark_unattached)(
                self.name, call_id, UNATTACHED_RETRY_SECONDS
            )
        except Exception:
            logger.exception("worker %s: controller of %s failed", self.name, call_id)
            await sync_to_async(leases.mark_unattached)(
                self.name, call_id, UNATTACHED_RETRY_SECONDS
            )
        finally:
            self.controllers.pop(call_id, None)
            self.tasks.pop(call_id, None)
            self._asked.discard(call_id)

    async def _renew(self) -> None:
        self._last_renew = time.monotonic()
        held = list(self.tasks)
        kept = await sync_to_async(leases.renew)(self.name, held, self.lease_seconds)
        for call_id in held:
            task = self.tasks.get(call_id)
            if call_id not in kept and task is not None and not task.done():
                # Another worker holds it now (our lease lapsed): let it follow the call.
                logger.warning("worker %s: lost the lease on %s", self.name, call_id)
                task.cancel()
                self.lost += 1

    async def _pass_on_end_requests(self) -> None:
        requests = await sync_to_async(leases.end_requests)(self.name)
        for call_id, reason in requests.items():
            controller = self.controllers.get(call_id)
            if controller is not None and call_id not in self._asked:
                self._asked.add(call_id)
                controller.request_end(reason)
