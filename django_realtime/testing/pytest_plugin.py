"""pytest fixtures for the fake Realtime API.

Enable with ``pytest_plugins = ["django_realtime.testing.pytest_plugin"]`` in your
root ``conftest.py``.

- ``realtime_fake``: an in-process :class:`FakeRealtimeAPI` whose transport is
  installed in ``django_realtime.client``; an API key is configured if the settings
  have none. Everything is restored at teardown.
- ``realtime_fake_server``: one :class:`FakeRealtimeServer` (uvicorn thread on
  127.0.0.1) for the whole session.
- ``realtime_server``: the session server, reset before and after each test (every
  peer hung up, faults and log cleared), with ``DJANGO_REALTIME`` pointed at it
  (``API_BASE`` and ``CONNECT_URL``) for the test's duration.
- ``realtime_sidebands``, ``realtime_virtual_call``: the fake's sideband and virtual
  calls (see :mod:`.pytest_sideband`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .fake import FakeRealtimeAPI
from .pytest_sideband import realtime_sidebands, realtime_virtual_call  # noqa: F401
from .server import FakeRealtimeServer

#: Configured only when the settings have no key: the fake accepts any ``sk-`` key.
FAKE_SERVER_KEY = "sk-fake-django-realtime-testing"


def _realtime_settings(**changes: Any) -> Any:
    """``override_settings`` for ``DJANGO_REALTIME`` with ``changes`` merged in."""
    from django.conf import settings
    from django.test import override_settings

    current = getattr(settings, "DJANGO_REALTIME", {})
    merged = {**(current if isinstance(current, dict) else {}), **changes}
    return override_settings(DJANGO_REALTIME=merged)


def _key_change() -> dict[str, str]:
    from django_realtime.conf import conf

    return {} if conf.has_api_key else {"API_KEY": FAKE_SERVER_KEY}


@pytest.fixture
def realtime_fake() -> Iterator[FakeRealtimeAPI]:
    """An in-process fake installed as the upstream client's transport."""
    from django_realtime import client

    previous = getattr(client, "_transport", None)
    fake = FakeRealtimeAPI()
    with _realtime_settings(**_key_change()):
        client.set_transport(fake.transport)
        try:
            yield fake
        finally:
            client.set_transport(previous)
            fake.close()


@pytest.fixture(scope="session")
def realtime_fake_server() -> Iterator[FakeRealtimeServer]:
    """The fake served on 127.0.0.1 for the whole test session."""
    with FakeRealtimeServer() as server:
        yield server


@pytest.fixture
def realtime_server(realtime_fake_server: FakeRealtimeServer) -> Iterator[FakeRealtimeServer]:
    """The session server with fresh state, and settings pointing at it."""
    from django_realtime import client

    server = realtime_fake_server
    server.fake.reset()
    previous = getattr(client, "_transport", None)
    changes = {"API_BASE": server.url, "CONNECT_URL": server.calls_url, **_key_change()}
    with _realtime_settings(**changes):
        # Real HTTP to the server: no in-process transport may intercept it.
        client.set_transport(None)
        try:
            yield server
        finally:
            # Hang up every peer now: a call left open streams for ~30 s.
            server.fake.reset()
            client.set_transport(previous)
