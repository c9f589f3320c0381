"""One asyncio loop holding N call controllers on virtual calls (in memory, no database).

Each call has a controller (metering, idle and duration timers, config lock) attached
through the in-memory sideband connector to the fake's sideband handler, and gets a
``response.done`` every ``--every`` seconds (staggered). The store is in memory and
records when each event's usage arrived, so the figures are the controller layer's
own: event-to-store lag p50/p99 (emit on the fake -> ``add_usage``), CPU per event and
memory per call (tracemalloc, controllers + sidebands + fake state). What a worker adds
on top (database writes, leases, real sockets and TLS) is not in these numbers.

    python bench/bench_controller.py [--calls 1000] [--seconds 20] [--every 5]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from django_realtime.control.controller import CallController, Leash  # noqa: E402
from django_realtime.control.pricing import Metered  # noqa: E402
from django_realtime.control.sideband import Sideband  # noqa: E402
from django_realtime.testing import FakeRealtimeAPI, script  # noqa: E402
from django_realtime.testing.sideband import sidebands_of  # noqa: E402
from django_realtime.testing.sideband_memory import MemoryConnector  # noqa: E402

SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}


class Store:
    """Records the lag of each metered event: its ``text_in`` count is its sequence."""

    def __init__(self, sent_at: dict[tuple[str, int], float], lags: list[float], cid: str) -> None:
        self.sent_at, self.lags, self.call_id = sent_at, lags, cid
        self.ended: str | None = None

    async def mark_active(self) -> None:
        pass

    async def add_usage(self, metered: Metered) -> None:
        key = (self.call_id, metered.usage.input_text_tokens)
        self.lags.append(time.perf_counter() - self.sent_at.pop(key))

    async def record_event(self, kind: str, data: dict[str, Any]) -> None:
        pass

    async def mark_ended(self, reason: str) -> None:
        self.ended = reason


async def main(calls: int, seconds: float, every: float) -> None:
    settings.DJANGO_REALTIME = {"API_KEY": "sk-bench"}
    fake = FakeRealtimeAPI(webrtc=False)
    hub = sidebands_of(fake)
    connector = MemoryConnector(fake)
    sent_at: dict[tuple[str, int], float] = {}
    lags: list[float] = []
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    runs, tasks = [], []
    leash = Leash(session=SESSION, idle_timeout_seconds=600, config_lock="revert")
    for _ in range(calls):
        call = hub.virtual_call(SESSION)
        store = Store(sent_at, lags, call.id)
        controller = CallController(
            call.id, leash, store, sideband=Sideband(call.id, connector=connector)
        )
        runs.append((call, controller))
        tasks.append(asyncio.ensure_future(controller.run()))
    while sum(hub.attached(call.id) for call, _ in runs) < calls:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    per_call = sum(s.size_diff for s in after.compare_to(before, "filename")) / calls
    print(f"attached {calls} calls; memory per call: {per_call / 1024:.1f} KiB")

    cpu0, wall0, events = time.process_time(), time.perf_counter(), 0
    sequence = 0
    deadline = wall0 + seconds
    tick = every / calls  # stagger the calls' turns evenly
    while time.perf_counter() < deadline:
        sequence += 1
        for call, _ in runs:
            sent_at[(call.id, sequence)] = time.perf_counter()
            hub.emit(
                call,
                {
                    "type": "response.done",
                    "response": {
                        "id": "resp",
                        "status": "completed",
                        "output": [],
                        "usage": script.usage(text_in=sequence, audio_out=50),
                    },
                },
            )
            events += 1
            await asyncio.sleep(tick)
    await asyncio.sleep(0.5)
    cpu = time.process_time() - cpu0
    for call, _ in runs:
        hub.end_call(call.id)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    lags_ms = sorted(lag * 1000 for lag in lags)
    p99 = lags_ms[int(len(lags_ms) * 0.99) - 1]
    print(
        f"{events} events in {seconds:.0f} s ({events / seconds:.0f}/s); metered {len(lags)}\n"
        f"lag emit -> store: p50 {statistics.median(lags_ms):.2f} ms, p99 {p99:.2f} ms, "
        f"max {lags_ms[-1]:.2f} ms\n"
        f"CPU: {cpu / events * 1e6:.0f} us per event (driver included), "
        f"{cpu / seconds * 100:.0f}% of one core"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--every", type=float, default=5.0)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.seconds, args.every))
