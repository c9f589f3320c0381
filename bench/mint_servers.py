"""The servers ``bench_mint.py`` compares, started on 127.0.0.1 against one upstream stub.

- ``express``: OpenAI's WebRTC-guide token server (``reference/``), one node process;
- ``floor-httpx`` / ``floor-aiohttp``: ``floor_app.py`` under uvicorn, one process;
- ``django-wsgi``: the example project under ``gunicorn -k gthread -w 2 --threads 100``;
- ``django-asgi``: the example project under uvicorn, 2 worker processes
  (``asgi_workers.py``: ``--workers 2`` with TCP_NODELAY kept);
- ``uvicorn-w2``: the same under plain ``uvicorn --workers 2``, which loses
  TCP_NODELAY (https://github.com/Kludex/uvicorn/issues/3149).

Each gets its own upstream API base (``/TAG/v1``), so the stub counts its mints, and
each Django server its own PostgreSQL role, so ``pg_stat_statements`` counts its
statements.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
import httpx
import psycopg

BENCH = Path(__file__).resolve().parent
REFERENCE = BENCH / "reference"
MINT_BODY = '{"preset": "assistant"}'
USERNAME, PASSWORD = "student", "bench-password-1"
SEED = f"""
import io
from django.core.management import call_command
from django.contrib.auth.models import User
from django_realtime.models import UsageLimit
call_command("seed_demo", username="admin", stdout=io.StringIO())
User.objects.create_user({USERNAME!r}, password={PASSWORD!r})
# The demo's quota (1 concurrent call) would answer 429 from the second mint on.
UsageLimit.objects.all().delete()
"""


@dataclass
class Candidate:
    """A server under test: how to (re)start it and how to ask it for a mint."""

    name: str
    tag: str
    cmd: list[str]
    env: dict[str, str]
    cwd: Path
    path: str
    pg_role: str | None = None
    method: str = "GET"
    server: harness.Server | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}{self.path}"


def npm_ci() -> None:
    """``npm ci`` in ``reference/`` unless node_modules matches the lock file."""
    lock = REFERENCE / "package-lock.json"
    stamp = REFERENCE / "node_modules" / ".package-lock.json"
    if stamp.exists() and stamp.stat().st_mtime >= lock.stat().st_mtime:
        return
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=REFERENCE, check=True
    )


OWNER = "bench_owner"


def prepare_database(pg: harness.Postgres, roles: list[str]) -> None:
    """Database ``bench`` owned by :data:`OWNER` (it migrates), one member role per server.

    PostgreSQL runs foreign-key checks as the table owner, so they land on the
    owner's ``pg_stat_statements`` rows, not on any server's.
    """
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE ROLE "{OWNER}" LOGIN')
        for role in roles:
            conn.execute(f'CREATE ROLE "{role}" LOGIN IN ROLE "{OWNER}"')
        conn.execute(f'CREATE DATABASE bench OWNER "{OWNER}"')
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", dbname="bench", autocommit=True
    ) as conn:
        conn.execute("CREATE EXTENSION pg_stat_statements")


def django_env(
    app_root: Path, pg: harness.Postgres, redis_port: int, role: str, api: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env.update(
        PYTHONPATH=os.pathsep.join([str(BENCH), str(app_root / "example_project"), str(app_root)]),
        DJANGO_SETTINGS_MODULE="mint_site.settings",
        BENCH_PG_PORT=str(pg.port),
        BENCH_PG_USER=role,
        BENCH_REDIS_PORT=str(redis_port),
        BENCH_API_BASE=api,
    )
    return env


def migrate_and_seed(env: dict[str, str], cwd: Path) -> str:
    """Migrate, seed the demo presets and a plain user; returns the django_realtime used."""
    env = {**env, "BENCH_PG_USER": OWNER}
    manage = [sys.executable, "-m", "django"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, cwd=cwd, check=True)
    subprocess.run([*manage, "shell", "-c", SEED], env=env, cwd=cwd, check=True)
    where = subprocess.run(
        [sys.executable, "-c", "import django_realtime; print(django_realtime.__file__)"],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return where.stdout.strip()


def candidates(
    app_root: Path, upstream_port: int, pg: harness.Postgres, redis_port: int
) -> list[Candidate]:
    def api(tag: str) -> str:
        return f"http://127.0.0.1:{upstream_port}/{tag}/v1"

    py = sys.executable
    uvicorn = [py, "-m", "uvicorn", "--host", "127.0.0.1", "--no-access-log"]
    uvicorn += ["--log-level", "warning", "--backlog", "2048"]
    found: list[Candidate] = [
        Candidate(
            "express",
            "express",
            ["node", "server.js"],
            {**os.environ, "UPSTREAM": api("express"), "OPENAI_API_KEY": "sk-bench"},
            REFERENCE,
            "/session",
        )
    ]
    for transport in ("httpcore", "aiohttp"):
        tag = f"floor-{'httpx' if transport == 'httpcore' else 'aiohttp'}"
        env = {**os.environ, "FLOOR_UPSTREAM": api(tag), "FLOOR_TRANSPORT": transport}
        found.append(
            Candidate(
                tag, tag, [*uvicorn, "floor_app:app", "--port", "{port}"], env, BENCH, "/session"
            )
        )
    gunicorn = [py, "-m", "gunicorn", "mint_site.wsgi:application", "-k", "gthread"]
    gunicorn += ["-w", "2", "--threads", "100", "--backlog", "2048", "--log-level", "warning"]
    gunicorn += ["-b", "127.0.0.1:{port}"]
    asgi = [py, str(BENCH / "asgi_workers.py"), "mint_site.asgi:application", "{port}", "2"]
    asgi_w2 = [*uvicorn, "mint_site.asgi:application", "--workers", "2", "--port", "{port}"]
    for name, cmd in (("django-wsgi", gunicorn), ("django-asgi", asgi), ("uvicorn-w2", asgi_w2)):
        role = name.replace("-", "_")
        env = django_env(app_root, pg, redis_port, role, api(name))
        if name != "django-wsgi":
            env["BENCH_DB_POOL"] = "100"
            env["BENCH_ASYNC_VIEWS"] = "1"  # django_realtime.async_urls
        found.append(
            Candidate(name, name, cmd, env, BENCH, "/realtime/client-secrets/", role, "POST")
        )
    return found


def start_candidate(stack: contextlib.ExitStack, cand: Candidate, logdir: Path) -> None:
    port = harness.free_port()
    cmd = [part.replace("{port}", str(port)) for part in cand.cmd]
    cand.env["PORT"] = str(port)  # the Express server's
    cand.server = harness.start(
        stack, cand.name, cmd, port=port, logdir=logdir, env=cand.env, cwd=cand.cwd
    )


def restart_candidate(stack: contextlib.ExitStack, cand: Candidate, logdir: Path) -> None:
    """Drop a server whose queue outlived the run (requests wrk gave up on)."""
    assert cand.server is not None
    harness.stop_group(cand.server.proc)
    start_candidate(stack, cand, logdir)


def session_login(base: str) -> dict[str, str]:
    """Log in once through the login form; the cookie and CSRF token every mint reuses."""
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/accounts/login/")
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if found is None:
            raise RuntimeError(f"no CSRF token on the login page ({page.status_code})")
        form = {"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": found[1]}
        done = client.post("/accounts/login/", data=form)
        if done.status_code != 302 or "sessionid" not in client.cookies:
            raise RuntimeError(f"login failed: {done.status_code}")
        session, csrf = client.cookies["sessionid"], client.cookies["csrftoken"]
    return {
        "Cookie": f"sessionid={session}; csrftoken={csrf}",
        "X-CSRFToken": csrf,
        "Content-Type": "application/json",
    }


def check_mint(cand: Candidate) -> dict[str, Any]:
    """One request by hand: it must succeed with a secret before any load."""
    body = MINT_BODY if cand.method == "POST" else None
    answer = httpx.request(cand.method, cand.url, headers=cand.headers, content=body, timeout=30)
    if answer.status_code >= 300 or "value" not in answer.text:
        raise RuntimeError(f"{cand.name}: {answer.status_code} {answer.text[:300]}")
    data: dict[str, Any] = answer.json()
    return data


# --- pg_stat_statements ------------------------------------------------------------

AUTH_TABLES = re.compile(r'FROM "(django_session|auth_user)"( |$)')
DML = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


def statements(pg: harness.Postgres, role: str) -> dict[str, int]:
    """Calls so far of every statement ``role`` executed, by normalised query text."""
    with psycopg.connect(
        host="127.0.0.1", port=pg.port, user="postgres", dbname="bench", autocommit=True
    ) as conn:
        rows = conn.execute(
            "SELECT s.query, sum(s.calls) FROM pg_stat_statements s"
            " JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = %s GROUP BY s.query",
            (role,),
        ).fetchall()
    return {query: int(calls) for query, calls in rows}


def kind(query: str) -> str:
    """``auth`` (session and user lookups), ``app`` (other queries) or ``other``
    (transaction control and settings: BEGIN, COMMIT, SAVEPOINT, SET...)."""
    if not query.lstrip().upper().startswith(DML):
        return "other"
    return "auth" if AUTH_TABLES.search(query) else "app"
