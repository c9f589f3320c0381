"""Where one mint's CPU goes: cProfile over in-process mints (Django test client).

The same site as ``bench_mint.py`` (the example project on a throwaway PostgreSQL 15
and Redis, ``CONN_MAX_AGE=600``, DEBUG off, a session login), the upstream stub at
0 ms on 127.0.0.1. Times N mints without the profiler (wall and CPU per mint), then
profiles N more and prints the cumulative time of the mint's stages (found by
function name and file, so a renamed stage prints "not found") and the top functions by own
time. Prints figures; asserts nothing.

    python bench/profile_mint.py [--mints 300] [--top 25] [--app-root DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import harness
import mint_servers

ROOT = Path(__file__).resolve().parent.parent

#: (label, function name, file suffix): the mint's stages, outermost first.
STAGES = [
    ("whole request (test client -> response)", "request", "django/test/client.py"),
    ("  middleware + URL resolving + DRF dispatch", "dispatch", "rest_framework/views.py"),
    ("  authentication (session + user, CSRF)", "_authenticate", "rest_framework/request.py"),
    ("    get_user: session load + user query", "get_user", "django/contrib/auth/__init__.py"),
    ("      of which the session load", "load", "django/contrib/sessions/backends/"),
    ("  request body: MintRequestSerializer", "is_valid", "rest_framework/serializers.py"),
    ("  preset lookup (memo + version read)", "resolve_preset", "django_realtime/views.py"),
    ("  preset access check", "is_available_to", "django_realtime/models.py"),
    ("  overrides validation", "validated_overrides", "django_realtime/gate.py"),
    ("  rate limit (one Redis round trip)", "check", "django_realtime/throttling.py"),
    ("  quotas, payload, pending audit row", "begin_mint", "django_realtime/gate.py"),
    ("    quota lookup", "_check_quotas", "django_realtime/gate.py"),
    ("    pending audit row (INSERT)", "begin", "django_realtime/audit.py"),
    ("  upstream POST (httpx, parse)", "create_client_secret", "django_realtime/client/"),
    ("  audit row finished (UPDATE) + secret_issued", "succeed", "django_realtime/views.py"),
    ("  response rendering (JSON)", "render", "rest_framework/renderers.py"),
]


def stage_times(stats: pstats.Stats, mints: int) -> list[tuple[str, float | None]]:
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    found: list[tuple[str, float | None]] = []
    for label, name, suffix in STAGES:
        cumulative = [
            ct
            for (path, _line, func), (_cc, _nc, _tt, ct, _callers) in table.items()
            if func == name and suffix in path
        ]
        found.append((label, max(cumulative) / mints * 1000 if cumulative else None))
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mints", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--app-root", type=Path, default=ROOT)
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        logdir = Path(tempfile.mkdtemp(prefix="profile-mint-"))
        stack.callback(shutil.rmtree, logdir, True)
        port = harness.free_port()
        stub = ["node", str(mint_servers.BENCH / "stub_upstream.mjs"), str(port), "0"]
        harness.start(stack, "upstream", stub, port=port, logdir=logdir)
        pg = harness.start_postgres(stack, max_connections=50)
        redis = harness.start_redis(stack, logdir)
        mint_servers.prepare_database(pg, ["profile"])
        env = mint_servers.django_env(
            args.app_root.resolve(), pg, redis.port, "profile", f"http://127.0.0.1:{port}/p/v1"
        )
        where = mint_servers.migrate_and_seed(env, mint_servers.BENCH)
        os.environ.update(env)
        sys.path[:0] = env["PYTHONPATH"].split(os.pathsep)
        profile(args, where)
    return 0


def profile(args: argparse.Namespace, where: str) -> None:
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")  # ALLOWED_HOSTS of the benchmark site
    if not client.login(username=mint_servers.USERNAME, password=mint_servers.PASSWORD):
        raise SystemExit("login failed")
    url = "/realtime/client-secrets/"

    def mint() -> None:
        answer = client.post(url, mint_servers.MINT_BODY, content_type="application/json")
        if answer.status_code != 201:
            raise SystemExit(f"mint answered {answer.status_code}: {answer.content[:300]!r}")

    for _ in range(50):  # warm: connections, pools, imports, caches
        mint()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.mints):
        mint()
    wall = (time.perf_counter() - wall) / args.mints * 1000
    cpu = (time.process_time() - cpu) / args.mints * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.mints):
        mint()
    profiler.disable()
    stats = pstats.Stats(profiler)
    if os.environ.get("PROFILE_DUMP"):
        stats.dump_stats(os.environ["PROFILE_DUMP"])
    total = stats.total_tt / args.mints * 1000  # type: ignore[attr-defined]
    print(f"django_realtime under test: {where}")
    print(
        f"{args.mints} in-process mints (Django test client, PostgreSQL, Redis, upstream stub "
        f"at 0 ms): {wall:.2f} ms wall, {cpu:.2f} ms CPU per mint without the profiler; "
        f"{total:.2f} ms per mint under cProfile"
    )
    print("\nstage (cumulative, ms per mint under the profiler, share of the request):")
    whole = None
    for label, ms in stage_times(stats, args.mints):
        if ms is None:
            print(f"  {label:<46} not found")
            continue
        whole = whole or ms
        print(f"  {label:<46} {ms:6.2f}  {ms / whole * 100:5.1f}%")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print(f"\ntop {args.top} functions by own time (whole run of {args.mints} mints):")
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    for line in lines[start : start + args.top + 1]:
        print("  " + line.replace(str(Path(sys.prefix)), "<venv>")[:150])


if __name__ == "__main__":
    sys.exit(main())
