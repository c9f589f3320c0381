"""Two Django processes, one PostgreSQL, one Redis: nothing in the app changes.

DESIGN.md promises the app keeps no per-process state beyond its HTTP client:
rate-limit counters live in the shared cache and webhook idempotency in a database
constraint. These tests start real servers on 127.0.0.1 and prove both across two
``runserver`` processes. They need PostgreSQL and Redis binaries (``.ci/run``
installs them); without them they skip locally and fail under CI.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from django_realtime import signing

pytestmark = pytest.mark.scaleout

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.scaleout.settings"
WEBHOOK_SECRET = "whsec_RdvaYFYUXuIFuEbvZHwMfYFhUf7aMYjYcmM24+Aj40c="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _missing(what: str) -> None:
    message = f"scale-out test needs {what} (apt-get install postgresql redis-server)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _as_postgres(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres() -> Iterator[int]:
    bindir = _pg_bin()
    if bindir is None:
        _missing("PostgreSQL")
    assert bindir is not None
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="realtime-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    port = _free_port()
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ]
        ),
        check=True,
        capture_output=True,
    )
    subprocess.run(
        _as_postgres(
            [
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(data / "log"),
                "-w",
                "start",
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off",
            ]
        ),
        check=True,
        capture_output=True,
    )
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    "postgres",
                    "realtime",
                ]
            ),
            check=True,
            capture_output=True,
        )
        yield port
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("Redis")
    assert binary is not None
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def fake_api() -> Iterator[object]:
    from django_realtime.testing.server import FakeRealtimeServer

    with FakeRealtimeServer() as server:
        yield server


@pytest.fixture(scope="module")
def sites(postgres: int, redis_port: int, fake_api: object) -> Iterator[tuple[list[str], str]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SCALEOUT_PG_PORT": str(postgres),
        "SCALEOUT_REDIS_PORT": str(redis_port),
        "SCALEOUT_API_BASE": fake_api.url,  # type: ignore[attr-defined]
    }
    env.pop("OPENAI_API_KEY", None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    manage("migrate", "--noinput", "-v", "0")
    seeded = manage("shell", "-c", SEED)
    session_key = re.search(r"SESSION (\S+)", seeded)
    assert session_key, seeded
    procs, urls = [], []
    try:
        for _ in range(2):
            port = _free_port()
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "django",
                        "runserver",
                        f"127.0.0.1:{port}",
                        "--noreload",
                        "--skip-checks",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    # Never read: a pipe would fill with runserver's request log (and
                    # block it) and be left open.
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            _wait_port(int(url.rsplit(":", 1)[1]))
        yield urls, session_key.group(1)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


SEED = """
from django.contrib.auth.models import User
from django_realtime.models import SessionPreset
from django_realtime.sip.models import SipRoute
User.objects.create_user("alice", password="pw")
preset = SessionPreset.objects.create(slug="assistant", name="Assistant",
                                      model="gpt-realtime", rate="4/m")
SipRoute.objects.create(name="all", match_type="any", action="accept", preset=preset)
# issue 10: one call at a time with the "limited" preset
from django_realtime.models import UsageLimit
limited = SessionPreset.objects.create(slug="limited", name="Limited", model="gpt-realtime",
                                       rate="100/m")
UsageLimit.objects.create(preset=limited, max_concurrent_calls=1)
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
user = User.objects.get(username="alice")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION", session.session_key)
"""


def _audit_outcomes(postgres: int) -> dict[str, int]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres, user="postgres", dbname="realtime"
    ) as conn:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM django_realtime_auditlogentry "
            "WHERE action = 'mint' GROUP BY outcome"
        ).fetchall()
    return {outcome: count for outcome, count in rows}


def test_rate_limit_and_session_shared_across_processes(sites, fake_api, postgres):
    urls, session_key = sites
    # One signed-in browser whose requests land on either process (a load balancer):
    # the session lives in PostgreSQL; the CSRF cookie/header pair is checked per request.
    token = "k" * 32
    cookies = {"sessionid": session_key, "csrftoken": token}
    with (
        httpx.Client(base_url=urls[0], timeout=10, cookies=cookies) as first,
        httpx.Client(base_url=urls[1], timeout=10, cookies=cookies) as second,
    ):
        csrf = {"X-CSRFToken": token}
        # The module's tests share the fake and the database, in any order: count what this adds.
        minted_before = len(fake_api.fake.requests_to("/realtime/client_secrets"))
        rows_before = _audit_outcomes(postgres)
        statuses = []
        for index in range(8):
            site = first if index % 2 == 0 else second
            reply = site.post(
                "/realtime/client-secrets/", json={"preset": "assistant"}, headers=csrf
            )
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert int(reply.headers["Retry-After"]) >= 1
                assert reply.json()["code"] == "rate_limited"
        # "4/m" for the user, counted in Redis: per-process counters would allow 8.
        assert statuses.count(201) == 4, statuses
        assert statuses.count(429) == 4, statuses
        assert len(fake_api.fake.requests_to("/realtime/client_secrets")) == minted_before + 4
        rows = _audit_outcomes(postgres)
        added = {
            k: rows[k] - rows_before.get(k, 0) for k in rows if rows[k] != rows_before.get(k, 0)
        }
        assert added == {"issued": 4, "rate_limited": 4}


def test_concurrent_webhook_deliveries_accept_once(sites, fake_api):
    call = fake_api.fake.add_sip_call(
        sip_headers=[
            {"name": "From", "value": "sip:+14155550100@example.com"},
            {"name": "To", "value": "sip:+14155550123@example.com"},
        ]
    )
    event = {
        "id": "evt_scaleout",
        "object": "event",
        "type": "realtime.call.incoming",
        "created_at": int(time.time()),
        "data": {"call_id": call.id, "sip_headers": call.sip_headers},
    }
    body = json.dumps(event).encode()
    headers = signing.sign(
        body, secret=WEBHOOK_SECRET, msg_id="wh_scaleout", timestamp=int(time.time())
    )
    headers["Content-Type"] = "application/json"
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def deliver(base: str) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            barrier.wait()
            statuses.append(
                http.post("/realtime/webhooks/openai/", content=body, headers=headers).status_code
            )

    urls, _ = sites
    threads = [threading.Thread(target=deliver, args=(urls[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    accepts = fake_api.fake.requests_to(f"/realtime/calls/{call.id}/accept")
    assert len(accepts) == 1
    assert statuses.count(200) >= 1
    assert set(statuses) <= {200, 409}, statuses
    # A redelivery after the dust settles is a no-op 200.
    with httpx.Client(base_url=urls[1], timeout=10) as http:
        again = http.post("/realtime/webhooks/openai/", content=body, headers=headers)
    assert again.status_code == 200
    assert len(fake_api.fake.requests_to(f"/realtime/calls/{call.id}/accept")) == 1


def test_simultaneous_mints_on_two_processes_respect_the_concurrency_limit(sites, fake_api):
    """Issue 10: six mints at once, three per process, one user, a limit of one call:
    exactly one secret is minted (the slot is an atomic add in the shared Redis)."""
    urls, session_key = sites
    token = "k" * 32
    cookies = {"sessionid": session_key, "csrftoken": token}
    before = len(fake_api.fake.requests_to("/realtime/client_secrets"))
    barrier = threading.Barrier(6)
    statuses: list[int] = []
    codes: list[str] = []

    def mint(url: str) -> None:
        with httpx.Client(base_url=url, timeout=10, cookies=cookies) as site:
            barrier.wait()
            reply = site.post(
                "/realtime/client-secrets/",
                json={"preset": "limited"},
                headers={"X-CSRFToken": token},
            )
        statuses.append(reply.status_code)
        if reply.status_code == 429:
            codes.append(reply.json()["code"])
            assert int(reply.headers["Retry-After"]) >= 1

    threads = [threading.Thread(target=mint, args=(urls[i % 2],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(statuses) == [201, 429, 429, 429, 429, 429], statuses
    assert codes == ["quota_exceeded"] * 5
    assert len(fake_api.fake.requests_to("/realtime/client_secrets")) == before + 1
