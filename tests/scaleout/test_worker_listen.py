"""A worker process on real PostgreSQL LISTENs: a call the site records is claimed at
once, long before the worker's next poll (``CONTROL_POLL_SECONDS`` set to 30 s here),
and a beacon's end request reaches it the same way (the lease is long, so no heartbeat
reads end requests in the meantime either).

The worker's first poll runs as it starts, before the call exists; the call is recorded
only once the worker's ``LISTEN`` is in place (seen in ``pg_stat_activity``), through the
site's own :func:`~django_realtime.calls.record_relay_call` (which sends the NOTIFY) in
another process. So a claim before 30 s after the worker started can only be the NOTIFY.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_realtime.control.wakeup import NOTIFY_CHANNEL
from django_realtime.testing.sideband import sidebands_of
from tests.scaleout.test_two_processes import ROOT, SETTINGS, fake_api, postgres

pytestmark = pytest.mark.scaleout

__all__ = ["fake_api", "postgres"]  # fixtures, shared with the sites' test

POLL_SECONDS = 30.0
LEASE_SECONDS = 300.0  # heartbeats (which also read end requests) every 100 s
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}

RECORD = """
import os
from django_realtime.calls import record_relay_call
from django_realtime.models import SessionPreset
preset = SessionPreset.objects.get(slug="listen")
record_relay_call(os.environ["SCALEOUT_CALL_ID"], user=None, preset=preset, session={SESSION!r})
"""
END = """
import os
from django_realtime.calls import request_end
from django_realtime.models import RealtimeCall
request_end(RealtimeCall.objects.get(call_id=os.environ["SCALEOUT_CALL_ID"]), "beacon")
"""


def _query(port: int, sql: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="realtime") as c:
        return c.execute(sql).fetchall()  # type: ignore[arg-type]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def env(postgres: int, fake_api: Any) -> dict[str, str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SCALEOUT_PG_PORT": str(postgres),
        "SCALEOUT_REDIS_PORT": "1",  # unused by workers
        "SCALEOUT_API_BASE": fake_api.url,
        "SCALEOUT_POLL_SECONDS": str(POLL_SECONDS),
        "SCALEOUT_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    environment.pop("OPENAI_API_KEY", None)
    return environment


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, cwd=ROOT, check=True, capture_output=True
    )


@pytest.fixture
def worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    _manage(env, "migrate", "--noinput", "-v", "0")
    _manage(
        env,
        "shell",
        "-c",
        "from django_realtime.models import SessionPreset; "
        "SessionPreset.objects.get_or_create(slug='listen', "
        "defaults={'name': 'Listen', 'model': 'gpt-realtime'})",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "realtime_worker", "--name", "wL", "--max-calls", "5"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_a_recorded_call_and_its_end_request_reach_the_worker_on_notify(
    env: dict[str, str], postgres: int, fake_api: Any, worker: subprocess.Popen[bytes]
) -> None:
    started = time.monotonic()
    listening = (
        "SELECT count(*) FROM pg_stat_activity "
        f"WHERE query = 'LISTEN {NOTIFY_CHANNEL}' AND datname = 'realtime'"
    )
    _wait(lambda: _query(postgres, listening)[0][0] == 1, 20, "the worker's LISTEN")
    call_id = sidebands_of(fake_api.fake).virtual_call(SESSION).id
    _manage(
        {**env, "SCALEOUT_CALL_ID": call_id},
        "shell",
        "-c",
        RECORD.replace("{SESSION!r}", repr(SESSION)),
    )
    row = (
        f"SELECT status, lease_owner FROM django_realtime_realtimecall WHERE call_id = '{call_id}'"
    )
    # The worker's next poll is due POLL_SECONDS after it started: wait less than that.
    left = POLL_SECONDS - (time.monotonic() - started) - 1.0
    assert left > 0, "the set-up took longer than a poll interval: nothing would be shown"
    _wait(lambda: _query(postgres, row) == [("active", "wL")], left, "the claim on NOTIFY")
    assert time.monotonic() - started < POLL_SECONDS  # the poll could not have fired yet
    assert sidebands_of(fake_api.fake).attached(call_id) == 1

    # The beacon's end request: NOTIFY again; the worker hangs up (reason beacon).
    _manage({**env, "SCALEOUT_CALL_ID": call_id}, "shell", "-c", END)
    ended = (
        f"SELECT status, end_reason FROM django_realtime_realtimecall WHERE call_id = '{call_id}'"
    )
    left = POLL_SECONDS - (time.monotonic() - started) - 1.0
    assert left > 0, "the set-up took longer than a poll interval: nothing would be shown"
    _wait(lambda: _query(postgres, ended) == [("ended", "beacon")], left, "the end on NOTIFY")
    assert time.monotonic() - started < POLL_SECONDS
    assert len(fake_api.fake.requests_to(f"/realtime/calls/{call_id}/hangup")) == 1
