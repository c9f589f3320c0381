"""One worker holding N virtual calls, with the database: the call controller end to end.

A throwaway PostgreSQL cluster is started (``initdb`` + ``pg_ctl``, or ``--pg-port`` of
one you run), migrated, and N ``RealtimeCall`` rows are created for N virtual calls of
the fake. One :class:`~django_realtime.control.worker.Worker` claims them all (leases,
heartbeats, polls, LISTEN, as ``manage.py realtime_worker`` does). Each call then gets a
``response.done`` every ``--every`` seconds (staggered).

By default the fake runs in **another process** (uvicorn on 127.0.0.1, the driver in a
thread there) and the worker dials it over real WebSockets, so this process is the
worker alone: its CPU time is the worker's (its loop, its database thread, websockets'
framing). ``--in-memory`` puts the fake on the worker's loop instead (the in-memory
sideband connector: no sockets, but the fake's work is counted with the worker's).

Figures: event-to-database lag p50/p99/max (the fake emits -> the counters' UPDATE is
committed; both sides read ``CLOCK_MONOTONIC``), CPU per event (this process's CPU time
over the measured window, all threads, divided by the events), and memory per call (RSS
growth from before the worker started to all calls attached, divided by N).

    python bench/bench_control.py [--calls 1000] [--seconds 30] [--every 5] [--in-memory]
        [--profile FILE]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres(port: int | None) -> Iterator[int]:
    if port:
        yield port
        return
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        sys.exit("needs PostgreSQL (apt-get install postgresql) or --pg-port")
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    run = lambda *cmd: subprocess.run(_as_postgres([*cmd]), check=True, capture_output=True)  # noqa: E731
    run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-l",
        str(data / "log"),
        "-w",
        "start",
        "-o",
        f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off",
    )
    try:
        run(
            str(bindir / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "realtime",
        )
        yield port
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}
Sent = dict[tuple[str, int], float]
PROFILE_COLUMNS = {0: ("name", 110), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)}


def plan(ids: list[str], seconds: float, every: float) -> Iterator[tuple[float, str, int]]:
    """``(when, call_id, seq)``: each call once per ``every`` s, staggered, for ``seconds``."""
    start, seq = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        tick, seq = time.monotonic(), seq + 1
        for n, call_id in enumerate(ids):
            yield tick + every * n / len(ids), call_id, seq


def turn(seq: int) -> dict[str, Any]:
    """A ``response.done`` whose ``input_text_tokens`` is ``seq`` (how the lag is matched)."""
    from django_realtime.testing import script
    from django_realtime.testing.script_player import response_body

    usage = script.usage(text_in=seq, audio_out=40)
    return {"type": "response.done", "response": response_body("resp_b", [], usage)}


def fake_process(pipe: Connection, calls: int) -> None:
    """The fake in its own process: serve N virtual calls, then drive them when told."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django_realtime.testing.server import FakeRealtimeServer
    from django_realtime.testing.sideband import sidebands_of

    with FakeRealtimeServer(webrtc=False) as server:
        hub = sidebands_of(server.fake)
        ids = [hub.virtual_call(SESSION).id for _ in range(calls)]
        pipe.send((server.url, ids))
        seconds, every = pipe.recv()
        sent: Sent = {}
        cpu0 = time.process_time()
        for at, call_id, seq in plan(ids, seconds, every):
            time.sleep(max(0.0, at - time.monotonic()))
            sent[(call_id, seq)] = time.monotonic()
            hub.emit(server.fake.calls[call_id], turn(seq))
        pipe.send((sent, time.process_time() - cpu0))
        pipe.recv()  # the worker is done with the sidebands


async def bench(
    calls: int,
    seconds: float,
    every: float,
    pipe: Connection | None,
    ids: list[str],
    profile: str | None = None,
) -> dict[str, float]:
    from asgiref.sync import sync_to_async

    from django_realtime.control import store as store_module
    from django_realtime.control.worker import Worker
    from django_realtime.models import RealtimeCall, SessionPreset

    done_at: Sent = {}
    original = store_module.DatabaseCallStore.add_usage

    async def timed(self: store_module.DatabaseCallStore, metered: Any) -> None:
        await original(self, metered)  # returns once the UPDATE is committed
        done_at[(self.call_id, metered.usage.input_text_tokens)] = time.monotonic()

    store_module.DatabaseCallStore.add_usage = timed  # type: ignore[method-assign]

    connector: Any = None  # real WebSockets to the fake's process
    if pipe is None:
        from django_realtime.testing import FakeRealtimeAPI
        from django_realtime.testing.sideband import sidebands_of
        from django_realtime.testing.sideband_memory import MemoryConnector

        fake = FakeRealtimeAPI(webrtc=False)
        hub = sidebands_of(fake)
        ids = [hub.virtual_call(SESSION).id for _ in range(calls)]
        connector = MemoryConnector(fake)

    def seed() -> None:
        preset = SessionPreset.objects.create(slug="bench", name="Bench", model="gpt-realtime")
        RealtimeCall.objects.bulk_create(
            RealtimeCall(
                call_id=i, origin="relay", preset=preset, model="gpt-realtime", session=SESSION
            )
            for i in ids
        )

    await sync_to_async(seed)()
    before = rss_bytes()
    worker = Worker("bench", connector=connector, max_calls=calls)
    task = asyncio.ensure_future(worker.run())
    attach0 = time.perf_counter()
    active = sync_to_async(lambda: RealtimeCall.objects.filter(status="active").count())
    while await active() < calls:
        await asyncio.sleep(0.1)
    attach_s = time.perf_counter() - attach0
    # Settled: every controller's attach-time reads (its quota's first look) are done.
    while any(c.quota.task and not c.quota.task.done() for c in worker.controllers.values()):
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    per_call = (rss_bytes() - before) / calls

    if profile:
        import yappi  # pip install yappi: every thread, CPU clock, asyncio-aware

        yappi.set_clock_type("cpu")
        yappi.start()
    print(f"measuring for {seconds:.0f} s (pid {os.getpid()})", flush=True)
    cpu0, times0 = time.process_time(), os.times()
    fake_cpu = float("nan")
    if pipe is not None:
        pipe.send((seconds, every))
        while not pipe.poll():
            await asyncio.sleep(0.1)
        sent, fake_cpu = pipe.recv()
    else:
        sent = {}
        for at, call_id, seq in plan(ids, seconds, every):
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            sent[(call_id, seq)] = time.monotonic()
            hub.emit(fake.calls[call_id], turn(seq))
    await asyncio.sleep(2.0)  # let the last writes land
    cpu, times1 = time.process_time() - cpu0, os.times()
    if profile:
        yappi.stop()
        with open(profile, "w") as out:
            stats = yappi.get_func_stats()
            for key in ("tsub", "ttot"):
                out.write(f"--- by {key} (CPU s over the measured window)\n")
                stats.sort(key).print_all(out=out, columns=PROFILE_COLUMNS)
    worker.stop()
    await task
    if pipe is not None:
        pipe.send("done")
    lags = [done_at[key] - at for key, at in sent.items() if key in done_at]
    events = len(sent)
    return {
        "calls": calls,
        "events": events,
        "events_s": events / seconds,
        "p50_ms": pct(lags, 0.50) * 1000,
        "p99_ms": pct(lags, 0.99) * 1000,
        "max_ms": max(lags) * 1000 if lags else float("nan"),
        "written": len(lags),
        "cpu_us": cpu / max(events, 1) * 1e6,
        "sys_share": (times1.system - times0.system) / cpu if cpu else float("nan"),
        "fake_cpu_us": fake_cpu / max(events, 1) * 1e6,
        "kib_call": per_call / 1024,
        "attach_s": attach_s,
        "mean_ms": statistics.fmean(lags) * 1000 if lags else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--pg-port", type=int, default=None)
    parser.add_argument("--in-memory", action="store_true", help="the fake on the worker's loop")
    parser.add_argument("--profile", metavar="FILE", help="yappi over the measured window")
    args = parser.parse_args()
    pipe: Connection | None = None
    ids: list[str] = []
    api_base = "http://127.0.0.1:9/v1"
    if not args.in_memory:
        pipe, theirs = multiprocessing.get_context("spawn").Pipe()
        child = multiprocessing.get_context("spawn").Process(
            target=fake_process, args=(theirs, args.calls), daemon=True
        )
        child.start()
        api_base, ids = pipe.recv()
    with postgres(args.pg_port) as port:
        os.environ.update(
            DJANGO_SETTINGS_MODULE="tests.scaleout.settings",
            SCALEOUT_PG_PORT=str(port),
            SCALEOUT_REDIS_PORT="1",
            SCALEOUT_API_BASE=api_base,
            SCALEOUT_POLL_SECONDS="0.25",  # the default CONTROL_POLL_SECONDS, not the tests'
        )
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        figures = asyncio.run(bench(args.calls, args.seconds, args.every, pipe, ids, args.profile))
    where = "in memory, on the worker's loop" if args.in_memory else "another process, WebSockets"
    print(
        f"fake: {where}\n"
        "| calls | events/s | lag p50 / p99 / max | CPU per event | memory per call |\n"
        "|---|---|---|---|---|\n"
        f"| {figures['calls']:,} | {figures['events_s']:.0f} | {figures['p50_ms']:.1f} / "
        f"{figures['p99_ms']:.1f} / {figures['max_ms']:.0f} ms | {figures['cpu_us']:.0f} us | "
        f"{figures['kib_call']:.0f} KiB |"
    )
    print(
        f"({figures['written']:,} of {figures['events']:,} events written to the database; "
        f"{figures['calls']:,} calls claimed and attached in {figures['attach_s']:.1f} s; "
        f"{figures['sys_share']:.0%} of the worker's CPU in the kernel; "
        f"the fake's process: {figures['fake_cpu_us']:.0f} us CPU per event)"
    )


if __name__ == "__main__":
    main()
