"""What the crash-safe audit and the anonymous budget cost per request (in process).

Drives the mint view through Django's test client (session login, an
``httpx.MockTransport`` upstream answering at once) and compares, in alternating
rounds, the crash-safe audit (``pending`` row INSERTed before the upstream call,
UPDATEd after) with writing the row once at the end; then anonymous attempts within
and over ``ANONYMOUS_RATE``. Prints the median per request (best round) and the
queries of one request. Asserts nothing.

    python bench/bench_audit_cost.py [--settings tests.settings] [--requests 400] [--rounds 5]

For PostgreSQL point ``--settings`` at a settings module that uses it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default="tests.settings")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings

    import django

    django.setup()
    import httpx
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test.runner import DiscoverRunner
    from django.test.utils import CaptureQueriesContext, setup_test_environment
    from rest_framework.test import APIClient

    from django_realtime import client
    from django_realtime.audit import Attempt
    from django_realtime.models import SessionPreset

    setup_test_environment()
    runner = DiscoverRunner(verbosity=0)
    databases = runner.setup_databases()
    base = settings.DJANGO_REALTIME
    settings.DJANGO_REALTIME = {**base, "RATE": "1000000/m", "ANONYMOUS_RATE": "1000000/m"}

    def answer(request: httpx.Request) -> httpx.Response:
        body = {"value": "ek_bench", "expires_at": int(time.time()) + 60, "session": {}}
        return httpx.Response(200, json=body)

    client.set_transport(httpx.MockTransport(answer))
    SessionPreset.objects.create(slug="assistant", name="Assistant", model="gpt-realtime")
    signed_in = APIClient()
    signed_in.force_login(User.objects.create_user("bench", password="pw"))
    anonymous = APIClient()

    def median_ms(api: APIClient, count: int) -> float:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            api.post("/realtime/client-secrets/", {"preset": "assistant"}, format="json")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    def queries(api: APIClient) -> int:
        with CaptureQueriesContext(connection) as captured:
            api.post("/realtime/client-secrets/", {"preset": "assistant"}, format="json")
        return len(captured.captured_queries)

    crash_safe = Attempt.begin

    def at_the_end(self: Attempt, **kwargs: Any) -> Any:
        return None

    modes = {"crash-safe (INSERT + UPDATE)": crash_safe, "row at the end (INSERT)": at_the_end}
    median_ms(signed_in, 100)  # warm-up
    results: dict[str, list[float]] = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, begin in modes.items():
            Attempt.begin = begin  # type: ignore[method-assign]
            results[name].append(median_ms(signed_in, args.requests))
    for name, begin in modes.items():
        Attempt.begin = begin  # type: ignore[method-assign]
        print(
            f"{name:32} best median {min(results[name]):6.3f} ms  "
            f"rounds {[round(r, 2) for r in results[name]]}  queries {queries(signed_in)}"
        )
    Attempt.begin = crash_safe  # type: ignore[method-assign]
    within = median_ms(anonymous, args.requests)
    print(f"{'anonymous, within budget':32} median {within:6.3f} ms  queries {queries(anonymous)}")
    settings.DJANGO_REALTIME = {**settings.DJANGO_REALTIME, "ANONYMOUS_RATE": "1/m"}
    median_ms(anonymous, 2)
    over = median_ms(anonymous, args.requests)
    print(f"{'anonymous, over budget':32} median {over:6.3f} ms  queries {queries(anonymous)}")
    runner.teardown_databases(databases)


if __name__ == "__main__":
    main()
