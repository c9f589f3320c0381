"""The ASGI views (``django_realtime.async_urls``) keep the WSGI views' contract.

The suites of the mint and relay endpoints and of hostile input and crash safety
run again here against ``async_urls`` (the sync test client drives an ``async
def`` view through Django's adapter, one fresh event loop per request). The tests
below pin what is particular to the async path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from django.urls import resolve

from django_realtime.models import SessionPreset
from tests.test_crash_safety import *  # noqa: F403
from tests.test_hostile_input import *  # noqa: F403
from tests.test_mint_api import *  # noqa: F403
from tests.test_relay_api import *  # noqa: F403

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.urls_async")]

# Its fake upstream reads the audit table from inside the transport, which on the
# async path runs on the event loop (a test artifact: the app never does that).
del test_mint_row_is_written_before_the_upstream_call  # noqa: F821
# Its parametrized httpx.Response objects are built once, at collection, and shared
# with test_mint_api.py: a response read here could not be read again there.
del test_malformed_upstream_success_is_502  # noqa: F821

MINT_URL = "/realtime/client-secrets/"


def test_the_async_urls_serve_coroutine_views() -> None:
    for url in (MINT_URL, "/realtime/calls/"):
        assert asyncio.iscoroutinefunction(resolve(url).func)


def test_wrong_method_is_answered_by_drf(
    api_client: Callable[..., Any], preset: SessionPreset
) -> None:
    response = api_client.get(MINT_URL)  # type: ignore[attr-defined]
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert response["Cache-Control"] == "no-store"
