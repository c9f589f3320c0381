"""Mints per second: django_realtime beside the Express reference and a bare Python floor.

Starts, all on 127.0.0.1: an upstream stub (``stub_upstream.py``) whose latency is
set per case, a throwaway PostgreSQL 15 cluster (``pg_stat_statements`` loaded) and
Redis, then the servers of ``mint_servers.py``: OpenAI's Express token server, the
bare httpx floor (httpcore and aiohttp transports), and the example project on
PostgreSQL (``CONN_MAX_AGE=600``, DEBUG off, Redis rate limits, session login) under
gunicorn gthread and under uvicorn. wrk drives each in rounds (A B C ..., A B C ...)
after a warm-up, for two cases:

- latency: 0 ms upstream, 1 client;
- throughput: 300 ms upstream, 200 clients (Little's-law bound: 200 / 0.3 s = 667/s).

Per candidate it prints requests/s, p50, p99 (wrk), CPU per mint (user+sys of every
process of the server, from /proc via psutil, over mints the upstream answered in a
steady window inside each run), the database's CPU per mint (its backends for that
server's role), statements per mint (``pg_stat_statements`` for that server's role:
exact counts, authentication/session queries apart), errors (non-2xx and socket
errors) and the ratio to Express in the same round. Prints figures; asserts nothing.

    python bench/bench_mint.py [--quick] [--rounds 3] [--duration 8] [--app-root DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
import mint_servers
import psutil
from mint_servers import Candidate

ROOT = Path(__file__).resolve().parent.parent
CASES = {"latency": (0.0, 1), "throughput": (0.3, 200)}


@dataclass
class Sample:
    wrk: dict[str, Any]
    window: float
    mints: int
    cpu: float
    db_cpu: float
    statements: dict[str, int]
    harness_cpu: dict[str, float]

    @property
    def rps(self) -> float:
        """Mints the upstream answered per second in the steady window (wrk's own
        figure also counts the ramp-up, one upstream latency with no answers)."""
        return self.mints / self.window

    @property
    def errors(self) -> int:
        keys = ("connect", "read", "write", "status", "timeout")
        return sum(int(self.wrk[k]) for k in keys)


class Bench:
    def __init__(self, args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
        self.args = args
        self.stack = stack
        self.logdir = Path(tempfile.mkdtemp(prefix="bench-mint-"))
        self.upstream: harness.Server | None = None
        self.pg: harness.Postgres | None = None
        self.redis: harness.Server | None = None

    def stub_stats(self) -> dict[str, Any]:
        assert self.upstream is not None
        url = f"http://127.0.0.1:{self.upstream.port}/_bench/stats"
        with urllib.request.urlopen(url, timeout=10) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats

    def set_latency(self, seconds: float) -> None:
        assert self.upstream is not None
        url = f"http://127.0.0.1:{self.upstream.port}/_bench/latency?seconds={seconds}"
        urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10).close()

    def snapshot(self, cand: Candidate, wrk: psutil.Process) -> dict[str, Any]:
        assert cand.server is not None
        assert self.pg is not None
        assert self.upstream is not None
        assert self.redis is not None
        snap: dict[str, Any] = {
            "t": time.monotonic(),
            "mints": self.stub_stats()["by_tag"].get(cand.tag, 0),
            "cpu": harness.cpu_seconds(cand.server.processes()),
            "db": harness.cpu_seconds(self.pg.backends_of(cand.pg_role)) if cand.pg_role else {},
            "wrk": harness.cpu_seconds([wrk]),
            "upstream": harness.cpu_seconds(self.upstream.processes()),
            "redis": harness.cpu_seconds(self.redis.processes()),
        }
        if cand.pg_role:
            snap["statements"] = mint_servers.statements(self.pg, cand.pg_role)
        busy = psutil.cpu_times()
        snap["machine"] = {0: sum(busy) - busy.idle - busy.iowait}
        return snap

    def run(self, cand: Candidate, clients: int, duration: float, latency: float) -> Sample:
        script = self.logdir / f"{cand.name}.lua"
        if not script.exists():
            body = mint_servers.MINT_BODY if cand.method == "POST" else ""
            harness.wrk_script(script, method=cand.method, body=body, headers=cand.headers)
        proc = harness.start_wrk(
            cand.url, script, connections=clients, duration=duration, timeout=self.args.timeout
        )
        try:
            wrk = psutil.Process(proc.pid)
            skip = min(1.0, duration * 0.2) + latency
            time.sleep(skip)
            before = self.snapshot(cand, wrk)
            time.sleep(max(0.5, duration - skip - 0.4))
            after = self.snapshot(cand, wrk)
        finally:
            result = harness.wrk_result(proc)
        self.drain(cand, latency)
        window = after["t"] - before["t"]
        statements = {
            query: calls - before["statements"].get(query, 0)
            for query, calls in after.get("statements", {}).items()
            if calls > before["statements"].get(query, 0)
        }
        used = {
            k: harness.cpu_delta(before[k], after[k])
            for k in ("cpu", "db", "wrk", "upstream", "redis")
        }
        others = harness.cpu_delta(before["machine"], after["machine"]) - sum(used.values())
        return Sample(
            wrk=result,
            window=window,
            mints=after["mints"] - before["mints"],
            cpu=used["cpu"],
            db_cpu=used["db"],
            statements=statements,
            harness_cpu={
                **{k: used[k] / window for k in ("wrk", "upstream", "redis")},
                "other processes": max(0.0, others) / window,
            },
        )

    def drain(self, cand: Candidate, latency: float) -> None:
        """Wait until the server's queue is empty; restart it if it is still busy."""
        deadline = time.monotonic() + latency + 4.0
        last = self.stub_stats()["by_tag"].get(cand.tag, 0)
        time.sleep(latency + 0.25)
        while time.monotonic() < deadline:
            now = self.stub_stats()["by_tag"].get(cand.tag, 0)
            if now == last:
                return
            last = now
            time.sleep(0.25)
        print(f"  ({cand.name} still busy after the run: restarting it)", flush=True)
        mint_servers.restart_candidate(self.stack, cand, self.logdir)


def check_upstreams(bench: Bench, duration: float) -> None:
    """Can the project's fake or the stub answer 200 clients at 300 ms (bound 667/s)?"""
    stack, logdir = bench.stack, bench.logdir
    port = harness.free_port()
    cmd = [sys.executable, "-m", "django_realtime.testing.server", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(bench.args.app_root)}
    fake = harness.start(
        stack, "fake", [*cmd, "--latency", "0.3", "--no-webrtc"], port=port, logdir=logdir, env=env
    )
    assert bench.upstream is not None
    bench.set_latency(0.3)
    script = harness.wrk_script(
        logdir / "upstream.lua",
        method="POST",
        body='{"session": {"type": "realtime", "model": "gpt-realtime"}}',
        headers={"Authorization": "Bearer sk-bench", "Content-Type": "application/json"},
    )
    print("upstream alone, 300 ms latency, 200 clients (bound 667/s):")
    py_port = harness.free_port()
    py_stub = [sys.executable, str(mint_servers.BENCH / "stub_upstream.py"), str(py_port), "0.3"]
    python_stub = harness.start(stack, "python-stub", py_stub, port=py_port, logdir=logdir)
    servers = (
        ("project fake", fake),
        ("stub_upstream.py", python_stub),
        ("stub_upstream.mjs", bench.upstream),
    )
    for label, server in servers:
        url = f"http://127.0.0.1:{server.port}/check/v1/realtime/client_secrets"
        if server is fake:
            url = f"{fake_url(fake)}/realtime/client_secrets"
        proc = harness.start_wrk(url, script, connections=200, duration=duration, timeout=10)
        result = harness.wrk_result(proc)
        rps = result["requests"] / (result["duration_us"] / 1e6 - 0.3)
        print(
            f"  {label:<18} {rps:6.0f} req/s (after the first 300 ms)  "
            f"p50 {result['p50_us'] / 1000:6.0f} ms  "
            f"p99 {result['p99_us'] / 1000:6.0f} ms  non-2xx {result['status']}"
        )
    harness.stop_group(fake.proc)
    harness.stop_group(python_stub.proc)


def fake_url(server: harness.Server) -> str:
    return f"http://127.0.0.1:{server.port}/v1"


def report(case: str, names: list[str], samples: dict[str, list[Sample]]) -> None:
    latency, clients = CASES[case]
    bound = f", Little's-law bound {clients / latency:.0f}/s" if latency else ""
    print(f"\n### {case}: {latency * 1000:.0f} ms upstream, {clients} client(s){bound}\n")
    print(
        "| candidate | req/s (rounds) | p50 ms | p99 ms | CPU ms/mint | DB CPU ms/mint "
        "| queries/mint app + auth (+other) | errors | x Express req/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    express = samples["express"]
    for name in names:
        runs = samples[name]
        mints = sum(s.mints for s in runs)
        rps = [s.rps for s in runs]
        ratios = [s.rps / e.rps for s, e in zip(runs, express, strict=True) if e.rps]
        spread = "/".join(f"{r:.0f}" for r in rps)
        p50 = statistics.median(s.wrk["p50_us"] for s in runs) / 1000
        p99 = statistics.median(s.wrk["p99_us"] for s in runs) / 1000
        cpu_cell = f"{sum(s.cpu for s in runs) / mints * 1000:.2f}" if mints >= 10 else "-"
        db = sum(s.db_cpu for s in runs) / max(mints, 1) * 1000
        if runs[0].statements:
            q = {"app": 0.0, "auth": 0.0, "other": 0.0}
            for s in runs:
                for query, calls in s.statements.items():
                    q[mint_servers.kind(query)] += calls / max(mints, 1)
            queries = f"{q['app']:.2f} + {q['auth']:.2f} (+{q['other']:.2f})"
            db_cell = f"{db:.2f}"
        else:
            queries, db_cell = "-", "-"
        print(
            f"| {name} | {statistics.median(rps):.0f} ({spread}) | {p50:.2f} | {p99:.1f} "
            f"| {cpu_cell} | {db_cell} | {queries} | {error_cell(runs)} "
            f"| {statistics.median(ratios):.2f}x |"
        )
    keys = ("wrk", "upstream", "redis", "other processes")
    load = {k: statistics.mean(s.harness_cpu[k] for r in samples.values() for s in r) for k in keys}
    print(
        "\nCPU beside the server while measuring (share of one core, mean): "
        + ", ".join(f"{k} {v * 100:.0f}%" for k, v in load.items())
    )


def error_cell(runs: list[Sample]) -> str:
    kinds = {"status": "non-2xx", "timeout": "timeout", "connect": "connect", "read": "read"}
    kinds["write"] = "write"
    counts = {label: sum(int(s.wrk[k]) for s in runs) for k, label in kinds.items()}
    total = sum(counts.values())
    codes: dict[str, int] = {}
    for s in runs:
        for code, n in s.wrk.get("codes", {}).items():
            codes[code] = codes.get(code, 0) + n
    if codes:
        counts["non-2xx"] = 0
        counts.update({f"HTTP {code}": n for code, n in sorted(codes.items())})
    named = ", ".join(f"{n} {label}" for label, n in counts.items() if n)
    return f"{total} ({named})" if total else "0"


def report_statements(names: list[str], samples: dict[str, list[Sample]]) -> None:
    """What each Django server ran per mint, by statement (pg_stat_statements)."""
    for name in names:
        runs = samples[name]
        if not runs[0].statements:
            continue
        mints = sum(s.mints for s in runs) or 1
        calls: dict[str, int] = {}
        for s in runs:
            for query, n in s.statements.items():
                calls[query] = calls.get(query, 0) + n
        print(f"\nstatements per mint, {name}:")
        for query, n in sorted(calls.items(), key=lambda item: -item[1]):
            text = " ".join(query.split())
            print(f"  {n / mints:5.2f}  {mint_servers.kind(query):<5}  {text[:140]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s (about 2 minutes)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=8, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds per warm-up run")
    parser.add_argument("--timeout", type=int, default=10, help="wrk's request timeout")
    parser.add_argument("--only", nargs="+", help="candidates to run (express always runs)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    parser.add_argument("--app-root", type=Path, default=ROOT, help="repo with django_realtime")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 4, 2
    args.app_root = args.app_root.resolve()
    for tool in ("wrk", "node", "npm"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing (apt-get install wrk nodejs npm)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    print(
        f"machine: {psutil.cpu_count()} CPUs, {platform.platform()}, Python "
        f"{platform.python_version()}; load average at start {os.getloadavg()}"
    )
    with contextlib.ExitStack() as stack:
        bench = Bench(args, stack)
        try:
            samples = measure(bench)
        except BaseException:
            print(f"server logs kept in {bench.logdir}", file=sys.stderr)
            raise
        failed = any(s.errors for case in samples.values() for r in case.values() for s in r)
        if args.keep_logs or failed:
            print(f"server logs kept in {bench.logdir}")
        else:
            shutil.rmtree(bench.logdir, ignore_errors=True)
    print(f"\nload average at end {os.getloadavg()}; took {time.monotonic() - started:.0f} s")
    return 0 if samples else 1


def measure(bench: Bench) -> dict[str, dict[str, list[Sample]]]:
    args, stack, logdir = bench.args, bench.stack, bench.logdir
    mint_servers.npm_ci()
    port = harness.free_port()
    stub = ["node", str(mint_servers.BENCH / "stub_upstream.mjs"), str(port), "0"]
    bench.upstream = harness.start(stack, "upstream", stub, port=port, logdir=logdir)
    check_upstreams(bench, 2 if args.quick else 4)
    bench.pg = harness.start_postgres(stack, max_connections=1000)
    bench.redis = harness.start_redis(stack, logdir)
    cands = mint_servers.candidates(args.app_root, port, bench.pg, bench.redis.port)
    if args.only:
        cands = [c for c in cands if c.name == "express" or c.name in args.only]
    roles = [c.pg_role for c in cands if c.pg_role] or ["django_wsgi"]
    mint_servers.prepare_database(bench.pg, roles)
    django = [c for c in cands if c.pg_role]
    if django:
        where = mint_servers.migrate_and_seed(django[0].env, mint_servers.BENCH)
        print(f"django_realtime under test: {where}")
    for cand in cands:
        mint_servers.start_candidate(stack, cand, logdir)
    if django:
        headers = mint_servers.session_login(django[0].url.rsplit("/realtime/", 1)[0])
        for cand in django:
            cand.headers = headers
    for cand in cands:
        mint_servers.check_mint(cand)
    print(
        f"{len(cands)} candidates; {args.rounds} round(s) of {args.duration:g} s per case after "
        f"a {args.warmup:g} s warm-up each; wrk timeout {args.timeout:g} s"
    )
    results: dict[str, dict[str, list[Sample]]] = {}
    for case, (latency, clients) in CASES.items():
        bench.set_latency(latency)
        for cand in cands:
            bench.run(cand, clients, args.warmup, latency)
        per: dict[str, list[Sample]] = {c.name: [] for c in cands}
        for _ in range(args.rounds):
            for cand in cands:  # interleaved, so drift hits every candidate alike
                per[cand.name].append(bench.run(cand, clients, args.duration, latency))
        report(case, [c.name for c in cands], per)
        results[case] = per
    report_statements([c.name for c in cands], results["latency"])
    return results


if __name__ == "__main__":
    sys.exit(main())
