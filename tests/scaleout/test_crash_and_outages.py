"""A real server process on real PostgreSQL and Redis: killed with mints in flight, and
then deprived of its cache and its database.

* SIGKILL with mints in flight, restart: every secret request the upstream received has
  an audit row (``pending``, later ``abandoned``), the database is intact, the
  restarted server mints;
* NUL bytes on PostgreSQL: 400 ``invalid`` with a row, nothing upstream;
* Redis killed: 503 ``unavailable`` JSON, nothing upstream, the row says so;
* PostgreSQL stopped: 503 ``unavailable`` JSON, nothing upstream.

Needs PostgreSQL and Redis binaries, like ``test_two_processes`` (whose process
helpers it reuses); skips without them locally, fails under CI.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scaleout.test_two_processes import (
    ROOT,
    SETTINGS,
    _as_postgres,
    _free_port,
    _missing,
    _pg_bin,
    _wait_port,
    fake_api,  # noqa: F401 - a fixture
    postgres,  # noqa: F401 - a fixture
)

pytestmark = pytest.mark.scaleout

MINT = "/realtime/client-secrets/"
IN_FLIGHT = 12

SEED = """
from django.contrib.auth.models import User
from django_realtime.models import SessionPreset
User.objects.create_user("alice", password="pw")
SessionPreset.objects.create(slug="assistant", name="Assistant", model="gpt-realtime",
                             rate="1000/m", allowed_overrides=["instructions"])
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


@pytest.fixture(scope="module")
def redis_proc() -> Iterator[list[Any]]:
    """``[port, process]``; a test that kills Redis starts it again with :func:`_redis`."""
    holder = [_free_port(), None]
    holder[1] = _redis(holder[0])
    try:
        yield holder
    finally:
        if holder[1].poll() is None:
            holder[1].terminate()
            holder[1].wait(10)


def _redis(port: int) -> subprocess.Popen[bytes]:
    import shutil

    binary = shutil.which("redis-server")
    if binary is None:
        _missing("Redis")
    assert binary is not None
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_port(port)
    return proc


class Site:
    """One ``runserver`` process of the test settings, restartable."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def start(self) -> None:
        port = _free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "runserver",
                f"127.0.0.1:{port}",
                "--noreload",
                "--skip-checks",
            ],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        _wait_port(port)

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def site(
    postgres: int,  # noqa: F811 - the imported fixture
    redis_proc: list[Any],
    fake_api: Any,  # noqa: F811
) -> Iterator[tuple[Site, str]]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SCALEOUT_PG_PORT": str(postgres),
        "SCALEOUT_REDIS_PORT": str(redis_proc[0]),
        "SCALEOUT_API_BASE": fake_api.url,
    }
    env.pop("OPENAI_API_KEY", None)
    server = Site(env)
    server.manage("migrate", "--noinput", "-v", "0")
    session_key = re.search(r"SESSION (\S+)", server.manage("shell", "-c", SEED))
    assert session_key
    server.start()
    try:
        yield server, session_key.group(1)
    finally:
        server.stop()


def _browser(site: Site, session_key: str, timeout: float = 10) -> httpx.Client:
    token = "k" * 32
    return httpx.Client(
        base_url=site.url,
        timeout=timeout,
        cookies={"sessionid": session_key, "csrftoken": token},
        headers={"X-CSRFToken": token},
    )


def _sql(postgres_port: int, query: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres_port, user="postgres", dbname="realtime", autocommit=True
    ) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


def _outcomes(postgres_port: int) -> dict[str, int]:
    rows = _sql(
        postgres_port,
        "SELECT outcome, count(*) FROM django_realtime_auditlogentry "
        "WHERE action = 'mint' GROUP BY outcome",
    )
    return {outcome: count for outcome, count in rows}


def _since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The rows a test added: the module's tests share one database, in any order."""
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


def test_sigkill_with_mints_in_flight_loses_no_record(
    site: tuple[Site, str],
    fake_api: Any,  # noqa: F811
    postgres: int,  # noqa: F811
) -> None:
    server, session_key = site
    start = _outcomes(postgres)
    with _browser(server, session_key) as http:
        for _ in range(3):
            assert http.post(MINT, json={"preset": "assistant"}).status_code == 201
    fake = fake_api.fake
    before = len(fake.requests_to("/realtime/client_secrets"))
    fake.timeout_next("/realtime/client_secrets", seconds=30, times=IN_FLIGHT)

    def mint() -> None:
        # The server dies under the request: its error is expected.
        with (
            _browser(server, session_key, timeout=20) as http,
            contextlib.suppress(httpx.HTTPError),
        ):
            http.post(MINT, json={"preset": "assistant"})

    threads = [threading.Thread(target=mint) for _ in range(IN_FLIGHT)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(fake.requests_to("/realtime/client_secrets")) < before + IN_FLIGHT:
        assert time.monotonic() < deadline, "the mints never reached the upstream"
        time.sleep(0.05)
    server.kill()
    for thread in threads:
        thread.join(20)
    fake.clear_faults()

    upstream_requests = len(fake.requests_to("/realtime/client_secrets"))
    outcomes = _since(start, _outcomes(postgres))
    # Every secret request the upstream received has its row.
    assert sum(outcomes.values()) == upstream_requests - before + 3, outcomes
    assert outcomes == {"issued": 3, "pending": IN_FLIGHT}

    # Restart: the database is intact and the server mints again.
    server.start()
    with _browser(server, session_key) as http:
        assert http.post(MINT, json={"preset": "assistant"}).status_code == 201
    _sql(
        postgres,
        "UPDATE django_realtime_auditlogentry SET created_at = created_at - interval '1 hour' "
        "WHERE outcome = 'pending'",
    )
    out = server.manage("realtime_prune", "--abandon-only")
    assert f"Marked {IN_FLIGHT} unfinished audit log entries abandoned." in out
    assert _since(start, _outcomes(postgres)) == {"issued": 4, "abandoned": IN_FLIGHT}


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (MINT, '{"preset": "assistant", "overrides": {"instructions": "a\\u0000b"}}'),
        (MINT, '{"preset": "assistant", "overrides": {"instructions": "\\ud800"}}'),
        ("/realtime/calls/?preset=a%00b", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"),
    ],
)
def test_nul_and_surrogates_on_postgresql_are_400_with_a_row(
    site: tuple[Site, str],
    fake_api: Any,  # noqa: F811
    postgres: int,  # noqa: F811
    path: str,
    body: str,
) -> None:
    server, session_key = site
    rows = _sql(postgres, "SELECT count(*) FROM django_realtime_auditlogentry")[0][0]
    sent = len(fake_api.fake.requests)
    content_type = "application/sdp" if "calls" in path else "application/json"
    with _browser(server, session_key) as http:
        response = http.post(path, content=body.encode(), headers={"Content-Type": content_type})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid"
    assert response.headers["Cache-Control"] == "no-store"
    assert _sql(postgres, "SELECT count(*) FROM django_realtime_auditlogentry")[0][0] == rows + 1
    assert len(fake_api.fake.requests) == sent


def test_redis_killed_is_503_unavailable_and_nothing_upstream(
    site: tuple[Site, str],
    fake_api: Any,  # noqa: F811
    postgres: int,  # noqa: F811
    redis_proc: list[Any],
) -> None:
    server, session_key = site
    redis_proc[1].kill()
    redis_proc[1].wait(10)
    try:
        _assert_cache_outage(server, session_key, fake_api, postgres)
    finally:
        redis_proc[1] = _redis(redis_proc[0])


def _assert_cache_outage(server: Site, session_key: str, fake: Any, pg_port: int) -> None:
    sent = len(fake.fake.requests)
    start = _outcomes(pg_port)
    with _browser(server, session_key) as http:
        response = http.post(MINT, json={"preset": "assistant"})
    assert response.status_code == 503, response.text
    assert response.json() == {
        "detail": "The service is temporarily unavailable. Try again shortly.",
        "code": "unavailable",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert len(fake.fake.requests) == sent
    assert _since(start, _outcomes(pg_port)) == {"unavailable": 1}


def test_postgres_refusing_connections_is_503_unavailable(
    site: tuple[Site, str],
    fake_api: Any,  # noqa: F811
    postgres: int,  # noqa: F811
) -> None:
    server, session_key = site
    bindir = _pg_bin()
    assert bindir is not None
    data = _sql(postgres, "SHOW data_directory")[0][0]
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "-D", data, "-m", "fast", "-w", "stop"]),
        check=True,
        capture_output=True,
    )
    try:
        sent = len(fake_api.fake.requests)
        with _browser(server, session_key) as http:
            response = http.post(MINT, json={"preset": "assistant"})
            listing = http.get("/realtime/presets/")
        for answer in (response, listing):
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "unavailable"
            assert answer.headers["Cache-Control"] == "no-store"
        assert len(fake_api.fake.requests) == sent
    finally:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    data,
                    "-l",
                    str(Path(data) / "log"),
                    "-w",
                    "start",
                    "-o",
                    f"-p {postgres} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off",
                ]
            ),
            check=True,
            capture_output=True,
        )
