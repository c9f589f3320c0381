"""What keeps a worker cheap with many calls, and what it must not change.

- the sideband skips, unparsed, server events its controller does not read (a leading
  ``type`` it has no use for), and still parses anything else;
- a batch of usage from many calls is one statement and lands exactly (sums per call,
  the cost per event exact), whoever else wrote the row;
- the heartbeat renews every held lease without a list of ids, and gives up a call the
  worker holds but no longer follows;
- SQLite has no LISTEN: the worker polls (and says it is not listening).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import OperationalError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_realtime.control import leases, wakeup
from django_realtime.control import sideband as sideband_module
from django_realtime.control.controller import HANDLED_EVENTS
from django_realtime.control.pricing import Metered, Usage
from django_realtime.control.sideband import Sideband
from django_realtime.control.store import DatabaseCallStore, _write_batch
from django_realtime.control.worker import Worker
from django_realtime.models import CallEvent, RealtimeCall, SessionPreset

KEY = "sk-test-fast-paths"


class Conn:
    """A connection that delivers ``messages`` and then waits forever."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = list(messages)

    async def recv(self) -> str:
        if self.messages:
            return self.messages.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(self, message: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


def test_the_sideband_skips_unread_types_unparsed_and_parses_the_rest(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.DJANGO_REALTIME = {"API_KEY": KEY, "API_BASE": "https://api.openai.com/v1"}
    messages = [
        '{"type":"response.output_audio_transcript.delta","event_id":"e1","delta":"Hel"}',
        '{"type": "response.done", "event_id": "e2", "response": {"id": "r1"}}',
        '{"event_id":"e3","type":"response.output_text.delta","delta":"x"}',  # type not first
        '{"type":"input_audio_buffer.speech_started","event_id":"e4"}',
        '{"type":"weird\\u002etype","event_id":"e5"}',  # escaped: parsed, then skipped
        '{"type":"error","event_id":"e6","error":{"code":"x"}}',
    ]
    parsed: list[str] = []
    real_loads = json.loads

    def counting_loads(raw: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(real_loads(raw)["event_id"])
        return real_loads(raw, *args, **kwargs)

    async def connector(url: str, headers: dict[str, str]) -> Conn:
        return Conn(messages)

    async def scenario() -> tuple[list[str], int]:
        sideband = Sideband("rtc_fast", connector=connector, types=HANDLED_EVENTS)
        await sideband.connect()
        got = [(await sideband.__anext__())["event_id"] for _ in range(3)]
        await sideband.close()
        return got, sideband.skipped

    # The sideband module's own name for json (nothing else's json.loads is touched).
    monkeypatch.setattr(sideband_module, "json", SimpleNamespace(loads=counting_loads))
    got, skipped = async_to_sync(scenario)()
    assert got == ["e2", "e4", "e6"]
    assert skipped == 3
    # e1 was skipped on its leading type; e3 and e5 needed the full parse to be judged.
    assert parsed == ["e2", "e3", "e4", "e5", "e6"]


def _metered(usage: Usage, cost: str, *, priced: bool = True) -> Metered:
    return Metered(usage, Decimal(cost), "gpt-realtime", priced, () if priced else ("x",))


@pytest.mark.django_db
def test_a_batch_of_usage_is_one_statement_and_exact(
    make_preset: Callable[..., SessionPreset],
) -> None:
    preset = make_preset("assistant")
    one, two = (
        RealtimeCall.objects.create(call_id=f"rtc_b{n}", origin="relay", preset=preset)
        for n in (1, 2)
    )
    RealtimeCall.objects.filter(pk=one.pk).update(output_audio_tokens=5)  # someone else
    store_one, store_two = DatabaseCallStore(one, "w"), DatabaseCallStore(two, "w")
    batch = [
        (store_one, _metered(Usage(input_text_tokens=3, output_audio_tokens=40), "0.0000123")),
        (store_two, _metered(Usage(transcription_seconds=2), "0.00001")),
        (store_one, _metered(Usage(input_text_tokens=4, cached_input_tokens=1), "0.00000001")),
        (store_two, _metered(Usage(output_text_tokens=9), "0", priced=False)),
    ]
    with CaptureQueriesContext(connection) as queries:
        _write_batch(batch)
    updates = [q["sql"] for q in queries if "UPDATE" in q["sql"]]
    # executemany: one statement, one row of values per call (Django logs "2 times: ...").
    assert len(updates) == 1
    assert updates[0].startswith("2 times: UPDATE")
    one.refresh_from_db()
    two.refresh_from_db()
    assert (one.input_text_tokens, one.cached_input_tokens, one.output_audio_tokens) == (7, 1, 45)
    assert one.cost_usd == Decimal("0.0000123") + Decimal("0.00000001")
    assert (two.transcription_seconds, two.output_text_tokens) == (2, 9)
    assert two.cost_usd == Decimal("0.00001")
    warning = CallEvent.objects.get(call=two, kind="warning")
    assert warning.data["message"] == "usage not priced"


@pytest.mark.django_db
def test_renew_extends_every_held_lease_and_gives_up_strays(
    make_preset: Callable[..., SessionPreset],
) -> None:
    preset = make_preset("assistant")
    soon = timezone.now() + timedelta(seconds=1)
    for call_id, owner in (("rtc_a", "w"), ("rtc_b", "w"), ("rtc_c", "w"), ("rtc_x", "other")):
        RealtimeCall.objects.create(
            call_id=call_id,
            origin="relay",
            preset=preset,
            status="active",
            lease_owner=owner,
            lease_expires_at=soon,
        )
    kept = leases.renew("w", ["rtc_a", "rtc_b", "rtc_x"], 60)
    assert kept == {"rtc_a", "rtc_b"}  # rtc_x is another worker's
    rows = {c.call_id: c for c in RealtimeCall.objects.all()}
    assert all(rows[i].lease_expires_at > soon + timedelta(seconds=30) for i in ("rtc_a", "rtc_b"))
    assert (rows["rtc_c"].lease_owner, rows["rtc_c"].lease_expires_at) == ("", None)  # stray
    assert (rows["rtc_x"].lease_owner, rows["rtc_x"].lease_expires_at) == ("other", soon)


@pytest.mark.django_db(transaction=True)
def test_on_sqlite_the_worker_polls_without_listening() -> None:
    assert connection.vendor == "sqlite"
    assert wakeup.can_listen() is False

    async def scenario() -> bool:
        w = Worker("w-sqlite", poll_seconds=0.02)
        task = asyncio.ensure_future(w.run())
        await asyncio.sleep(0.1)
        listening = w.listening.is_set()
        w.stop()
        await asyncio.wait_for(task, 10)
        return listening

    assert async_to_sync(scenario)() is False


@pytest.mark.django_db
def test_a_failed_poll_is_logged_and_the_next_one_claims(
    realtime_sidebands: Any,
    make_preset: Callable[..., SessionPreset],
    realtime_server: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from tests.test_worker import record, running, status_is, stop, until, worker

    call = record(realtime_sidebands, make_preset("assistant"))
    real_claim = leases.claim
    failures = [OperationalError("database table is locked")]

    def flaky_claim(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_claim(*args)

    monkeypatch.setattr(leases, "claim", flaky_claim)

    async def scenario() -> None:
        w = worker(realtime_sidebands)
        task = await running(w)
        await until(status_is(call, "active"))
        await stop(w, task)

    async_to_sync(scenario)()
    assert failures == []
    assert "poll failed" in caplog.text
