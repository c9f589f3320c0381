"""The example project's on-loop middleware (``example_project/asgi_middleware.py``):
the same behaviour as Django's classes under ASGI, without a thread hop per hook.

Served by Django's ``AsyncClient`` (the ASGI handler): a session write survives to the
next request, messages reach the next page, a POST without a CSRF token is refused,
the security and frame headers are set, and the hooks that do no I/O run on the event
loop (no running loop in a ``sync_to_async`` thread).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.middleware.security import SecurityMiddleware
from django.test import AsyncClient, override_settings
from django.urls import path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "example_project"))

ON_LOOP = "example_project.asgi_middleware."
MIDDLEWARE = [
    f"{ON_LOOP}OnLoopSecurityMiddleware",
    f"{ON_LOOP}OnLoopSessionMiddleware",
    f"{ON_LOOP}OnLoopCommonMiddleware",
    f"{ON_LOOP}OnLoopCsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    f"{ON_LOOP}OnLoopMessageMiddleware",
    f"{ON_LOOP}OnLoopXFrameOptionsMiddleware",
]


def count(request: HttpRequest) -> HttpResponse:
    visits = int(request.session.get("visits", 0)) + 1
    request.session["visits"] = visits
    messages.info(request, f"visit {visits}")
    return HttpResponse(str(visits))


def inbox(request: HttpRequest) -> HttpResponse:
    return HttpResponse(" | ".join(str(m) for m in messages.get_messages(request)))


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse("plain")


urlpatterns = [path("count/", count), path("inbox/", inbox), path("plain/", plain)]

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls(__name__),
]


@override_settings(MIDDLEWARE=MIDDLEWARE)
async def test_sessions_and_messages_persist_between_requests() -> None:
    client = AsyncClient()
    first = await client.get("/count/")
    second = await client.get("/count/")
    assert (first.status_code, first.content) == (200, b"1")
    assert (second.status_code, second.content) == (200, b"2")  # the session was saved
    page = await client.get("/inbox/")
    assert page.content == b"visit 1 | visit 2"
    assert (await client.get("/inbox/")).content == b""  # messages are shown once


@override_settings(MIDDLEWARE=MIDDLEWARE)
async def test_csrf_refuses_a_post_without_token_and_headers_are_set() -> None:
    client = AsyncClient(enforce_csrf_checks=True)
    refused = await client.post("/plain/")
    assert refused.status_code == 403
    allowed = await client.get("/plain/")
    assert allowed.status_code == 200
    assert allowed["X-Frame-Options"] == "DENY"
    assert allowed["X-Content-Type-Options"] == "nosniff"
    assert allowed["Referrer-Policy"] == "same-origin"


@override_settings(MIDDLEWARE=MIDDLEWARE)
async def test_hooks_without_io_run_on_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    original = SecurityMiddleware.process_request

    def recording(self: Any, request: HttpRequest) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:  # a worker thread has no running loop
            seen.append(False)
        return original(self, request)

    monkeypatch.setattr(SecurityMiddleware, "process_request", recording)
    answer = await AsyncClient().get("/plain/")
    assert answer.status_code == 200
    assert seen == [True]


@override_settings(MIDDLEWARE=["django.middleware.security.SecurityMiddleware"])
async def test_djangos_own_class_hops_to_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # The control: the same probe sees Django's SecurityMiddleware off the loop.
    seen: list[bool] = []
    original = SecurityMiddleware.process_request

    def recording(self: Any, request: HttpRequest) -> Any:
        try:
            asyncio.get_running_loop()
            seen.append(True)
        except RuntimeError:
            seen.append(False)
        return original(self, request)

    monkeypatch.setattr(SecurityMiddleware, "process_request", recording)
    answer = await AsyncClient().get("/plain/")
    assert answer.status_code == 200
    assert seen == [False]
