"""The database call store, without a worker: usage lands in the row's counters (with
or without the batcher), unpriced usage leaves a warning row, a batch that cannot be
written fails every waiter instead of losing it silently, and ``peer`` gives way to an
end somebody asked for."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError

from django_realtime import calls
from django_realtime.control import store as store_module
from django_realtime.control.pricing import Metered, Usage
from django_realtime.control.store import DatabaseCallStore, UsageBatcher
from django_realtime.models import CallEvent, RealtimeCall, SessionPreset

pytestmark = pytest.mark.django_db


def relay(preset: SessionPreset, call_id: str = "rtc_store") -> RealtimeCall:
    call = calls.record_relay_call(
        call_id, user=None, preset=preset, session={"type": "realtime", "model": "gpt-realtime"}
    )
    assert call is not None
    return call


def test_usage_without_a_batcher_adds_to_the_counters_and_unpriced_usage_is_flagged(
    preset: SessionPreset,
) -> None:
    call = relay(preset)
    store = DatabaseCallStore(call, "w1")
    priced = Metered(Usage(input_text_tokens=10), Decimal("0.00004"), "gpt-realtime")
    unpriced = Metered(
        Usage(output_audio_tokens=5),
        Decimal(0),
        "gpt-unknown",
        priced=False,
        unpriced=("audio_output",),
    )
    nothing = Metered(Usage(), Decimal(0), "gpt-realtime")

    async def scenario() -> None:
        await store.add_usage(priced)
        await store.add_usage(unpriced)
        await store.add_usage(nothing)

    async_to_sync(scenario)()
    call.refresh_from_db()
    assert (call.input_text_tokens, call.output_audio_tokens) == (10, 5)
    assert call.cost_usd == Decimal("0.00004")
    warnings = list(
        CallEvent.objects.filter(call=call, kind="warning").values_list("data", flat=True)
    )
    assert warnings == [
        {"message": "usage not priced", "model": "gpt-unknown", "rates": ["audio_output"]}
    ]


def test_a_batch_that_cannot_be_written_fails_each_waiter(
    preset: SessionPreset, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = relay(preset)
    batcher = UsageBatcher()
    store = DatabaseCallStore(call, "w1", batcher)

    def refuse(items: list[tuple[DatabaseCallStore, Metered]]) -> None:
        raise OperationalError("database is gone")

    # The database thread's write fails (the server went away mid-batch).
    monkeypatch.setattr(store_module, "_write_batch", refuse)
    outcomes: list[Any] = []

    async def scenario() -> None:
        metered = Metered(Usage(input_text_tokens=1), Decimal(0), "gpt-realtime")
        outcomes.extend(
            await asyncio.gather(
                store.add_usage(metered), store.add_usage(metered), return_exceptions=True
            )
        )

    async_to_sync(scenario)()
    assert [str(outcome) for outcome in outcomes] == ["database is gone"] * 2
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)


def test_an_end_by_the_peer_takes_the_reason_somebody_asked_for_and_ends_once(
    preset: SessionPreset,
) -> None:
    asked, plain = relay(preset, "rtc_asked"), relay(preset, "rtc_plain")
    calls.request_end(asked, "admin")

    async def scenario() -> None:
        await DatabaseCallStore(asked, "w1").mark_ended("peer")
        await DatabaseCallStore(plain, "w1").mark_ended("peer")
        await DatabaseCallStore(plain, "w1").mark_ended("idle")  # already over: no change

    async_to_sync(scenario)()
    rows = dict(RealtimeCall.objects.values_list("call_id", "end_reason"))
    assert rows == {"rtc_asked": "admin", "rtc_plain": "peer"}
