"""Upstream client throughput: mints per second through ``django_realtime.client``.

Runs a minimal upstream stub (``stub_upstream.py``) as a separate process on
127.0.0.1 with a fixed latency per request, so neither the server nor a shared GIL
is the bottleneck (the full fake API is too heavy to measure a client against),
then drives ``create_client_secret`` from threads (the sync pooled client, as DRF
views use it) and ``acreate_client_secret`` from asyncio tasks (the async pooled
client), each with a bounded number of requests. Prints figures; asserts nothing.

    python bench/bench_client.py [--latency 0.3] [--requests 400] [--concurrency 50 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.test.utils import override_settings  # noqa: E402

from django_realtime import client  # noqa: E402

BODY = {
    "expires_after": {"anchor": "created_at", "seconds": 60},
    "session": {"type": "realtime", "model": "gpt-realtime"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit("stub upstream did not start")


def run_sync(requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []

    def one(_: int) -> None:
        started = time.perf_counter()
        client.create_client_secret(BODY)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return time.perf_counter() - started, latencies


async def run_async(requests: int, concurrency: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            await client.acreate_client_secret(BODY)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(requests)))
    return time.perf_counter() - started, latencies


def report(label: str, elapsed: float, latencies: list[float], requests: int) -> None:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p95 = ordered[int(len(ordered) * 0.95) - 1] * 1000
    print(f"{label:<34} {requests / elapsed:8.1f} mints/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 200])
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "stub_upstream.py"), str(port), str(args.latency)],
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        wait_port(port)
        api = {
            "API_KEY": "sk-bench",
            "API_BASE": f"http://127.0.0.1:{port}/v1",
            "MAX_RETRIES": 0,
            "TIMEOUT": 30.0,
        }
        print(
            f"fake upstream latency {args.latency * 1000:.0f} ms, {args.requests} mints per run, "
            "stub upstream in its own process on 127.0.0.1"
        )
        with override_settings(DJANGO_REALTIME=api):
            client.reset()
            client.create_client_secret(BODY)  # warm the pool
            for concurrency in args.concurrency:
                elapsed, lat = run_sync(args.requests, concurrency)
                report(f"sync client, {concurrency} threads", elapsed, lat, args.requests)
                client.reset()
                elapsed, lat = asyncio.run(run_async(args.requests, concurrency))
                report(f"async client, {concurrency} tasks", elapsed, lat, args.requests)
                client.reset()
            started = time.process_time()
            for _ in range(20):
                client.reset()
                client.get_client()
            per_client = (time.process_time() - started) / 20 * 1000
            print(f"creating one httpx.Client: {per_client:.1f} ms CPU (why the client is pooled)")
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
