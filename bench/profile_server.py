"""Where a server's CPU goes under load: py-spy samples of one ``bench_mint.py`` candidate.

Starts the same stack as ``bench_mint.py`` (the upstream stub, PostgreSQL 15, Redis,
the example project), one candidate (``django-asgi`` by default), logs in once, drives
it with wrk and records its processes with ``py-spy record`` (active threads only, so
the samples are CPU, not waiting). Prints the mints per second and CPU per mint of the
run, then the functions with the most samples: inclusive (``total``, the function and
what it calls) and own (``self``). Prints figures; asserts nothing.

    python bench/profile_server.py [--candidate django-asgi] [--clients 10]
        [--latency 0] [--duration 15] [--top 40] [--app-root DIR]

Needs ``py-spy`` (``pip install py-spy``) and root or ``ptrace`` rights.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import harness
import mint_servers
import psutil

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidate", default="django-asgi")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--app-root", type=Path, default=ROOT)
    args = parser.parse_args()
    if not shutil.which("py-spy"):
        raise SystemExit("py-spy is missing (pip install py-spy)")
    with contextlib.ExitStack() as stack:
        logdir = Path(tempfile.mkdtemp(prefix="profile-server-"))
        stack.callback(shutil.rmtree, logdir, True)
        port = harness.free_port()
        stub = ["node", str(mint_servers.BENCH / "stub_upstream.mjs"), str(port), "0"]
        upstream = harness.start(stack, "upstream", stub, port=port, logdir=logdir)
        base = f"http://127.0.0.1:{upstream.port}/_bench"
        request = urllib.request.Request(f"{base}/latency?seconds={args.latency}", method="POST")
        urllib.request.urlopen(request, timeout=10).close()
        pg = harness.start_postgres(stack, max_connections=400)
        redis = harness.start_redis(stack, logdir)
        cands = mint_servers.candidates(args.app_root.resolve(), port, pg, redis.port)
        cand = next(c for c in cands if c.name == args.candidate)
        mint_servers.prepare_database(pg, [cand.pg_role or "profile"])
        if cand.pg_role:
            print("django_realtime under test:", mint_servers.migrate_and_seed(cand.env, cand.cwd))
        mint_servers.start_candidate(stack, cand, logdir)
        if cand.pg_role:
            cand.headers = mint_servers.session_login(cand.url.rsplit("/realtime/", 1)[0])
        mint_servers.check_mint(cand)
        script = harness.wrk_script(
            logdir / "mint.lua",
            method=cand.method,
            body=mint_servers.MINT_BODY if cand.method == "POST" else "",
            headers=cand.headers,
        )
        warm = harness.start_wrk(cand.url, script, connections=args.clients, duration=3, timeout=10)
        harness.wrk_result(warm)
        assert cand.server is not None
        raw = logdir / "stacks.txt"
        spy = ["py-spy", "record", "--pid", str(cand.server.proc.pid), "--subprocesses"]
        spy += ["--format", "raw", "--rate", str(args.rate), "--nonblocking", "--gil"]
        spy += ["--duration", str(int(args.duration)), "--output", str(raw)]
        recorder = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # py-spy attaches
        procs = cand.server.processes()
        cpu0, mints0 = harness.cpu_seconds(procs), _mints(base, cand.tag)
        wrk = harness.start_wrk(
            cand.url, script, connections=args.clients, duration=args.duration - 2, timeout=10
        )
        result = harness.wrk_result(wrk)
        cpu = harness.cpu_delta(cpu0, harness.cpu_seconds(cand.server.processes()))
        mints = _mints(base, cand.tag) - mints0
        recorder.wait(timeout=args.duration + 60)
        print(
            f"{cand.name}, {args.clients} clients, {args.latency * 1000:g} ms upstream: "
            f"{result['requests'] / (result['duration_us'] / 1e6):.0f} req/s (wrk), p50 "
            f"{result['p50_us'] / 1000:.2f} ms, {cpu / max(mints, 1) * 1000:.2f} ms CPU per "
            f"mint (profiled, py-spy adds a little); load average {psutil.getloadavg()}"
        )
        print(f"answers by status: {result['codes']}; mints the upstream saw: {mints}")
        report(raw, args.top)
    return 0


def _mints(base: str, tag: str) -> int:
    import json

    with urllib.request.urlopen(f"{base}/stats", timeout=10) as answer:
        return int(json.load(answer)["by_tag"].get(tag, 0))


def report(raw: Path, top: int) -> None:
    """Inclusive and own sample shares per function from py-spy's collapsed stacks."""
    total: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")[1:]]  # first frame: the thread
        samples += count
        for name in set(frames):
            total[name] += count
        if frames:
            own[frames[-1]] += count
    print(f"\n{samples} samples of threads holding the GIL (py-spy --gil)")
    packages: collections.Counter[str] = collections.Counter()
    for name, count in own.items():
        packages[_package(name)] += count
    print("\nown samples by package (where the CPU goes):")
    for name, count in packages.most_common():
        print(f"  {count / samples * 100:5.1f}%  {name}")
    for title, table in (("inclusive", total), ("own", own)):
        print(f"\ntop {top} functions, {title} share of the samples:")
        for name, count in table.most_common(top):
            print(f"  {count / samples * 100:5.1f}%  {name}")


def _package(short: str) -> str:
    """The top-level package of a shortened frame ("django/db/...", "asyncio", ...)."""
    where = short.rpartition(" (")[2].rstrip(")")
    top = where.split("/", 1)[0]
    if top.endswith(".py") or top.startswith("<"):
        return "python (stdlib, interpreter)"
    return top


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (pkg/sub/file.py)", the package kept first
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/lib/python3" in path:
        path = path.split("/lib/python3", 1)[1].split("/", 1)[-1]
    elif "/django_realtime/" in path:
        path = "django_realtime/" + path.split("/django_realtime/", 1)[1]
    elif "/example_project/" in path:
        path = "example_project/" + path.rsplit("/", 1)[-1]
    return f"{name} ({path})"


if __name__ == "__main__":
    sys.exit(main())
