"""Settings for the scale-out test: each Django process is a separate OS process
sharing one PostgreSQL database and one Redis cache, as in production."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DJANGO_REALTIME as _BASE_REALTIME

DEBUG = False
# The ASGI processes of test_fast_paths.py mount django_realtime.async_urls.
ROOT_URLCONF = os.environ.get("SCALEOUT_URLCONF", "tests.urls")
ALLOWED_HOSTS = ["127.0.0.1"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "realtime",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ["SCALEOUT_PG_PORT"],
        "CONN_MAX_AGE": 0,
    }
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{os.environ['SCALEOUT_REDIS_PORT']}/0",
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.db"
DJANGO_REALTIME = {
    **_BASE_REALTIME,
    "API_BASE": os.environ["SCALEOUT_API_BASE"],
    "MAX_RETRIES": 0,
    # The workers' test: short leases so a killed worker's calls move within seconds.
    "CONTROL_LEASE_SECONDS": float(os.environ.get("SCALEOUT_LEASE_SECONDS", "15")),
    # The LISTEN test polls rarely, to show that NOTIFY (not the poll) wakes the worker.
    "CONTROL_POLL_SECONDS": float(os.environ.get("SCALEOUT_POLL_SECONDS", "0.1")),
}
