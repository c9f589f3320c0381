"""The fast paths across real processes: two WSGI (gunicorn gthread) and two ASGI
(uvicorn, ``django_realtime.async_urls``) processes on one PostgreSQL and one Redis.

* The one-round-trip rate limit is exact: 100 concurrent mints against a limit of
  10, spread over two processes, give exactly 10 secrets, on each path.
* A preset saved by another process (``manage.py shell``) is seen by the next
  request on every process, and so is a change of its groups.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.scaleout.test_two_processes import (  # noqa: F401  (fixtures)
    ROOT,
    SETTINGS,
    _free_port,
    _wait_port,
    fake_api,
    postgres,
    redis_port,
)

pytestmark = pytest.mark.scaleout

LIMIT = 10
SEED = f"""
from django.contrib.auth.models import User
from django_realtime.models import SessionPreset
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
user = User.objects.create_user("bob", password="pw")
for slug in ("wsgi-ten", "asgi-ten"):
    SessionPreset.objects.create(slug=slug, name=slug, model="gpt-realtime", rate="{LIMIT}/h")
SessionPreset.objects.create(slug="shared", name="shared", model="gpt-realtime")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print("SESSION", session.session_key, "USER", user.pk)
"""


@pytest.fixture(scope="module")
def env(postgres: int, redis_port: int, fake_api: Any) -> dict[str, str]:  # noqa: F811
    found = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "SCALEOUT_PG_PORT": str(postgres),
        "SCALEOUT_REDIS_PORT": str(redis_port),
        "SCALEOUT_API_BASE": fake_api.url,
    }
    found.pop("OPENAI_API_KEY", None)
    return found


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "django", *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


@pytest.fixture(scope="module")
def servers(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    manage(env, "migrate", "--noinput", "-v", "0")
    seeded = re.search(r"SESSION (\S+) USER (\d+)", manage(env, "shell", "-c", SEED))
    assert seeded
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, list[str]] = {"wsgi": [], "asgi": []}
    # gunicorn, not runserver: runserver's listen backlog (10) resets 50 simultaneous connects.
    gunicorn = [sys.executable, "-m", "gunicorn", "django.core.wsgi:get_wsgi_application()"]
    gunicorn += ["-k", "gthread", "--threads", "60", "--backlog", "2048"]
    uvicorn = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1"]
    uvicorn += ["django.core.asgi:get_asgi_application", "--log-level", "warning"]
    uvicorn += ["--backlog", "2048"]
    asgi_env = {**env, "SCALEOUT_URLCONF": "tests.urls_async"}
    try:
        for kind in ("wsgi", "asgi"):
            for _ in range(2):
                port = _free_port()
                if kind == "wsgi":
                    cmd, run_env = [*gunicorn, "-b", f"127.0.0.1:{port}"], env
                else:
                    cmd, run_env = [*uvicorn, "--port", str(port)], asgi_env
                out = subprocess.DEVNULL
                procs.append(subprocess.Popen(cmd, env=run_env, cwd=ROOT, stdout=out, stderr=out))
                urls[kind].append(f"http://127.0.0.1:{port}")
        for url in urls["wsgi"] + urls["asgi"]:
            _wait_port(int(url.rsplit(":", 1)[1]))
        yield {"urls": urls, "session": seeded[1], "user": seeded[2]}
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


def _client(base: str, session: str) -> httpx.Client:
    token = "k" * 32
    return httpx.Client(
        base_url=base,
        timeout=30,
        cookies={"sessionid": session, "csrftoken": token},
        headers={"X-CSRFToken": token},
    )


def _mint(client: httpx.Client, slug: str) -> int:
    return client.post("/realtime/client-secrets/", json={"preset": slug}).status_code


def _outcomes(postgres: int, slug: str) -> dict[str, int]:  # noqa: F811
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres, user="postgres", dbname="realtime"
    ) as conn:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM django_realtime_auditlogentry "
            "WHERE preset_slug = %s GROUP BY outcome",
            (slug,),
        ).fetchall()
    return {outcome: count for outcome, count in rows}


def _away_from_window_edge(user_pk: str) -> None:
    """django-ratelimit's hourly window for this user must not roll over mid-test."""
    from django_ratelimit.core import _get_window

    left = _get_window(user_pk, 3600) - time.time()
    if left < 30:
        time.sleep(left + 1)


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_hundred_concurrent_mints_against_ten_give_ten(
    servers: dict[str, Any],
    fake_api: Any,  # noqa: F811
    postgres: int,  # noqa: F811
    kind: str,
) -> None:
    slug = f"{kind}-ten"
    bases = servers["urls"][kind]
    clients = [_client(bases[i % 2], servers["session"]) for i in range(100)]
    before = len(fake_api.fake.requests_to("/realtime/client_secrets"))
    barrier = threading.Barrier(100)
    statuses: list[int] = []
    lock = threading.Lock()

    def fire(client: httpx.Client) -> None:
        barrier.wait()
        status = _mint(client, slug)
        with lock:
            statuses.append(status)

    _away_from_window_edge(servers["user"])
    threads = [threading.Thread(target=fire, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for client in clients:
        client.close()

    assert len(statuses) == 100
    assert statuses.count(201) == LIMIT, sorted(statuses)
    assert statuses.count(429) == 100 - LIMIT, sorted(statuses)
    assert len(fake_api.fake.requests_to("/realtime/client_secrets")) - before == LIMIT
    assert _outcomes(postgres, slug) == {"issued": LIMIT, "rate_limited": 100 - LIMIT}


def test_preset_saved_elsewhere_is_seen_by_every_process(
    servers: dict[str, Any],
    env: dict[str, str],
) -> None:
    every = servers["urls"]["wsgi"] + servers["urls"]["asgi"]
    clients = [_client(base, servers["session"]) for base in every]
    assert [_mint(c, "shared") for c in clients] == [201] * 4  # each process memoises it

    manage(env, "shell", "-c", SAVE.format(change="preset.is_active = False; preset.save()"))
    assert [_mint(c, "shared") for c in clients] == [404] * 4

    group_change = (
        "preset.is_active = True; preset.save(); "
        "preset.allowed_groups.add(Group.objects.create(name='staff'))"
    )
    manage(env, "shell", "-c", SAVE.format(change=group_change))
    assert [_mint(c, "shared") for c in clients] == [403] * 4

    manage(env, "shell", "-c", SAVE.format(change="preset.allowed_groups.clear()"))
    assert [_mint(c, "shared") for c in clients] == [201] * 4
    for client in clients:
        client.close()


SAVE = """
from django.contrib.auth.models import Group
from django_realtime.models import SessionPreset
preset = SessionPreset.objects.get(slug="shared")
{change}
"""
