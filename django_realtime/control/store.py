"""The database :class:`~.leash.CallStore`: what a controller sees, written to its
``RealtimeCall`` row and ``CallEvent`` rows as it happens.

Usage is added in place (``SET counter = counter + n``: no read-modify-write, so
nothing is lost whoever else writes the row), and so is the cost, exact per event;
many calls' usage goes in one statement per trip (:class:`UsageBatcher`).
Each method is one trip to the worker's database thread (``sync_to_async``, thread
sensitive: one thread for the whole worker, never the event loop).
"""

from __future__ import annotations

import asyncio
from contextlib import nullcontext
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import signals
from ..call_models import COUNTERS, CallEvent, CallStatus, RealtimeCall
from .pricing import Metered, price_for

#: ``cost_usd`` keeps 10 decimals: token prices per 1M with cents give at most 8.
COST_PLACES = Decimal("1e-10")


class UsageBatcher:
    """Writes the usage of many calls in one transaction per trip to the database thread.

    A worker holding hundreds of calls gets more events than one thread can commit one
    by one; each :meth:`add` waits until its UPDATE is committed (so a caller knows its
    usage is stored), but the trips are shared by whatever arrived meanwhile, and by
    whatever arrives in the ``linger`` seconds a trip waits before it starts (fewer,
    fuller transactions: less CPU per event for a few milliseconds of lag).
    """

    def __init__(self, linger: float = 0.0) -> None:
        self.linger = linger
        self._pending: list[tuple[DatabaseCallStore, Metered, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def add(self, store: DatabaseCallStore, metered: Metered) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((store, metered, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.ensure_future(self._flush())
        await done

    async def _flush(self) -> None:
        if self.linger:
            await asyncio.sleep(self.linger)  # let more calls' usage join this trip
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                await sync_to_async(_write_batch)([(s, m) for s, m, _ in batch])
            except Exception as err:  # each waiter sees the failure
                for *_, done in batch:
                    if not done.done():
                        done.set_exception(err)
                continue
            for *_, done in batch:
                if not done.done():
                    done.set_result(None)


def _write_batch(items: list[tuple[DatabaseCallStore, Metered]]) -> None:
    """One statement for every call's counters (a call with several events in the
    batch gets their sum), the unpriced warnings in one INSERT."""
    totals: dict[int, list[Any]] = {}
    warnings: list[CallEvent] = []
    for store, metered in items:
        row = totals.setdefault(store.pk, [0] * len(COUNTERS) + [Decimal(0)])
        for i, name in enumerate(COUNTERS):
            row[i] += getattr(metered.usage, name)
        if metered.cost_usd:
            row[-1] += metered.cost_usd.quantize(COST_PLACES)  # exact, as per event
        if not metered.priced:
            warnings.append(_unpriced_warning(store.pk, metered))
    changed = [[*row, pk] for pk, row in totals.items() if any(row)]
    # Each row's addition stands on its own: only a batch with warnings to insert needs
    # a transaction (saving a BEGIN and a COMMIT per trip otherwise).
    with transaction.atomic() if warnings else nullcontext():
        if changed:
            with connection.cursor() as cursor:
                cursor.executemany(_add_usage_sql(), changed)
        if warnings:
            CallEvent.objects.bulk_create(warnings)


#: The columns a usage write adds to, in the order of its parameters.
_ADDED = (*COUNTERS, "cost_usd")


def _add_usage_sql() -> str:
    """``UPDATE ... SET counter = counter + %s, ..., cost_usd = cost_usd + %s WHERE pk``:
    additions, so nothing is lost whoever else writes the row."""
    quote = connection.ops.quote_name
    meta = RealtimeCall._meta
    column_of = {field.name: str(field.column) for field in meta.concrete_fields}
    columns = [quote(column_of[name]) for name in _ADDED]  # the parameters' order
    sets = ", ".join(f"{c} = {c} + %s" for c in columns)
    where = quote(str(meta.pk.column if meta.pk is not None else "id"))
    # Only the model's own table and column names, quoted: the values are parameters.
    return f"UPDATE {quote(meta.db_table)} SET {sets} WHERE {where} = %s"  # noqa: S608


def _unpriced_warning(pk: int, metered: Metered) -> CallEvent:
    return CallEvent(
        call_id=pk,
        kind="warning",
        data={
            "message": "usage not priced",
            "model": metered.model,
            "rates": list(metered.unpriced),
        },
    )


class DatabaseCallStore:
    """The :class:`~.leash.CallStore` of one call (``owner``: the worker's name; a
    write of a worker that lost the lease still lands, the lease only guards claims)."""

    def __init__(self, call: RealtimeCall, owner: str, batcher: UsageBatcher | None = None) -> None:
        self.batcher = batcher
        self.pk = call.pk
        self.call_id = call.call_id
        self.owner = owner
        self.first_attach = call.attached_at is None
        price = price_for(call.model)
        self.prices_read_on = price.read_on if price is not None else None

    # --- CallStore ---------------------------------------------------------------------

    async def mark_active(self) -> None:
        await sync_to_async(self._mark_active)()

    async def add_usage(self, metered: Metered) -> None:
        if self.batcher is not None:
            await self.batcher.add(self, metered)
        else:
            await sync_to_async(self._add_usage)(metered)

    async def record_event(self, kind: str, data: dict[str, Any]) -> None:
        await sync_to_async(self._record_event)(kind, data)

    async def mark_ended(self, reason: str) -> None:
        await sync_to_async(self._mark_ended)(reason)

    # --- in the database thread ----------------------------------------------------------

    def _mark_active(self) -> None:
        now = timezone.now()
        RealtimeCall.objects.filter(pk=self.pk).exclude(status=CallStatus.ENDED).update(
            status=CallStatus.ACTIVE,
            attached_at=Coalesce(F("attached_at"), now),
            prices_read_on=self.prices_read_on,
        )
        CallEvent.objects.create(call_id=self.pk, kind="attached", data={"worker": self.owner})
        if self.first_attach:
            self.first_attach = False
            call = RealtimeCall.objects.get(pk=self.pk)
            signals.call_started.send(sender=RealtimeCall, call=call)

    def _add_usage(self, metered: Metered) -> None:
        _write_batch([(self, metered)])

    def _record_event(self, kind: str, data: dict[str, Any]) -> None:
        CallEvent.objects.create(call_id=self.pk, kind=kind, data=data)
        if kind == "config_violation":
            call = RealtimeCall.objects.get(pk=self.pk)
            signals.call_violation.send(
                sender=RealtimeCall,
                call=call,
                fields=data.get("fields", []),
                action=data.get("action"),
            )

    def _mark_ended(self, reason: str) -> None:
        end_reason: Any = Value(reason)
        if reason == "peer":
            # The call ended under us, but someone had asked (a beacon often races the
            # browser closing its connection): theirs is the better reason. Read in the
            # same UPDATE, so a request landing between a read and the write is not lost.
            end_reason = Case(
                When(~Q(end_requested=""), then=F("end_requested")), default=end_reason
            )
        ended = (
            RealtimeCall.objects.filter(pk=self.pk)
            .exclude(status=CallStatus.ENDED)
            .update(
                status=CallStatus.ENDED,
                end_reason=end_reason,
                ended_at=timezone.now(),
                lease_owner="",
                lease_expires_at=None,
            )
        )
        if ended:
            call = RealtimeCall.objects.get(pk=self.pk)
            signals.call_ended.send(
                sender=RealtimeCall, call=call, reason=call.end_reason, usage=call.usage()
            )
