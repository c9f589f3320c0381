from __future__ import annotations

import os
import tempfile

SECRET_KEY = "tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_realtime",
    "django_realtime.sip",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "tests.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "file:testdb?mode=memory&cache=shared",
        "TEST": {"NAME": "file:testdb?mode=memory&cache=shared"},
    }
}

if os.environ.get("REALTIME_TEST_SQLITE_FILE"):
    # The browser run (scripts/run-tests.sh sets it): the live server's thread, a
    # worker's thread and the test write one database at once. Shared-cache memory
    # SQLite refuses a locked table at once (SQLITE_LOCKED: no busy timeout applies),
    # which made a call's attach or a worker's claim fail by chance; a WAL file with a
    # busy timeout makes each writer wait its turn, as a database server would.
    _path = os.path.join(tempfile.gettempdir(), f"django_realtime_tests_{os.getpid()}.sqlite3")
    DATABASES["default"] = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _path,
        "TEST": {"NAME": _path},
        "OPTIONS": {
            "timeout": 20,
            # Take the write lock at BEGIN: a read that upgrades to a write mid-way
            # would fail at once instead of waiting.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;",
        },
    }

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

STATIC_URL = "/static/"
LOGIN_URL = "/accounts/login/"

DJANGO_REALTIME = {
    "API_KEY": "sk-test-0123456789abcdef-SERVER-KEY",
    "API_BASE": "https://api.openai.test/v1",
    "WEBHOOK_SECRETS": ["whsec_RdvaYFYUXuIFuEbvZHwMfYFhUf7aMYjYcmM24+Aj40c="],
    "MAX_RETRIES": 2,
}
