"""Call controller workers as real processes on one PostgreSQL, against the fake over
real WebSockets: every call is attached exactly once; a worker killed with SIGKILL
loses its calls to another within the lease time; SIGTERM hands them over at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from django_realtime.testing import script
from django_realtime.testing.sideband import sidebands_of
from tests.scaleout.test_two_processes import ROOT, SETTINGS, fake_api, postgres

pytestmark = pytest.mark.scaleout

__all__ = ["fake_api", "postgres"]  # fixtures, shared with the sites' test

# The SIGTERM hand-over is proven by the rows (released leases name nobody), not by
# a timing; the lease only bounds how long the SIGKILL case waits.
LEASE = 5.0
CALLS = 6
SESSION = {"type": "realtime", "model": "gpt-realtime", "instructions": "Be brief."}

SEED = """
import os
from django_realtime.models import RealtimeCall, SessionPreset
preset = SessionPreset.objects.create(slug="worker", name="Worker", model="gpt-realtime")
for call_id in os.environ["SCALEOUT_CALL_IDS"].split(","):
    RealtimeCall.objects.create(call_id=call_id, origin="relay", preset=preset,
                                model="gpt-realtime", session={SESSION!r})
"""


def _rows(port: int) -> dict[str, tuple[str, str, str, int]]:
    """``{call_id: (status, lease_owner, end_reason, output_audio_tokens)}``."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="realtime") as c:
        found = c.execute(
            "SELECT call_id, status, lease_owner, end_reason, output_audio_tokens "
            "FROM django_realtime_realtimecall"
        ).fetchall()
    return {row[0]: tuple(row[1:]) for row in found}  # type: ignore[misc]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture
def env(postgres: int, fake_api: Any) -> dict[str, str]:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SCALEOUT_PG_PORT": str(postgres),
        "SCALEOUT_REDIS_PORT": "1",  # unused by workers
        "SCALEOUT_API_BASE": fake_api.url,
        "SCALEOUT_LEASE_SECONDS": str(LEASE),
    }
    environment.pop("OPENAI_API_KEY", None)
    return environment


@pytest.fixture
def workers(env: dict[str, str]) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "realtime_worker",
                "--name",
                name,
                "--max-calls",
                "20",
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_workers_share_calls_survive_a_kill_and_hand_over_on_sigterm(
    env: dict[str, str], postgres: int, fake_api: Any, workers: Any
) -> None:
    hub = sidebands_of(fake_api.fake)
    ids = [hub.virtual_call(SESSION).id for _ in range(CALLS)]
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [sys.executable, "-m", "django", "shell", "-c", SEED.replace("{SESSION!r}", repr(SESSION))],
        env={**env, "SCALEOUT_CALL_IDS": ",".join(ids)},
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    first, second = workers("wA"), workers("wB")

    def all_active() -> bool:
        rows = _rows(postgres)
        return all(rows[i][0] == "active" for i in ids)

    _wait(all_active, 30, "every call to be attached")
    time.sleep(1.0)  # a few polls: nobody attaches a second time
    assert [len(hub.history[i]) for i in ids] == [1] * CALLS  # attached exactly once
    owners = {i: _rows(postgres)[i][1] for i in ids}
    assert set(owners.values()) <= {"wA", "wB"}

    # SIGKILL: no goodbye; its leases lapse and the other worker re-attaches its calls.
    victim = next(iter(set(owners.values())))
    survivor = "wB" if victim == "wA" else "wA"
    (first if victim == "wA" else second).send_signal(signal.SIGKILL)
    orphans = [i for i in ids if owners[i] == victim]
    # Bounded by the lease (plus slack for a loaded machine), not by anything longer.
    _wait(
        lambda: (
            all(_rows(postgres)[i][1] == survivor for i in orphans)
            and all(hub.attached(i) == 1 for i in orphans)
        ),
        LEASE + 5,
        "the survivor to re-attach",
    )
    assert all(len(hub.history[i]) == 2 for i in orphans)
    # The call went on, and its usage is metered by the survivor.
    hub.play(orphans[0], [script.turn(usage=script.usage(audio_out=25))])
    _wait(lambda: _rows(postgres)[orphans[0]][3] == 25, 10, "metering after the move")

    # SIGTERM: the survivor gives its calls up at once. No other worker runs meanwhile,
    # so a lease left to lapse would still name it: "" proves it released them.
    leaving = second if survivor == "wB" else first
    leaving.send_signal(signal.SIGTERM)
    assert leaving.wait(10) == 0
    assert {_rows(postgres)[i][1] for i in ids} == {""}
    # A new worker takes them all.
    third = workers("wC")
    _wait(lambda: all(_rows(postgres)[i][1] == "wC" for i in ids), LEASE + 5, "the handover")

    for call_id in ids:
        hub.end_call(call_id)
    _wait(lambda: all(_rows(postgres)[i][:3:2] == ("ended", "peer") for i in ids), 15, "ends")
    third.send_signal(signal.SIGTERM)
    assert third.wait(10) == 0
