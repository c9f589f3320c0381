"""The usage dashboard at scale: queries and time for ``usage_report`` over N calls.

Fills a fresh SQLite file (or PostgreSQL, ``BENCH_PG_PORT``) with N calls spread over 40
days, 50 users and 5 presets, then times the report (best of ``--repeat``) and counts its
queries. Figures are printed, never asserted::

    python bench/bench_dashboard.py --calls 1000000
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django
from django.conf import settings

DB_FILE = Path(tempfile.mkdtemp(prefix="bench-dashboard-")) / "calls.sqlite3"
#: BENCH_PG_PORT=5432: an empty PostgreSQL database "bench" on 127.0.0.1 (user postgres).
PG_PORT = os.environ.get("BENCH_PG_PORT")
settings.DATABASES = {
    "default": (
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "bench",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": PG_PORT,
        }
        if PG_PORT
        else {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DB_FILE)}
    )
}
django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from django_realtime.models import RealtimeCall, SessionPreset  # noqa: E402
from django_realtime.usage import usage_report  # noqa: E402

COLUMNS = (
    "call_id, origin, status, end_reason, user_id, preset_id, model, session, created_at, "
    "attached_at, ended_at, input_text_tokens, input_audio_tokens, input_image_tokens, "
    "cached_input_tokens, output_text_tokens, output_audio_tokens, transcription_tokens, "
    "transcription_seconds, cost_usd, lease_owner, end_requested"
)


def fill(count: int, now: datetime) -> float:
    started = time.perf_counter()
    users = [User.objects.create_user(f"user{i}").pk for i in range(50)]
    presets = [
        SessionPreset.objects.create(name=f"Preset {i}", slug=f"p{i}", model="gpt-realtime").pk
        for i in range(5)
    ]
    table = RealtimeCall._meta.db_table
    marks = ", ".join(["%s"] * 22)
    sql = f"INSERT INTO {table} ({COLUMNS}) VALUES ({marks})"
    rng = random.Random(7)
    batch: list[tuple[object, ...]] = []
    with transaction.atomic(), connection.cursor() as cursor:
        for i in range(count):
            created = now - timedelta(seconds=rng.uniform(0, 40 * 86400))
            ended = created + timedelta(seconds=rng.uniform(10, 1800))
            batch.append(
                (
                    f"rtc_{i}", "relay", "ended", "peer", rng.choice(users), rng.choice(presets),
                    "gpt-realtime", "{}", created, created, ended,
                    0, 0, 0, 0, 0, 0, 0, 0, f"{rng.uniform(0, 0.5):.6f}", "", "",
                )
            )  # fmt: skip
            if len(batch) == 10_000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    filled = fill(args.calls, now)
    where = f"port {PG_PORT}" if PG_PORT else DB_FILE
    print(f"database: {connection.vendor} ({where}); {args.calls:,} calls in {filled:.1f} s")
    best = float("inf")
    queries = 0
    for _ in range(args.repeat):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            report = usage_report(now)
            best = min(best, time.perf_counter() - started)
        queries = len(captured.captured_queries)
    calls = sum(row.calls for row in report.days)
    print(f"usage_report: {queries} queries, best of {args.repeat}: {best * 1000:.0f} ms")
    print(f"  30-day window: {calls:,} calls, {len(report.presets)} presets, top users shown")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    for _ in range(args.repeat):  # again, with fresh statistics where the database keeps some
        started = time.perf_counter()
        usage_report(now)
        best = min(best, time.perf_counter() - started)
    print(f"  after ANALYZE, best: {best * 1000:.0f} ms")


if __name__ == "__main__":
    main()
