"""The example project as a site would deploy it, for the mint benchmark:
PostgreSQL with persistent connections, Redis for the rate-limit counters (two
worker processes must share them), DEBUG off, a rate limit too high to trigger,
the upstream on 127.0.0.1. Everything else (apps, middleware, session login,
URLs) is the example project's own.
"""

from __future__ import annotations

import os

from example_project.settings import *  # noqa: F403
from example_project.settings import DJANGO_REALTIME as _EXAMPLE_REALTIME

DEBUG = False
ROOT_URLCONF = "mint_site.urls"
ALLOWED_HOSTS = ["127.0.0.1"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "bench",
        "USER": os.environ["BENCH_PG_USER"],
        "HOST": "127.0.0.1",
        "PORT": os.environ["BENCH_PG_PORT"],
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": False,
    }
}
CACHES = {
    "default": {
        # Django's RedisCache with one pool per process (under ASGI Django's own
        # connects anew on every request).
        "BACKEND": "example_project.redis_cache.SharedPoolRedisCache",
        "LOCATION": f"redis://127.0.0.1:{os.environ['BENCH_REDIS_PORT']}/0",
    }
}
if os.environ.get("BENCH_DB_POOL"):
    # Under ASGI every request runs its sync code in a thread of its own, so
    # persistent per-thread connections pile up (one per request, until
    # max_connections): Django's docs prescribe a pool there instead. A request
    # holds its connection until it ends (the upstream wait included), so the pool
    # needs about as many connections as a process has requests in flight.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "pool": {"min_size": 4, "max_size": int(os.environ["BENCH_DB_POOL"]), "timeout": 30}
    }
# Sessions read from Redis, the database only on a miss (Django's documented engine).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SILENCED_SYSTEM_CHECKS: list[str] = []
DJANGO_REALTIME = {
    **_EXAMPLE_REALTIME,
    "API_KEY": "sk-bench",
    "API_BASE": os.environ["BENCH_API_BASE"],
    "RATE": "100000000/m",
}
if os.environ.get("BENCH_ASYNC_VIEWS"):
    # The ASGI deployment's middleware: the same stack, run on the event loop
    # (example_project/asgi_middleware.py) instead of a thread hop per hook.
    _ON_LOOP = {
        "django.middleware.security.SecurityMiddleware": "OnLoopSecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware": "OnLoopSessionMiddleware",
        "django.middleware.common.CommonMiddleware": "OnLoopCommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware": "OnLoopCsrfViewMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware": "OnLoopMessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware": "OnLoopXFrameOptionsMiddleware",
    }
    MIDDLEWARE = [
        f"example_project.asgi_middleware.{_ON_LOOP[m]}" if m in _ON_LOOP else m
        for m in MIDDLEWARE  # noqa: F405
    ]
